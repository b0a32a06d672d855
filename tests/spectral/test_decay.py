"""Tests for the 1-D spectral decay simulator and its CLI."""

import functools
import json
import subprocess
import sys

import chex
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import parameterized

from nsf_optax import p_schedule
from nsf_optax.spectral import decay

_TINY = {"num_steps": 100, "num_points": 96, "record_every": 10}


class SimulateDecayTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters(0.2, 0.4)
    def test_p0_decays_every_mode_at_eta(self, eta):
        sim = self.variant(functools.partial(decay.simulate_decay, eta=eta, **_TINY))
        trace = sim(0.0, jnp.asarray([1.0, 0.5, 0.3, 0.2, 0.1, 0.05]))
        fit = decay.fit_decay(trace, (0.0, 1.0))
        np.testing.assert_allclose(fit.lam_t, eta, atol=1e-3)
        np.testing.assert_allclose(fit.lam_tau, eta, atol=1e-3)
        np.testing.assert_allclose(fit.r2_t, 1.0, atol=1e-6)

    @chex.variants(with_jit=True, without_jit=True)
    def test_schedule_and_array_agree(self):
        schedule = p_schedule.cosine_tidal(-0.5, 0.5, 40)
        amps = jnp.ones(6)
        from_schedule = functools.partial(decay.simulate_decay, schedule, **_TINY)
        a = self.variant(from_schedule)(amps)
        sim = self.variant(functools.partial(decay.simulate_decay, **_TINY))
        b = sim(jnp.stack([schedule(i) for i in range(100)]), amps)
        np.testing.assert_allclose(a.coeffs, b.coeffs, rtol=1e-5)
        np.testing.assert_allclose(a.p[:-1], b.p[:-1])
        assert a.coeffs.shape == (11, 6)
        assert float(a.p[0]) == pytest.approx(0.5)


def test_fit_recovers_exponential():
    t = jnp.linspace(0.0, 2.0, 21)
    trace = decay.DecayTrace(
        times=t, tau=2 * t, p=jnp.zeros_like(t), coeffs=jnp.exp(-0.3 * t)[:, None]
    )
    fit = decay.fit_decay(trace, (0.0, 2.0))
    np.testing.assert_allclose(fit.lam_t, [0.3], rtol=1e-4)
    np.testing.assert_allclose(fit.lam_tau, [0.15], rtol=1e-4)


@pytest.fixture(scope="module")
def default_table():
    return decay.decay_table()


def test_p0_row_is_flat(default_table):
    np.testing.assert_allclose(default_table.rows["p=0"].lam_t, 0.4, atol=1e-3)


@pytest.mark.parametrize("p", [0.25, 0.5])
def test_positive_p_is_low_pass(default_table, p):
    fit = default_table.rows[f"p={p:g}"]
    assert decay.spectral_trend(fit, default_table.modes) < 0
    assert fit.lam_t[-1] < fit.lam_t[0]


@pytest.mark.parametrize("p", [-0.25, -0.5])
def test_negative_p_is_high_pass(default_table, p):
    fit = default_table.rows[f"p={p:g}"]
    assert decay.spectral_trend(fit, default_table.modes) > 0
    assert fit.lam_t[-1] > fit.lam_t[0]


def test_verdicts_and_comparison(default_table):
    v = decay.verdicts(default_table)
    assert set(v) >= {"p0_flat", "sign_sets_filter", "tidal_faster"}
    cmp = decay.compare_with_paper(default_table)
    assert cmp["rows_compared"] == 8
    assert 0.0 <= cmp["mean_abs_diff"] <= cmp["max_abs_diff"]


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_points"):
        decay.simulate_decay(0.0, jnp.ones(6), num_points=32)
    trace = decay.simulate_decay(0.0, jnp.ones(6), **_TINY)
    with pytest.raises(ValueError, match="window"):
        decay.fit_decay(trace, (5.0, 6.0))


def test_cli_json_schema():
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "nsf_optax.spectral.decay",
            "--json",
            "--num-steps",
            "100",
            "--num-points",
            "96",
            "--window",
            "0",
            "0.5",
            "--tidal-period-steps",
            "40",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    data = json.loads(out.stdout)
    assert set(data) == {"settings", "modes", "rows", "paper_comparison", "verdicts"}
    assert data["modes"] == [1, 2, 4, 8, 16, 32]
    assert data["settings"]["num_steps"] == 100
    assert len(data["rows"]) == 8
    for label, row in data["rows"].items():
        assert set(row) == {"lambda_t", "r2_t", "lambda_tau", "r2_tau", "paper"}
        assert len(row["lambda_t"]) == 6
        assert (row["paper"] is None) == (label not in decay.PAPER_TABLE)
    assert set(data["paper_comparison"]) == {
        "max_abs_diff",
        "mean_abs_diff",
        "rows_compared",
    }
    assert isinstance(data["verdicts"]["p0_flat"], bool)


def test_cli_help():
    out = subprocess.run(
        [sys.executable, "-m", "nsf_optax.spectral.decay", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    for flag in ("--eps", "--amplitude", "--window", "--json", "--search"):
        assert flag in out.stdout


def test_search_and_robustness_on_a_tiny_grid():
    base = decay.DecaySettings(num_steps=200, window=(0.0, 1.5), num_points=96)
    ranked = decay.search_settings({"eps": (0.1, 1.0)}, base)
    assert len(ranked) == 2
    assert ranked[0][1]["mean_abs_diff"] <= ranked[1][1]["mean_abs_diff"]
    rob = decay.robustness({"eps": (0.1, 1.0)}, base)
    assert rob["settings"] == 2
    assert rob["p0_flat"] == 1.0
    assert set(rob["sign_by_row"]) == {"p=-0.5", "p=-0.25", "p=0.25", "p=0.5"}
    assert all(0.0 <= v <= 1.0 for v in rob["sign_by_row"].values())
