"""Tests for `scale_by_pexp`, `scale_by_pexp_momentum` and the aliases."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
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
        ref, _ = _run(optax.scale_by_adam(nesterov=nesterov), grads, None, jax.jit)
        chex.assert_trees_all_close(ours, ref, rtol=1e-6, atol=0)

    @chex.variants(with_jit=True, without_jit=True)
    def test_p_half_is_adam_with_eps_root(self):
        grads = _grads(5)
        ours, _ = _run(
            nsf_optax.scale_by_pexp(p=0.5, eps_root=1e-6), grads, None, self.variant
        )
        ref, _ = _run(optax.scale_by_adam(eps_root=1e-6), grads, None, jax.jit)
        chex.assert_trees_all_close(ours, ref, rtol=1e-6, atol=0)

    @chex.variants(with_jit=True, without_jit=True)
    def test_p_zero_eps_zero_is_debiased_ema(self):
        grads = _grads(8)
        ours, _ = _run(
            nsf_optax.scale_by_pexp(b1=0.8, p=0.0, eps=0.0), grads, None, self.variant
        )
        ref, _ = _run(optax.ema(0.8, debias=True), grads, None, jax.jit)
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
        ref, _ = _run(optax.adam(1e-2, **kwargs), grads, None, jax.jit)
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
            optax.adamw(1e-2, weight_decay=0.1, mask=mask), grads, None, jax.jit
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
        # The reference is built as ours runs: each of our transforms is one
        # compiled program, also eagerly, so optax.sgd is compiled here, and
        # the chain is compiled as a whole under jit.
        sgd = optax.sgd(0.1, momentum=0.9, nesterov=nesterov)
        sgd = optax.GradientTransformation(sgd.init, jax.jit(sgd.update))
        ref, ref_state = _run(
            optax.chain(optax.add_decayed_weights(5e-4), sgd),
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
        ours, _ = _run(nsf_optax.nsf_sgd(0.1, 0.9, p=zero), grads, None, self.variant)
        ref, _ = _run(optax.sgd(0.1, momentum=0.9), grads, None, jax.jit)
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
            0.9, b2=0.99, p=_TIDE if p == "tide" else p
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
        """The update has Adam's RMS per leaf and the direction of the formula."""
        grads = _grads(5, seed=3)
        p_value = _TIDE if p == "tide" else p
        plain, _ = _run(nsf_optax.scale_by_pexp(p=p_value), grads, None, self.variant)
        normed, _ = _run(
            nsf_optax.scale_by_pexp(p=p_value, normalize="rms"),
            grads,
            None,
            self.variant,
        )
        adams, _ = _run(optax.scale_by_adam(), grads, None, jax.jit)
        for u, n, m in zip(plain, normed, adams, strict=True):
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
        # The logged p is the one the last update used, and the state records it.
        self.assertEqual(float(state.hyperparams["p"]), float(tide(8)))
        self.assertEqual(float(state.inner_state[0].p), float(tide(8)))


class TracedPTest(chex.TestCase):
    """``inject_hyperparams`` makes ``p`` traced under jit: 1/2 stays Adam."""

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters("traced", "static")
    def test_injected_p_half_is_injected_adam_bit_for_bit(self, how):
        grads = _grads(6, seed=8)
        static_args = ("p",) if how == "static" else ()
        ours, state = _run(
            optax.inject_hyperparams(nsf_optax.nsf, static_args=static_args)(
                1e-2, p=0.5
            ),
            grads,
            None,
            self.variant,
        )
        theirs, their_state = _run(
            optax.inject_hyperparams(optax.adam)(1e-2), grads, None, jax.jit
        )
        chex.assert_trees_all_equal(ours, theirs)
        chex.assert_trees_all_equal(
            (state.inner_state[0].mu, state.inner_state[0].nu),
            (their_state.inner_state[0].mu, their_state.inner_state[0].nu),
        )

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters(0.5, 0.0)
    def test_traced_p_half_and_zero_are_exact(self, exact_p):
        """A schedule at p = 1/2 (p = 0, eps = 0) is Adam (the EMA) bit for bit.

        (With eps = 0, XLA turns Adam's ``m / sqrt(v)`` into ``m * rsqrt(v)``,
        which the traced select does not match: p = 1/2 is then within 3 ulp.)
        """
        grads = _grads(6, seed=9)
        seq = jnp.asarray([exact_p, 0.3] * 3, jnp.float32)
        eps = 1e-8 if exact_p else 0.0
        ours, _ = _run(
            nsf_optax.scale_by_pexp(p=lambda count: seq[count], eps=eps),
            grads,
            None,
            self.variant,
        )
        ref_tx = optax.scale_by_adam() if exact_p else optax.ema(0.9)
        ref, _ = _run(ref_tx, grads, None, jax.jit)
        for step in range(0, 6, 2):
            chex.assert_trees_all_equal(ours[step], ref[step])
        if exact_p:
            ours, _ = _run(
                nsf_optax.scale_by_pexp(p=lambda count: seq[count], eps=0.0),
                grads[:1],
                None,
                self.variant,
            )
            ref, _ = _run(optax.scale_by_adam(eps=0.0), grads[:1], None, jax.jit)
            for key in ("w", "b"):
                np.testing.assert_array_max_ulp(ours[0][key], ref[0][key], maxulp=3)

    @chex.variants(with_jit=True, without_jit=True)
    def test_injected_general_p_is_the_general_power(self):
        """Any other traced p takes the polynomial power: equal to float32 rounding.

        ``static_args=("p",)`` keeps a constant p static (the documented way to
        keep the exact forms of p = +-1/4, -1/2 under inject_hyperparams).
        """
        grads = _grads(6, seed=10)
        for p in (0.3, -0.25):
            direct, _ = _run(nsf_optax.nsf(1e-2, p=p), grads, None, self.variant)
            injected, _ = _run(
                optax.inject_hyperparams(nsf_optax.nsf)(1e-2, p=p),
                grads,
                None,
                self.variant,
            )
            static, _ = _run(
                optax.inject_hyperparams(nsf_optax.nsf, static_args="p")(1e-2, p=p),
                grads,
                None,
                self.variant,
            )
            chex.assert_trees_all_close(injected, direct, rtol=1e-4, atol=0)
            chex.assert_trees_all_close(static, direct, rtol=1e-4, atol=0)


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
        # Down to 1e-4: nu is float32 by default, so float16 squares that
        # underflow (|g| < 5e-3 at b2 = 0.999) still give finite updates.
        for g in _grads(3, decades=(-4, 1)):
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


def _updates_by_dtype(tx, grads, dtype):
    """Jitted updates of ``tx`` on ``grads`` cast to ``dtype``, as float64."""
    state = tx.init(grads[0].astype(dtype))
    update = jax.jit(tx.update)
    out = []
    for g in grads:
        u, state = update(g.astype(dtype), state)
        out.append(np.asarray(u, np.float64))
    return np.stack(out), state


class HalfPrecisionTest(parameterized.TestCase):
    """``nu`` is float32 for half-precision params unless ``nu_dtype`` says not."""

    def _grads(self, decades, seed=0):
        rng = np.random.default_rng(seed)
        signs = rng.choice([-1.0, 1.0], (5, 8))
        return jnp.asarray(signs * 10.0 ** rng.uniform(*decades, (5, 8)), jnp.float32)

    @parameterized.parameters("float16", "bfloat16")
    def test_state_dtypes(self, dtype):
        params = jnp.zeros(3, dtype)
        for tx in (
            nsf_optax.scale_by_pexp(),
            nsf_optax.scale_by_pexp_momentum(p=0.5),
        ):
            state = tx.init(params)
            self.assertEqual(state.nu.dtype, jnp.float32)
            self.assertEqual(state[1].dtype, jnp.dtype(dtype))  # mu / trace
        state = nsf_optax.scale_by_pexp(nu_dtype=dtype).init(params)
        self.assertEqual(state.nu.dtype, jnp.dtype(dtype))
        # Wider params keep their dtype, as in optax.
        self.assertEqual(
            nsf_optax.scale_by_pexp().init(jnp.zeros(3)).nu.dtype, "float32"
        )

    def test_float16_small_gradients_take_adams_step(self):
        """|g| in [1e-4, 1e-2]: (1 - b2) g**2 underflows in float16.

        With a float16 nu the update is ``mhat / eps``, beyond float16's range;
        the default float32 nu gives float32 Adam's step to float16 precision.
        """
        grads = self._grads((-4, -2))
        adam32, _ = _updates_by_dtype(optax.adam(1.0), grads, jnp.float32)
        ours, _ = _updates_by_dtype(nsf_optax.nsf(1.0), grads, jnp.float16)
        np.testing.assert_allclose(ours, adam32, rtol=2e-2)
        half_nu, state = _updates_by_dtype(
            nsf_optax.nsf(1.0, nu_dtype=jnp.float16), grads, jnp.float16
        )
        self.assertTrue(bool(jnp.any(state[0].nu == 0)))
        self.assertGreater(np.max(np.abs(half_nu)), 1e4)

    def test_float16_matches_optax_where_its_nu_is_representable(self):
        grads = self._grads((-1, 1), seed=1)
        ours, _ = _updates_by_dtype(nsf_optax.nsf(1.0), grads, jnp.float16)
        theirs, _ = _updates_by_dtype(optax.adam(1.0), grads, jnp.float16)
        np.testing.assert_allclose(ours, theirs, rtol=5e-3)

    def test_bfloat16_nu_does_not_stall(self):
        """A constant gradient: a bfloat16 nu stops growing near g**2 / 3.

        Its (1 - b2) g**2 increment is then below half an ulp of nu: after
        3000 steps the step is 1.65 times Adam's. The float32 nu keeps Adam's
        step up to the bfloat16 rounding of mu (7% here).
        """

        def last_update(tx):
            g = jnp.full(4, 0.01, jnp.bfloat16)

            def body(state, _):
                return tx.update(g, state)[1], None

            state, _ = jax.lax.scan(body, tx.init(g), None, length=2999)
            return tx.update(g, state)[0][0]

        ours = jax.jit(lambda: last_update(nsf_optax.nsf(1.0)))
        half_nu = jax.jit(lambda: last_update(nsf_optax.nsf(1.0, nu_dtype="bfloat16")))
        self.assertLess(abs(float(ours()) + 1.0), 0.1)
        self.assertLess(float(half_nu()), -1.5)
