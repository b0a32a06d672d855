"""Tests for `scale_by_pexp`, `scale_by_pexp_momentum` and the aliases."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from absl.testing import parameterized

import nsf_optax
from nsf_optax import p_schedule
from tests import _reference

_TIDE = p_schedule.cosine_tidal(-0.5, 0.5, period_steps=6)


def _params():
    return {
        "w": jnp.array([[0.5, -1.0, 2.0], [3.0, 0.25, -0.75]]),
        "b": jnp.array([0.1, -0.2]),
    }


def _grads(n, seed=0, scale=1.0, decades=(-3, 1)):
    """n gradient trees with entries spread over several orders of magnitude."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        out.append(
            jax.tree.map(
                lambda x: jnp.asarray(
                    scale
                    * rng.standard_normal(x.shape)
                    * 10.0 ** rng.uniform(*decades, x.shape),
                    jnp.float32,
                ),
                _params(),
            )
        )
    return out


def _run(opt, grads, params=None, variant=lambda f: f):
    params = _params() if params is None else params
    state = opt.init(params)
    update = variant(opt.update)
    outs = []
    for g in grads:
        u, state = update(g, state, params)
        outs.append(u)
    return outs, state


class EquivalenceTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters(False, True)
    def test_p_half_is_adam(self, nesterov):
        grads = _grads(8)
        ours, _ = _run(
            nsf_optax.scale_by_pexp(p=0.5, nesterov=nesterov), grads, None, self.variant
        )
        ref, _ = _run(optax.scale_by_adam(nesterov=nesterov), grads, None, self.variant)
        chex.assert_trees_all_close(ours, ref, rtol=1e-6, atol=0)

    @chex.variants(with_jit=True, without_jit=True)
    def test_p_half_is_adam_with_eps_root(self):
        grads = _grads(5)
        ours, _ = _run(
            nsf_optax.scale_by_pexp(p=0.5, eps_root=1e-6), grads, None, self.variant
        )
        ref, _ = _run(optax.scale_by_adam(eps_root=1e-6), grads, None, self.variant)
        chex.assert_trees_all_close(ours, ref, rtol=1e-6, atol=0)

    @chex.variants(with_jit=True, without_jit=True)
    def test_p_zero_eps_zero_is_debiased_ema(self):
        grads = _grads(8)
        ours, _ = _run(
            nsf_optax.scale_by_pexp(b1=0.8, p=0.0, eps=0.0), grads, None, self.variant
        )
        ref, _ = _run(optax.ema(0.8, debias=True), grads, None, self.variant)
        chex.assert_trees_all_close(ours, ref, rtol=1e-6, atol=0)

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters(
        {"p": 0.5},
        {"p": 0.5, "nesterov": True},
        {"p": 0.5, "b1": 0.8, "b2": 0.99, "eps": 1e-6},
    )
    def test_nsf_is_adam(self, **kwargs):
        grads = _grads(6)
        ours, _ = _run(nsf_optax.nsf(1e-2, **kwargs), grads, None, self.variant)
        kwargs.pop("p")
        ref, _ = _run(optax.adam(1e-2, **kwargs), grads, None, self.variant)
        chex.assert_trees_all_close(ours, ref, rtol=1e-6, atol=0)

    @chex.variants(with_jit=True, without_jit=True)
    def test_nsfw_is_adamw(self):
        grads = _grads(6)
        mask = {"w": True, "b": False}
        ours, _ = _run(
            nsf_optax.nsfw(1e-2, p=0.5, weight_decay=0.1, mask=mask),
            grads,
            None,
            self.variant,
        )
        ref, _ = _run(
            optax.adamw(1e-2, weight_decay=0.1, mask=mask), grads, None, self.variant
        )
        chex.assert_trees_all_close(ours, ref, rtol=1e-6, atol=0)

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters(False, True)
    def test_nsf_sgd_at_zero_is_sgd_bit_for_bit(self, nesterov):
        grads = _grads(10)
        ours, ours_state = _run(
            optax.chain(
                optax.add_decayed_weights(5e-4),
                nsf_optax.nsf_sgd(0.1, momentum=0.9, p=0.0, nesterov=nesterov),
            ),
            grads,
            None,
            self.variant,
        )
        ref, ref_state = _run(
            optax.chain(
                optax.add_decayed_weights(5e-4),
                optax.sgd(0.1, momentum=0.9, nesterov=nesterov),
            ),
            grads,
            None,
            self.variant,
        )
        chex.assert_trees_all_equal(ours, ref)
        chex.assert_trees_all_equal(ours_state[1][0].trace, ref_state[1][0].trace)

    @chex.variants(with_jit=True, without_jit=True)
    def test_nsf_sgd_with_scheduled_p_through_zero_is_sgd(self):
        """A schedule that sits at 0 gives SGD exactly on those steps."""
        grads = _grads(6)
        zero = p_schedule.constant(0.0)
        ours, _ = _run(nsf_optax.nsf_sgd(0.1, p=zero), grads, None, self.variant)
        ref, _ = _run(optax.sgd(0.1, momentum=0.9), grads, None, self.variant)
        chex.assert_trees_all_equal(ours, ref)


class ReferenceTest(chex.TestCase):
    """Multi-step trajectories against the float64 reference of the formula."""

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters(
        {"p": 0.5},
        {"p": 0.25},
        {"p": 0.0},
        {"p": -0.5},
        {"p": -0.3},
        {"p": 0.7},
        {"p": 1.0},
        {"p": 1.7, "eps_root": 1e-9},
        {"p": "tide"},
        {"p": "tide", "nesterov": True},
    )
    def test_scale_by_pexp(self, p, eps_root=0.0, nesterov=False):
        grads = _grads(12, seed=1)
        p_of_count = _TIDE if p == "tide" else (lambda _, p=p: p)
        opt = nsf_optax.scale_by_pexp(
            b1=0.9,
            b2=0.99,
            eps=1e-8,
            eps_root=eps_root,
            p=_TIDE if p == "tide" else p,
            nesterov=nesterov,
        )
        ours, _ = _run(opt, grads, None, self.variant)
        for key in ("w", "b"):
            ref = _reference.pexp_updates(
                [g[key] for g in grads],
                b1=0.9,
                b2=0.99,
                eps=1e-8,
                eps_root=eps_root,
                p_of_count=p_of_count,
                nesterov=nesterov,
            )
            for got, want in zip([u[key] for u in ours], ref, strict=True):
                np.testing.assert_allclose(got, want, rtol=2e-5, atol=0)

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters({"p": 0.0}, {"p": 0.25}, {"p": -0.5}, {"p": "tide"})
    def test_scale_by_pexp_momentum(self, p):
        grads = _grads(12, seed=2)
        p_of_count = _TIDE if p == "tide" else (lambda _, p=p: p)
        opt = nsf_optax.scale_by_pexp_momentum(
            momentum=0.9, b2=0.99, p=_TIDE if p == "tide" else p
        )
        ours, _ = _run(opt, grads, None, self.variant)
        for key in ("w", "b"):
            ref = _reference.pexp_momentum_updates(
                [g[key] for g in grads],
                momentum=0.9,
                b2=0.99,
                eps=1e-8,
                eps_root=0.0,
                p_of_count=p_of_count,
            )
            for got, want in zip([u[key] for u in ours], ref, strict=True):
                np.testing.assert_allclose(got, want, rtol=2e-5, atol=0)

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters(0.5, 0.0, -0.5, "tide")
    def test_normalize_rms(self, p):
        """The update has mhat's RMS per leaf and the direction of the formula."""
        grads = _grads(5, seed=3)
        p_value = _TIDE if p == "tide" else p
        plain, _ = _run(nsf_optax.scale_by_pexp(p=p_value), grads, None, self.variant)
        normed, _ = _run(
            nsf_optax.scale_by_pexp(p=p_value, normalize="rms"),
            grads,
            None,
            self.variant,
        )
        mhats, _ = _run(optax.ema(0.9, debias=True), grads, None, self.variant)
        for u, n, m in zip(plain, normed, mhats, strict=True):
            for key in ("w", "b"):
                rms = lambda x: float(jnp.sqrt(jnp.mean(jnp.square(x))))  # noqa: E731
                np.testing.assert_allclose(rms(n[key]), rms(m[key]), rtol=1e-5)
                ratio = rms(n[key]) / rms(u[key])
                np.testing.assert_allclose(n[key], u[key] * ratio, rtol=1e-5)

    def test_normalize_rms_momentum_keeps_sgd_step_size(self):
        grads = _grads(5, seed=4)
        normed, _ = _run(
            nsf_optax.scale_by_pexp_momentum(p=-0.5, normalize="rms"), grads
        )
        traces, _ = _run(optax.trace(0.9), grads)
        for n, t in zip(normed, traces, strict=True):
            for key in ("w", "b"):
                np.testing.assert_allclose(
                    jnp.linalg.norm(n[key]), jnp.linalg.norm(t[key]), rtol=1e-5
                )

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters(0.3, "tide")
    def test_normalize_rms_is_per_leaf_with_empty_and_zero_leaves(self, p):
        """Zero leaves (scaled fallback) and empty ones leave the others unchanged."""
        tx = nsf_optax.scale_by_pexp(p=_TIDE if p == "tide" else p, normalize="rms")
        grads = _grads(4, seed=5)
        alone, _ = _run(tx, grads, None, self.variant)
        extra = {"zero": jnp.zeros(3), "empty": jnp.zeros((0, 2))}
        params = {**_params(), **extra}
        mixed, _ = _run(tx, [{**g, **extra} for g in grads], params, self.variant)
        for a, m in zip(alone, mixed, strict=True):
            chex.assert_trees_all_equal({k: m[k] for k in a}, a)
            chex.assert_trees_all_equal({k: m[k] for k in extra}, extra)

    def test_normalize_rms_zero_gradients_give_zero(self):
        zeros = [jax.tree.map(jnp.zeros_like, _params())] * 3
        out, _ = _run(nsf_optax.scale_by_pexp(p=0.25, normalize="rms"), zeros)
        for u in out:
            chex.assert_trees_all_equal(u, jax.tree.map(jnp.zeros_like, u))


class ScheduledPTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_schedule_is_called_before_the_increment(self):
        """Step k (0-based) uses p(k): equal to the static-p update at p(k)."""
        tide = p_schedule.square_tidal(0.5, -0.25, every_steps=2)
        grads = _grads(6, seed=5)
        ours, _ = _run(nsf_optax.scale_by_pexp(p=tide), grads, None, self.variant)
        for k in range(6):
            static_p = float(tide(k))
            ref, _ = _run(nsf_optax.scale_by_pexp(p=static_p), grads[: k + 1])
            chex.assert_trees_all_close(ours[k], ref[k], rtol=1e-5)

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters("nsf", "nsf_sgd")
    def test_inject_hyperparams_matches_schedule(self, alias):
        factory = getattr(nsf_optax, alias)
        tide = p_schedule.pulse_tidal(
            0.5, 2, p_schedule.square_tidal(0.25, -0.25, every_steps=3)
        )
        grads = _grads(9, seed=6)
        direct, _ = _run(factory(1e-2, p=tide), grads, None, self.variant)
        injected, state = _run(
            optax.inject_hyperparams(factory)(learning_rate=1e-2, p=tide),
            grads,
            None,
            self.variant,
        )
        chex.assert_trees_all_close(direct, injected, rtol=1e-5)
        # The logged p is the one the last update used.
        self.assertEqual(float(state.hyperparams["p"]), float(tide(8)))


class GainStatsTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_gain_stats_values(self):
        params = jnp.array([1e-2, 1.0, 10.0])
        solver = optax.chain(optax.clip(100.0), nsf_optax.nsf(1e-3, b2=0.9, p=-0.5))
        _, state = solver.update(params, solver.init(params))
        stats = self.variant(
            lambda s: nsf_optax.gain_stats(s, p=-0.5, b2=0.9, eps=1e-8)
        )(state)
        # nu_hat = g**2 after one step, so gain = 1 / (|g|**-1 + eps) ~= |g|.
        np.testing.assert_allclose(stats["log10_gain_min"], -2.0, atol=1e-5)
        np.testing.assert_allclose(stats["log10_gain_max"], 1.0, atol=1e-5)
        np.testing.assert_allclose(stats["log10_gain_mean"], -1.0 / 3, atol=1e-5)
        self.assertEqual(float(stats["p"]), -0.5)

    def test_gain_stats_with_schedule_and_wrappers(self):
        tide = p_schedule.square_tidal(0.5, -0.5, every_steps=1)
        solver = optax.MultiSteps(nsf_optax.nsf_sgd(0.1, p=tide), every_k_schedule=1)
        params = jnp.ones(4)
        state = solver.init(params)
        stats = nsf_optax.gain_stats(state, p=tide)
        self.assertEqual(float(stats["p"]), 0.5)  # before any step: p(0)
        _, state = solver.update(params, state, params)
        stats = nsf_optax.gain_stats(state, p=tide)
        self.assertEqual(float(stats["p"]), -0.5)  # the next update uses p(1)
        for key in ("log10_gain_min", "log10_gain_mean", "log10_gain_max"):
            self.assertTrue(np.isfinite(stats[key]))

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters(0.5, -0.5, 0.3, 0.0, "tide")
    def test_pexp_gain_matches_the_formula(self, p):
        """The gain from the stored moment, against float64 1/(nu_hat**p + eps)."""
        p_value = _TIDE if p == "tide" else p
        grads = _grads(4, seed=7)
        opt = nsf_optax.scale_by_pexp_momentum(p=p_value)
        state = opt.init(_params())
        for g in grads[:-1]:
            _, state = opt.update(g, state)
        gains = self.variant(lambda s: nsf_optax.pexp_gain(s, p=p_value))(state)
        count = int(state.count)
        p_now = float(_TIDE(count)) if p == "tide" else p
        for key in ("w", "b"):
            nu_hat = np.asarray(state.nu[key], np.float64) / (1 - 0.999**count)
            want = 1.0 / (nu_hat**p_now + 1e-8)
            np.testing.assert_allclose(gains[key], want, rtol=2e-5)
            self.assertEqual(gains[key].shape, _params()[key].shape)

    def test_gain_stats_needs_exactly_one_state(self):
        with pytest.raises(ValueError, match="exactly one"):
            nsf_optax.gain_stats(optax.adam(1e-3).init(jnp.ones(2)), p=0.5)
        with pytest.raises(ValueError, match="found 2"):
            two = optax.chain(nsf_optax.nsf(1e-3), nsf_optax.nsf_sgd(1e-3))
            nsf_optax.pexp_gain(two.init(jnp.ones(2)), p=0.5)


class BadInputTest(parameterized.TestCase):
    @parameterized.parameters(
        ({"b1": 1.0}, "b1"),
        ({"b1": -0.1}, "b1"),
        ({"b2": 1.5}, "b2"),
        ({"eps": -1e-8}, "eps"),
        ({"eps": float("nan")}, "eps"),
        ({"eps_root": -1.0}, "eps_root"),
        ({"p": float("nan")}, "p"),
        ({"p": float("inf")}, "p"),
        ({"p": "0.5"}, "p"),
        ({"p": None}, "p"),
        ({"normalize": "l2"}, "normalize"),
    )
    def test_scale_by_pexp(self, kwargs, name):
        with self.assertRaisesRegex(ValueError, rf"\b{name}\b"):
            nsf_optax.scale_by_pexp(**kwargs)

    @parameterized.parameters(
        ({"momentum": 1.0}, "momentum"),
        ({"momentum": -0.5}, "momentum"),
        ({"b2": -0.1}, "b2"),
        ({"p": float("-inf")}, "p"),
        ({"eps": -1.0}, "eps"),
    )
    def test_nsf_sgd(self, kwargs, name):
        with self.assertRaisesRegex(ValueError, rf"\b{name}\b"):
            nsf_optax.nsf_sgd(0.1, **kwargs)

    def test_nsfw_weight_decay(self):
        with self.assertRaisesRegex(ValueError, "weight_decay"):
            nsf_optax.nsfw(1e-3, weight_decay=-1.0)


class NonFiniteTest(chex.TestCase):
    """Documented behaviour: NaN/inf gradients enter the moments, as in Adam.

    `optax.apply_if_finite` skips such steps and leaves the state untouched.
    """

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters("nsf", "nsf_sgd")
    def test_apply_if_finite_skips_and_keeps_state(self, alias):
        solver = optax.apply_if_finite(
            getattr(nsf_optax, alias)(1e-2, p=_TIDE), max_consecutive_errors=3
        )
        params = _params()
        good = _grads(2)
        state = solver.init(params)
        update = self.variant(solver.update)
        _, state = update(good[0], state, params)
        bad = jax.tree.map(lambda g: g.at[0].set(jnp.nan), good[1])
        updates, new_state = update(bad, state, params)
        chex.assert_trees_all_equal(new_state.inner_state, state.inner_state)
        chex.assert_trees_all_equal(updates, jax.tree.map(jnp.zeros_like, updates))
        self.assertEqual(int(new_state.notfinite_count), 1)
        # The next finite step proceeds from the untouched state.
        updates, after = update(good[1], new_state, params)
        chex.assert_tree_all_finite(updates)
        self.assertEqual(int(after.inner_state[0].count), 2)

    def test_unwrapped_nan_reaches_the_state(self):
        solver = nsf_optax.scale_by_pexp(p=0.25)
        state = solver.init(jnp.zeros(2))
        _, state = solver.update(jnp.array([jnp.nan, 1.0]), state)
        self.assertTrue(bool(jnp.isnan(state.mu[0])))
        self.assertTrue(bool(jnp.isfinite(state.mu[1])))


class DtypeTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.product(
        dtype=("bfloat16", "float16", "float32"),
        p=(0.5, 0.25, -0.5, 0.3, "tide"),
        alias=("scale_by_pexp", "scale_by_pexp_momentum"),
    )
    def test_dtypes_are_preserved(self, dtype, p, alias):
        dtype = jnp.dtype(dtype)
        params = jax.tree.map(lambda x: x.astype(dtype), _params())
        opt = getattr(nsf_optax, alias)(p=_TIDE if p == "tide" else p)
        state = opt.init(params)
        update = self.variant(opt.update)
        # Squares of these stay normal numbers in float16 (an Adam-like update of
        # float16 gradients below ~1e-3 divides by eps alone and overflows).
        for g in _grads(3, decades=(-1, 1)):
            g = jax.tree.map(lambda x: x.astype(dtype), g)
            updates, new_state = update(g, state, params)
            chex.assert_trees_all_equal_dtypes(updates, params)
            chex.assert_trees_all_equal_shapes_and_dtypes(new_state, state)
            chex.assert_tree_all_finite(updates)
            state = new_state

    @chex.variants(with_jit=True, without_jit=True)
    def test_mu_and_nu_dtypes(self):
        opt = nsf_optax.scale_by_pexp(
            p=-0.25, mu_dtype=jnp.bfloat16, nu_dtype=jnp.float32
        )
        params = jax.tree.map(lambda x: x.astype(jnp.bfloat16), _params())
        state = opt.init(params)
        for g in _grads(2):
            g = jax.tree.map(lambda x: x.astype(jnp.bfloat16), g)
            updates, state = self.variant(opt.update)(g, state, params)
        chex.assert_trees_all_equal_dtypes(updates, params)
        for leaf in jax.tree.leaves(state.mu):
            self.assertEqual(leaf.dtype, jnp.bfloat16)
        for leaf in jax.tree.leaves(state.nu):
            self.assertEqual(leaf.dtype, jnp.float32)
