"""`pexp_gain` and `gain_stats`: the gain read back from the state alone."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from absl.testing import parameterized

import nsf_optax
from nsf_optax import p_schedule

_TIDE = p_schedule.cosine_tidal(-0.5, 0.5, period_steps=6)


def _params():
    return {
        "w": jnp.array([[0.5, -1.0, 2.0], [3.0, 0.25, -0.75]]),
        "b": jnp.array([0.1, -0.2]),
    }


def _grads(n, seed=0):
    rng = np.random.default_rng(seed)
    return [
        jax.tree.map(
            lambda x: jnp.asarray(
                rng.standard_normal(x.shape) * 10.0 ** rng.uniform(-3, 1, x.shape),
                jnp.float32,
            ),
            _params(),
        )
        for _ in range(n)
    ]


def _labels(params):
    return {"w": "kernel", "b": "bias"}


class PexpGainTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters(0.5, -0.5, 0.3, 0.25, 0.0, "tide")
    def test_is_the_gain_the_last_update_applied(self, p):
        """The SGD-flavoured update is the trace times the gain."""
        tx = nsf_optax.scale_by_pexp_momentum(0.9, p=_TIDE if p == "tide" else p)
        state = tx.init(_params())
        for g in _grads(4):
            updates, state = tx.update(g, state)
        gain = self.variant(nsf_optax.pexp_gain)(state)
        direction = jax.tree.map(lambda t, v: t * v, state.trace, gain)
        chex.assert_trees_all_close(direction, updates, rtol=2e-6, atol=0)

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters(0.5, -0.5, 0.3, "tide")
    def test_matches_the_formula_in_float64(self, p):
        eps_root = 0.0 if p == "tide" else 1e-9
        p_value = _TIDE if p == "tide" else p
        tx = nsf_optax.nsf(1e-2, b2=0.99, eps=1e-6, eps_root=eps_root, p=p_value)
        state = tx.init(_params())
        for g in _grads(3, seed=1):
            _, state = tx.update(g, state)
        gains = self.variant(nsf_optax.pexp_gain)(state)
        inner = state[0]
        p_last = float(_TIDE(2)) if p == "tide" else p
        self.assertEqual(float(inner.p), np.float32(p_last))
        for key in ("w", "b"):
            nu_hat = np.asarray(inner.nu[key], np.float64) / (1 - 0.99**3)
            want = 1.0 / ((nu_hat + eps_root) ** np.float32(p_last) + 1e-6)
            np.testing.assert_allclose(gains[key], want, rtol=2e-5)
            self.assertEqual(gains[key].dtype, jnp.float32)

    @chex.variants(with_jit=True, without_jit=True)
    def test_p_override_is_the_gain_at_another_exponent(self):
        tx = nsf_optax.nsf_sgd(0.1, p=_TIDE)
        state = tx.init(_params())
        _, state = tx.update(_grads(1)[0], state)
        at_half = self.variant(lambda s: nsf_optax.pexp_gain(s, p=0.5))(state)
        static = nsf_optax.nsf_sgd(0.1, p=0.5)
        _, static_state = static.update(_grads(1)[0], static.init(_params()))
        chex.assert_trees_all_close(
            at_half, nsf_optax.pexp_gain(static_state), rtol=1e-6
        )

    @chex.variants(with_jit=True, without_jit=True)
    def test_partition_with_two_exponents(self):
        """One tree like the params, each leaf from the group that updates it."""
        tx = optax.partition(
            {
                "kernel": nsf_optax.nsfw(1e-2, p=_TIDE, weight_decay=1e-3),
                "bias": nsf_optax.nsf_sgd(1e-2, 0.9, p=-0.25),
            },
            _labels,
        )
        state = tx.init(_params())
        for g in _grads(3, seed=2):
            _, state = tx.update(g, state, _params())
        gains = self.variant(nsf_optax.pexp_gain)(state)
        stats = self.variant(nsf_optax.gain_stats)(state)
        for key, label, alone in (
            ("w", "kernel", nsf_optax.nsfw(1e-2, p=_TIDE, weight_decay=1e-3)),
            ("b", "bias", nsf_optax.nsf_sgd(1e-2, 0.9, p=-0.25)),
        ):
            sub = {key: _params()[key]}
            alone_state = alone.init(sub)
            for g in _grads(3, seed=2):
                _, alone_state = alone.update({key: g[key]}, alone_state, sub)
            want = nsf_optax.pexp_gain(alone_state)[key]
            chex.assert_trees_all_close(gains[key], want, rtol=1e-6)
            alone_stats = nsf_optax.gain_stats(alone_state)
            for name, value in alone_stats.items():
                got = stats[f"inner_states/{label}/inner_state/0/{name}"]
                np.testing.assert_allclose(got, value, rtol=1e-6)
        self.assertEqual(len(stats), 8)

    @chex.variants(with_jit=True, without_jit=True)
    def test_leaves_no_nsf_state_updates_are_none(self):
        tx = optax.masked(nsf_optax.nsf(1e-2, p=0.3), {"w": True, "b": False})
        state = tx.init(_params())
        _, state = tx.update(_grads(1)[0], state, _params())
        gains = self.variant(nsf_optax.pexp_gain)(state)
        self.assertIsNone(gains["b"])
        self.assertEqual(gains["w"].shape, (2, 3))

    def test_inject_hyperparams_and_multi_steps(self):
        tx = optax.MultiSteps(
            optax.inject_hyperparams(nsf_optax.nsf)(1e-2, p=_TIDE), every_k_schedule=2
        )
        state = tx.init(_params())
        self.assertEqual(float(nsf_optax.gain_stats(state)["p"]), float(_TIDE(0)))
        for g in _grads(4, seed=3):
            _, state = tx.update(g, state, _params())
        inner = state.inner_opt_state
        # Two real steps were taken, with p(0) and p(1).
        self.assertEqual(float(nsf_optax.gain_stats(state)["p"]), float(_TIDE(1)))
        self.assertEqual(float(inner.hyperparams["p"]), float(_TIDE(1)))

    def test_errors(self):
        with pytest.raises(ValueError, match="holds no ScaleByPexpState"):
            nsf_optax.gain_stats(optax.adam(1e-3).init(jnp.ones(2)))
        two = optax.chain(nsf_optax.nsf(1e-3), nsf_optax.nsf_sgd(1e-3))
        with pytest.raises(ValueError, match="update the same parameter"):
            nsf_optax.pexp_gain(two.init(jnp.ones(2)))
        with pytest.raises(TypeError, match=r"^p must be"):
            nsf_optax.pexp_gain(nsf_optax.nsf(1e-3).init(jnp.ones(2)), p="0.5")
        # Two states on their own are fine, and their stats are keyed by path.
        stats = nsf_optax.gain_stats(two.init(jnp.ones(2)))
        self.assertEqual(float(stats["0/0/p"]), 0.5)
        self.assertEqual(float(stats["1/0/p"]), 0.0)


class GainStatsTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_values(self):
        params = jnp.array([1e-2, 1.0, 10.0])
        solver = optax.chain(optax.clip(100.0), nsf_optax.nsf(1e-3, b2=0.9, p=-0.5))
        _, state = solver.update(params, solver.init(params))
        stats = self.variant(nsf_optax.gain_stats)(state)
        # nu_hat = g**2 after one step, so gain = 1 / (|g|**-1 + eps) ~= |g|.
        np.testing.assert_allclose(stats["log10_gain_min"], -2.0, atol=1e-5)
        np.testing.assert_allclose(stats["log10_gain_max"], 1.0, atol=1e-5)
        np.testing.assert_allclose(stats["log10_gain_mean"], -1.0 / 3, atol=1e-5)
        self.assertEqual(float(stats["p"]), -0.5)
        for value in stats.values():
            self.assertEqual(value.dtype, jnp.float32)

    @chex.variants(with_jit=True, without_jit=True)
    def test_nan_while_no_coordinate_has_a_gradient(self):
        solver = nsf_optax.nsf(1e-3, p=0.25)
        stats = self.variant(nsf_optax.gain_stats)(solver.init(jnp.ones(3)))
        self.assertEqual(float(stats["p"]), 0.25)
        self.assertTrue(bool(jnp.isnan(stats["log10_gain_mean"])))

    def test_flax_nnx_optimizer_state(self):
        nnx = pytest.importorskip("flax.nnx")
        model = nnx.Linear(3, 2, rngs=nnx.Rngs(0))
        tx = optax.partition(
            {"k": nsf_optax.nsf(1e-2, p=0.25), "b": nsf_optax.nsf_sgd(1e-2, p=-0.5)},
            lambda params: jax.tree.map_with_path(
                lambda path, _: "k" if "kernel" in str(path) else "b", params
            ),
        )
        optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)
        grads = nnx.grad(lambda m: jnp.sum(m(jnp.ones((4, 3))) ** 2))(model)
        optimizer.update(model, grads)
        eager = nsf_optax.gain_stats(optimizer.opt_state)
        jitted = nnx.jit(lambda opt: nsf_optax.gain_stats(opt.opt_state))(optimizer)
        chex.assert_trees_all_close(jitted, eager, rtol=1e-6)
        self.assertEqual(float(eager["inner_states/k/inner_state/0/p"]), 0.25)
        self.assertEqual(float(eager["inner_states/b/inner_state/0/p"]), -0.5)
