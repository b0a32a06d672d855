"""Statistics over seeds: mean_ci and detectable_difference."""

import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from nsf_optax.spectral import detectable_difference, mean_ci


def test_mean_ci():
    m, h = mean_ci(np.array([[1.0, 2.0], [3.0, 2.0]]))
    np.testing.assert_allclose(m, [2.0, 2.0])
    assert h[1] == 0.0 and h[0] > 0


def _rejection_rate(delta: float, sd: float, n: int, level: float) -> float:
    rng = np.random.default_rng(0)
    d = rng.normal(delta, sd, size=(200_000, n))
    t = d.mean(axis=1) / (d.std(axis=1, ddof=1) / np.sqrt(n))
    return float(np.mean(np.abs(t) > stats.t.ppf(0.5 + level / 2, n - 1)))


@pytest.mark.parametrize(("n", "level", "power"), [(5, 0.95, 0.8), (12, 0.9, 0.5)])
def test_a_simulated_t_test_detects_it_with_the_stated_power(n, level, power):
    differences = np.random.default_rng(n).normal(0.0, 0.02, size=n)
    delta = detectable_difference(differences, level=level, power=power)
    sd = float(np.std(differences, ddof=1))
    assert _rejection_rate(delta, sd, n, level) == pytest.approx(power, abs=0.005)


def test_large_samples_approach_the_normal_approximation():
    differences = np.tile([-1.0, 1.0], 500)  # s = 1, n = 1000
    z = stats.norm.ppf(0.975) + stats.norm.ppf(0.8)
    expected = z * np.std(differences, ddof=1) / np.sqrt(differences.size)
    assert detectable_difference(differences) == pytest.approx(expected, rel=2e-3)


def test_degenerate_samples():
    assert np.isnan(detectable_difference([0.3]))
    assert np.isnan(detectable_difference([0.3, np.nan]))
    assert detectable_difference([0.1, 0.1, 0.1]) == 0.0


def test_more_seeds_detect_less():
    rng = np.random.default_rng(1)
    d = rng.normal(0.0, 1.0, size=20)
    assert detectable_difference(d[:5] * 0 + d[:5]) > detectable_difference(d)


@pytest.mark.parametrize("bad", [0.0, 1.0, np.float32(1.5), jnp.array(-0.1)])
@pytest.mark.parametrize("name", ["level", "power"])
def test_bad_probabilities_are_refused(name, bad):
    with pytest.raises(ValueError, match=rf"{name} must be in \(0, 1\)"):
        detectable_difference([0.1, 0.2, 0.3], **{name: bad})


def test_differences_must_be_1d():
    with pytest.raises(ValueError, match="differences must be 1-D"):
        detectable_difference([[0.1, 0.2], [0.3, 0.4]])
