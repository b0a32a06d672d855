"""``normalize="rms"``'s two-pass form: both sums of squares from one loop.

:func:`nsf_optax._power.sums_of_squares` against float64 NumPy (small leaves
in one piece, large ones in interleaved slices with a tail), and
:func:`nsf_optax._power.match_rms_of_pair` against the one-pass
:func:`nsf_optax._power.match_rms` it replaces, including leaves whose squares
overflow or underflow (the scaled fallback) and all-zero leaves.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nsf_optax import _power


def _pair(m, v):
    # An Adam-like update at p = 1/4 and its p = 1/2 reference.
    return m / (jnp.sqrt(jnp.sqrt(v)) + 1e-8), m / (jnp.sqrt(v) + 1e-8)


def _halves(m, v):
    # Squares that overflow (|m| ~ 1e25) or fall below 2**-60 (|m| ~ 1e-30).
    del v
    return m, 0.5 * m


def _inputs(n, scale, seed=0):
    rng = np.random.default_rng(seed)
    m = (scale * rng.standard_normal(n)).astype(np.float32)
    v = np.square(m.astype(np.float64)) * rng.uniform(0.5, 2.0, n)
    v = np.minimum(v, np.finfo(np.float32).max).astype(np.float32)
    return jnp.asarray(m), jnp.asarray(v)


@pytest.mark.parametrize("n", [7, (1 << 14) - 1, (1 << 14) * 3 + 5])
def test_sums_of_squares_match_float64(n):
    m, v = _inputs(n, 1e-3)
    got = jax.jit(lambda m, v: _power.sums_of_squares(_pair, (m, v)))(m, v)
    a, b = (np.asarray(x, np.float64) for x in _pair(m, v))
    np.testing.assert_allclose(got[0], np.sum(a * a), rtol=1e-5)
    np.testing.assert_allclose(got[1], np.sum(b * b), rtol=1e-5)


@pytest.mark.parametrize("scale", [0.0, 1e-30, 1e-3, 1e25])
@pytest.mark.parametrize("shape", [(5, 3), (1 << 15,)])
def test_match_rms_of_pair_is_match_rms(scale, shape):
    m, v = _inputs(int(np.prod(shape)), scale, seed=1)
    m, v = m.reshape(shape), v.reshape(shape)
    pair = _halves if scale in (1e-30, 1e25) else _pair

    def two_pass(m, v):
        update, _ = pair(m, v)
        return _power.match_rms_of_pair(update, pair, (m, v))

    def one_pass(m, v):
        update, reference = pair(m, v)
        return _power.match_rms(update, _power.rms(reference))

    got, want = jax.jit(two_pass)(m, v), jax.jit(one_pass)(m, v)
    assert got.shape == shape
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=0)
    if scale == 0.0:
        assert not np.any(np.asarray(got))
    else:  # the reference's RMS, in float64
        ref = np.asarray(pair(m, v)[1], np.float64)
        rms = np.sqrt(np.mean(np.square(np.asarray(got, np.float64))))
        np.testing.assert_allclose(rms, np.sqrt(np.mean(ref * ref)), rtol=1e-5)


def test_match_rms_of_pair_keeps_the_update_when_told():
    m, v = _inputs(40, 1e-3)
    update, _ = _pair(m, v)
    kept = _power.match_rms_of_pair(update, _pair, (m, v), keep=jnp.asarray(True))
    np.testing.assert_array_equal(kept, update)
    empty = jnp.zeros((0, 3))
    out = _power.match_rms_of_pair(empty, _pair, (empty, empty))
    assert out.shape == (0, 3)
