"""Tests for the frequency-resolved convergence instrument."""

import doctest
import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import parameterized

import nsf_optax.spectral._frequency
from nsf_optax.spectral import frequency_error, time_to_learn

N = 64
FREQS = (1, 3, 8, 20)
X = np.arange(N) / N
PHASES = np.array([0.3, 1.7, 4.0, 5.5])


def _sines(amplitudes, phases=PHASES, freqs=FREQS):
    return sum(
        a * np.sin(2 * np.pi * k * X + ph)
        for a, k, ph in zip(amplitudes, freqs, phases, strict=True)
    ).astype(np.float32)


TARGET = _sines([1.0, 1.0, 1.0, 1.0])


class FrequencyErrorTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_exact_fit_and_no_fit(self):
        err = self.variant(functools.partial(frequency_error, freqs=FREQS))
        np.testing.assert_allclose(err(TARGET, TARGET), 0.0, atol=1e-6)
        np.testing.assert_allclose(err(np.zeros(N), TARGET), 1.0, rtol=1e-5)

    @chex.variants(with_jit=True, without_jit=True)
    def test_known_partial_fit(self):
        # Amplitude a at frequency k leaves |1 - a| there; other bins untouched.
        err = self.variant(functools.partial(frequency_error, freqs=FREQS))
        partial = _sines([1.0, 0.25, 1.5, 0.0])
        np.testing.assert_allclose(
            err(partial, TARGET), [0.0, 0.75, 0.5, 1.0], atol=1e-5
        )

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters(0.1, 1.0, np.pi)
    def test_phase_error(self, shift):
        err = self.variant(functools.partial(frequency_error, freqs=FREQS))
        shifted = _sines([1.0] * 4, PHASES + np.array([0.0, shift, 0.0, 0.0]))
        want = [0.0, 2 * abs(np.sin(shift / 2)), 0.0, 0.0]
        np.testing.assert_allclose(err(shifted, TARGET), want, atol=1e-5)

    @chex.variants(with_jit=True, without_jit=True)
    def test_batched_against_numpy_fft(self):
        rng = np.random.default_rng(0)
        outputs = rng.normal(size=(3, 5, N)).astype(np.float32)
        err = self.variant(functools.partial(frequency_error, freqs=FREQS))
        got = err(outputs, TARGET)
        chex.assert_shape(got, (3, 5, len(FREQS)))
        ref = np.abs(np.fft.rfft(outputs - TARGET)[..., FREQS]) / np.abs(
            np.fft.rfft(TARGET)[list(FREQS)]
        )
        np.testing.assert_allclose(got, ref, rtol=1e-4)


def test_dtypes():
    assert frequency_error(TARGET, TARGET, FREQS).dtype == jnp.float32
    half = jnp.asarray(TARGET, jnp.bfloat16)
    assert frequency_error(half, half, FREQS).dtype == jnp.float32


def test_no_energy_in_target_is_inf():
    # The docstring's contract: the ratio is inf where the target has no energy.
    # inf where the target has no energy, nan where the residual has none either.
    err = np.asarray(frequency_error(np.ones(N), np.zeros(N), [0, 2]))
    assert np.isinf(err[0]) and np.isnan(err[1])


@pytest.mark.parametrize(
    "outputs,target,freqs,match",
    [
        (np.zeros(N), np.zeros(N + 1), FREQS, "last"),
        (np.zeros(N), TARGET, [33], r"\[0, 32\]"),
        (np.zeros(N), TARGET, [-1], r"\[0, 32\]"),
        (np.zeros(N), TARGET, [1.5], "integers"),
        (np.zeros(N), TARGET, [], "non-empty"),
        (np.float32(1.0), TARGET, FREQS, "grid axis"),
    ],
)
def test_bad_arguments(outputs, target, freqs, match):
    with pytest.raises(ValueError, match=match):
        frequency_error(outputs, target, freqs)


def test_traced_freqs_are_rejected():
    with pytest.raises(TypeError, match="static"):
        jax.jit(lambda k: frequency_error(TARGET, TARGET, k))(jnp.asarray(FREQS))


STEPS = np.arange(0, 1000, 10)


class TimeToLearnTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_exponential_decays(self):
        rates = np.array([0.05, 0.01, 0.003, 0.0])
        errors = np.exp(-np.outer(STEPS, rates)).astype(np.float32)
        ttl = self.variant(functools.partial(time_to_learn, threshold=0.1))
        got = np.asarray(ttl(errors, STEPS))
        # exp(-r t) < 0.1 first at t > ln(10) / r, on the 10-step grid.
        want = [np.ceil(np.log(10) / r / 10) * 10 for r in rates[:3]]
        np.testing.assert_array_equal(got[:3], want)
        assert np.isnan(got[3])

    @chex.variants(with_jit=True, without_jit=True)
    def test_first_crossing_and_batch(self):
        errors = np.ones((2, STEPS.size, 2), np.float32)
        errors[0, 5, 0] = 0.05  # dips once, comes back: still learned at step 50
        errors[1, 7:, 1] = 0.0
        errors[1, 3, 1] = np.nan  # a NaN is never "learned"
        got = np.asarray(self.variant(time_to_learn)(errors, STEPS))
        np.testing.assert_array_equal(got, [[50.0, np.nan], [np.nan, 70.0]])


@pytest.mark.parametrize("threshold", [0.0, -1.0, np.inf, np.nan, True, "0.1"])
def test_time_to_learn_bad_threshold(threshold):
    with pytest.raises(ValueError, match="threshold"):
        time_to_learn(np.ones((3, 2)), np.arange(3), threshold)


def test_time_to_learn_bad_shapes():
    with pytest.raises(ValueError, match=r"\[\.\.\., T, K\]"):
        time_to_learn(np.ones((3, 2)), np.arange(4))
    with pytest.raises(ValueError, match=r"\[\.\.\., T, K\]"):
        time_to_learn(np.ones(3), np.arange(3))


def test_doctests():
    result = doctest.testmod(
        nsf_optax.spectral._frequency, optionflags=doctest.ELLIPSIS
    )
    assert result.attempted > 0
    assert result.failed == 0
