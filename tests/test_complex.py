"""Complex parameters, handled as :func:`optax.adam` handles them.

The first moment (or momentum) is complex; the second moment is ``|g|**2``,
stored in the params' complex dtype with a zero imaginary part (optax's own
``update_moment_per_elem_norm``); the p-gain is real and scales the complex
direction. ``normalize="rms"`` measures RMS by the modulus.
"""

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
        "w": jnp.array([[0.5 + 1j, -1.0, 2.0 - 0.5j], [3.0j, 0.25, -0.75 + 2j]]),
        "b": jnp.array([0.1 - 0.1j, -0.2j]),
    }


def _grads(n, seed=0):
    """Complex gradients over several orders of magnitude."""
    rng = np.random.default_rng(seed)

    def leaf(x):
        re, im = rng.standard_normal((2, *x.shape))
        scale = 10.0 ** rng.uniform(-3, 1, x.shape)
        return jnp.asarray(scale * (re + 1j * im), jnp.complex64)

    return [jax.tree.map(leaf, _params()) for _ in range(n)]


def _run(opt, grads, variant):
    state = opt.init(_params())
    update = variant(opt.update)
    outs = []
    for g in grads:
        u, state = update(g, state, _params())
        outs.append(u)
    return outs, state


class ComplexTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_p_half_is_adam(self):
        grads = _grads(8)
        ours, state = _run(nsf_optax.nsf(0.1), grads, self.variant)
        theirs, their_state = _run(optax.adam(0.1), grads, self.variant)
        chex.assert_trees_all_close(ours, theirs, rtol=1e-6, atol=0)
        chex.assert_trees_all_equal_dtypes(state[0].mu, their_state[0].mu)
        chex.assert_trees_all_equal_dtypes(state[0].nu, their_state[0].nu)

    @chex.variants(with_jit=True, without_jit=True)
    def test_nsf_sgd_at_zero_is_sgd_bit_for_bit(self):
        grads = _grads(8, seed=1)
        ours, _ = _run(nsf_optax.nsf_sgd(0.1, 0.9, p=0.0), grads, self.variant)
        theirs, _ = _run(optax.sgd(0.1, momentum=0.9), grads, self.variant)
        chex.assert_trees_all_equal(ours, theirs)

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters(0.3, -0.7, 0.25, "tide")
    def test_against_the_reference(self, p):
        grads = _grads(10, seed=2)
        p_value = _TIDE if p == "tide" else p
        p_of_count = _TIDE if p == "tide" else (lambda _, p=p: p)
        adam_like, _ = _run(
            nsf_optax.scale_by_pexp(b2=0.99, p=p_value), grads, self.variant
        )
        sgd_like, _ = _run(
            nsf_optax.scale_by_pexp_momentum(b2=0.99, p=p_value), grads, self.variant
        )
        for key in ("w", "b"):
            gs = [np.asarray(g[key], np.complex128) for g in grads]
            refs = {
                "adam": _reference.pexp_updates(
                    gs, b1=0.9, b2=0.99, eps=1e-8, eps_root=0.0, p_of_count=p_of_count
                ),
                "momentum": _reference.pexp_momentum_updates(
                    gs,
                    momentum=0.9,
                    b2=0.99,
                    eps=1e-8,
                    eps_root=0.0,
                    p_of_count=p_of_count,
                ),
            }
            for name, ours in (("adam", adam_like), ("momentum", sgd_like)):
                for got, want in zip([u[key] for u in ours], refs[name], strict=True):
                    self.assertEqual(got.dtype, jnp.complex64)
                    np.testing.assert_allclose(got, want, rtol=2e-5, atol=0)

    @chex.variants(with_jit=True, without_jit=True)
    def test_normalize_rms_uses_the_modulus(self):
        grads = _grads(5, seed=3)
        plain, _ = _run(nsf_optax.scale_by_pexp(p=_TIDE), grads, self.variant)
        normed, _ = _run(
            nsf_optax.scale_by_pexp(p=_TIDE, normalize="rms"), grads, self.variant
        )
        # Adam's update for the same moments sets the RMS (complex: its modulus).
        adams, _ = _run(optax.scale_by_adam(), grads, jax.jit)
        rms = lambda x: float(jnp.sqrt(jnp.mean(jnp.abs(x) ** 2)))  # noqa: E731
        for u, n, m in zip(plain, normed, adams, strict=True):
            for key in ("w", "b"):
                np.testing.assert_allclose(rms(n[key]), rms(m[key]), rtol=1e-5)
                ratio = rms(n[key]) / rms(u[key])
                np.testing.assert_allclose(n[key], u[key] * ratio, rtol=1e-5)

    @chex.variants(with_jit=True, without_jit=True)
    def test_gain_is_real(self):
        opt = nsf_optax.nsf_sgd(0.1, p=0.5)
        _, state = _run(opt, _grads(1, seed=4), self.variant)
        gain = self.variant(nsf_optax.pexp_gain)(state)
        g = np.asarray(_grads(1, seed=4)[0]["w"])
        for leaf in jax.tree.leaves(gain):
            self.assertEqual(leaf.dtype, jnp.float32)
        # After one step nu_hat = |g|**2, so the gain is 1 / (|g| + eps), up to
        # float32's rounding of (1 - b2) / (1 - b2**1) (about 1e-5 relative).
        np.testing.assert_allclose(gain["w"], 1 / (np.abs(g) + 1e-8), rtol=3e-5)
