"""Tests for the 1-D spectral decay experiment (model, table, search, CLI)."""

import dataclasses
import functools
import inspect
import json
import subprocess
import sys

import chex
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import parameterized

from nsf_optax import p_schedule
from nsf_optax.experiments.decay import command
from nsf_optax.experiments.decay import experiment as decay

_TINY = {"num_steps": 100, "num_points": 96, "record_every": 10}
_AMPS = jnp.asarray([1.0, 0.5, 0.3, 0.2, 0.1, 0.05])

# The default protocol's table, as docs/decay.md publishes it (lambda_k, k = 1..32).
# Tolerance 2e-3: the page prints three decimals; float32 results move by
# ~1e-5 between XLA versions and CPUs, far inside it, while any change of the
# model, the protocol or the defaults moves some cell by more.
_PUBLISHED = {
    "p=-0.5": (0.361, 0.336, 0.437, 0.392, 0.389, 0.268),
    "p=-0.25": (0.419, 0.407, 0.427, 0.490, 0.453, 0.615),
    "p=0": (0.400, 0.400, 0.400, 0.400, 0.400, 0.400),
    "p=0.25": (0.362, 0.372, 0.372, 0.337, 0.330, 0.298),
    "p=0.5": (0.347, 0.367, 0.352, 0.281, 0.280, 0.202),
    "tidal[-0.5,0.5]": (0.629, 0.615, 0.624, 0.681, 0.687, 0.796),
    "tidal[0,0.5]": (0.435, 0.442, 0.439, 0.412, 0.411, 0.383),
    "tidal[-0.5,0]": (0.453, 0.438, 0.471, 0.570, 0.500, 0.763),
}


class SimulateDecayTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters((0.2, "error", "integral"), (0.4, "gradient", "sum"))
    def test_p0_decays_every_mode_at_eta(self, eta, energy, accumulate):
        sim = functools.partial(
            decay.simulate_decay,
            eta=eta,
            energy=energy,
            accumulate=accumulate,
            **_TINY,
        )
        trace = self.variant(sim)(0.0, _AMPS)
        fit = decay.fit_decay(trace, (0.0, 1.0))
        np.testing.assert_allclose(fit.lam_t, eta, atol=1e-3)
        np.testing.assert_allclose(fit.lam_tau, eta, atol=1e-3)
        np.testing.assert_allclose(fit.r2_t, 1.0, atol=1e-6)

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters("early", "mean")
    def test_tau_is_t_at_p0(self, tau_energy):
        sim = functools.partial(decay.simulate_decay, tau_energy=tau_energy, **_TINY)
        trace = self.variant(sim)(0.0, _AMPS)
        np.testing.assert_allclose(trace.tau, trace.times, rtol=1e-5, atol=1e-6)
        # A constant tau_p of zero, whatever p does, is t as well.
        trace = self.variant(functools.partial(sim, tau_p=0.0))(0.5, _AMPS)
        np.testing.assert_allclose(trace.tau, trace.times, rtol=1e-5, atol=1e-6)

    @chex.variants(with_jit=True, without_jit=True)
    def test_schedule_and_array_agree(self):
        schedule = p_schedule.cosine_tidal(-0.5, 0.5, 40)
        from_schedule = functools.partial(decay.simulate_decay, schedule, **_TINY)
        a = self.variant(from_schedule)(_AMPS)
        sim = self.variant(functools.partial(decay.simulate_decay, **_TINY))
        b = sim(jnp.stack([schedule(i) for i in range(100)]), _AMPS)
        np.testing.assert_allclose(a.coeffs, b.coeffs, rtol=1e-5)
        np.testing.assert_allclose(a.tau, b.tau, rtol=1e-5)
        np.testing.assert_allclose(a.p[:-1], b.p[:-1])
        assert a.coeffs.shape == (11, 6)
        assert float(a.p[0]) == pytest.approx(0.5)

    def test_tau_early_surrogate_closed_form(self):
        # tau = int_0^t (c s + eps)^-q ds with c = weight * mean(e0^2) / dt.
        s = decay.DecaySettings(num_steps=100, window=(0.0, 1.0))
        trace = decay.simulate_decay(
            0.25, jnp.ones(6), tau_p=0.25, eps=3.0, tau_energy="early", **_TINY
        )
        x = np.arange(1, 96) / 96
        e0 = np.sin(np.pi * np.outer(x, s.modes)).sum(1)
        rate = 4.0 * np.mean(e0**2)  # gradient energy, per unit time
        n = np.arange(100)
        tau = np.concatenate(
            [[0.0], np.cumsum(0.01 * (rate * (n + 1) * 0.01 + 3.0) ** -0.25)]
        )
        np.testing.assert_allclose(trace.tau, tau[::10], rtol=1e-5)


def test_simulate_defaults_are_the_settings_defaults():
    defaults = decay.DecaySettings()
    params = inspect.signature(decay.simulate_decay).parameters
    shared = [f.name for f in dataclasses.fields(defaults) if f.name in params]
    assert len(shared) == 10
    for name in shared:
        assert params[name].default == getattr(defaults, name), name


def test_fit_recovers_exponential():
    t = jnp.linspace(0.0, 2.0, 21)
    trace = decay.DecayTrace(
        times=t, tau=2 * t, p=jnp.zeros_like(t), coeffs=jnp.exp(-0.3 * t)[:, None]
    )
    fit = decay.fit_decay(trace, (0.0, 2.0), "tau")
    np.testing.assert_allclose(fit.lam_t, [0.3], rtol=1e-4)
    np.testing.assert_allclose(fit.lam_tau, [0.15], rtol=1e-4)
    np.testing.assert_allclose(fit.lam, fit.lam_tau)
    assert fit.variable == "tau"


@pytest.fixture(scope="module")
def default_table():
    return decay.decay_table()


def test_default_table_is_the_published_one(default_table):
    assert list(default_table.rows) == list(_PUBLISHED)
    for label, row in _PUBLISHED.items():
        np.testing.assert_allclose(default_table.rows[label].lam, row, atol=2e-3)
    cmp = decay.compare_with_paper(default_table)
    assert cmp["rows_compared"] == 8
    assert cmp["max_abs_diff"] == pytest.approx(0.071, abs=2e-3)
    assert cmp["mean_abs_diff"] == pytest.approx(0.025, abs=2e-3)


def test_default_protocol_regresses_every_row_on_tau(default_table):
    assert {fit.variable for fit in default_table.rows.values()} == {"tau"}


def test_p0_row_is_eta_on_both_variables(default_table):
    fit = default_table.rows["p=0"]
    np.testing.assert_allclose(fit.lam_t, 0.4, atol=1e-4)
    np.testing.assert_allclose(fit.lam_tau, 0.4, atol=1e-4)
    trace = default_table.traces["p=0"]
    np.testing.assert_allclose(trace.tau, trace.times, rtol=1e-5, atol=1e-6)


def test_verdicts_as_published(default_table):
    v = decay.verdicts(default_table)
    holds = {name: d["holds"] for name, d in v.items()}
    assert holds == {
        "p0_flat": True,
        "sign_sets_filter": False,
        "p_neg_half_slower": True,
        "tidal_faster": True,
        "widest_fastest": False,
    }
    neg = v["p_neg_half_slower"]
    assert neg["lambda_16_32"][1] < neg["lambda_16_32"][0]  # drops at k = 32
    assert neg["largest_rebound"] > 0.01  # and some |c_k| rises in the window
    # The filter's sign fails at p = -0.5 alone (a low-pass trend there).
    trend = v["sign_sets_filter"]["trend"]
    assert trend["p=-0.5"] < 0 < trend["p=-0.25"]
    assert trend["p=0.5"] < 0 and trend["p=0.25"] < 0
    # The widest swing is fastest everywhere, but its R^2 is not the lower one.
    widest = v["widest_fastest"]
    assert widest["min_margin"] > 0
    assert widest["mean_r2"] > widest["mean_r2_constant_rows"]


def test_t_fit_settings_reproduce_the_earlier_table():
    table = decay.decay_table(decay.T_FIT_SETTINGS)
    assert {fit.variable for fit in table.rows.values()} == {"t"}
    cmp = decay.compare_with_paper(table)
    assert cmp["max_abs_diff"] == pytest.approx(0.393, abs=2e-3)
    assert cmp["mean_abs_diff"] == pytest.approx(0.065, abs=2e-3)


def test_readings_share_one_simulation():
    s = decay.DecaySettings(num_steps=200, window=(0.0, 1.0))
    out = decay.readings(s)
    assert list(out) == [
        "default",
        "regression=tau_varying",
        "regression=t",
        "tau_exponent=instantaneous",
        "tau_energy=early",
    ]
    _, table = out["default"]
    direct = decay.decay_table(s)
    for label, fit in direct.rows.items():
        np.testing.assert_allclose(table.rows[label].lam, fit.lam, rtol=1e-6)
    varying = out["regression=tau_varying"][1].rows
    assert varying["p=0.5"].variable == "t"
    assert varying["tidal[0,0.5]"].variable == "tau"


# A small grid over every kind of axis (simulation, window and so horizon,
# protocol) around the default, where the verdicts' outcomes mix.
_SMALL_GRID = {
    "amplitude": (1.3, 1.65, 2.0),
    "window": ((0.312, 5.5), (0.0, 4.0)),
    "regression": ("t", "tau"),
    "tau_energy": ("early", "mean"),
}


@pytest.fixture(scope="module")
def small_search():
    return decay.search_settings(_SMALL_GRID, top_fraction=0.25)


def test_search_scores_are_direct_tables(small_search):
    # regression="t" ignores tau's energy: 3 sims, 2 windows, 1 + 2 protocols.
    assert small_search.num_settings == len(small_search.ranked) == 3 * 2 * 3
    scores = [
        (sc["max_abs_diff"], sc["mean_abs_diff"]) for _, sc in small_search.ranked
    ]
    assert scores == sorted(scores)
    for settings, score in small_search.ranked:
        # Each setting's horizon is its window's end; the search simulated
        # every setting to t = 5.5 at once and fitted all windows together.
        assert settings.num_steps == round(settings.window[1] / settings.dt)
        direct = decay.compare_with_paper(decay.decay_table(settings))
        assert direct["max_abs_diff"] == pytest.approx(score["max_abs_diff"], abs=1e-9)
        assert direct["mean_abs_diff"] == pytest.approx(
            score["mean_abs_diff"], abs=1e-9
        )


def test_verdicts_over_settings_count_the_right_sets(small_search):
    ranked = small_search.ranked
    holds = [
        {k: d["holds"] for k, d in decay.verdicts(decay.decay_table(s)).items()}
        for s, _ in ranked
    ]
    threshold = decay.FIT_MAX_ABS_DIFF
    for name, members in (
        (
            "fit",
            [i for i, (_, sc) in enumerate(ranked) if sc["max_abs_diff"] <= threshold],
        ),
        ("top", list(range(round(0.25 * len(ranked))))),
    ):
        entry = small_search.verdicts[name]
        assert entry["settings"] == len(members)
        if not members:
            assert entry["holds"] == {}
            continue
        assert entry["max_abs_diff"] == ranked[members[-1]][1]["max_abs_diff"]
        for verdict in holds[0]:
            expected = np.mean([holds[i][verdict] for i in members])
            assert entry["holds"][verdict] == pytest.approx(expected), (name, verdict)
    # The default fits; the top quarter mixes outcomes, so not all are 0 or 1.
    assert small_search.ranked[0][0] == decay.DecaySettings()
    assert small_search.verdicts["fit"]["settings"] == 1
    top = small_search.verdicts["top"]["holds"]
    assert top["p0_flat"] == 1.0
    assert any(0.0 < f < 1.0 for f in top.values())


def test_search_argument_errors():
    base = decay.DecaySettings(num_steps=200, window=(0.0, 1.0))
    with pytest.raises(ValueError, match="lacks"):
        decay.search_settings({"nope": (1,)}, base)
    with pytest.raises(ValueError, match="num_steps"):
        decay.search_settings({"num_steps": (100,)}, base)
    with pytest.raises(ValueError, match="fit_max_abs_diff"):
        decay.search_settings({}, base, fit_max_abs_diff=0.0)
    with pytest.raises(ValueError, match="top_fraction"):
        decay.search_settings({}, base, top_fraction=1.5)
    with pytest.raises(ValueError, match="rounds"):
        decay.refine_settings(base, rounds=0)


def test_energy_scale_is_a0_squared_times_the_energy_constant():
    # Why the search has A_0 and no energy construction axis.
    # 400 steps: a shape the search tests compiled already.
    s = decay.DecaySettings(num_steps=400, window=(0.0, 4.0), amplitude=0.7)
    ref = decay.decay_table(s)
    for change in (
        {"energy": "error", "amplitude": 1.4},  # c = 1 instead of 4: A_0 x 2
        {"accumulate": "sum", "amplitude": 0.07},  # w = c instead of c dt
    ):
        other = decay.decay_table(dataclasses.replace(s, **change))
        for label, fit in ref.rows.items():
            np.testing.assert_allclose(other.rows[label].lam, fit.lam, atol=2e-5)


def test_steps_after_the_window_change_nothing():
    # Why the search's horizon is the window's end.
    s = decay.DecaySettings(num_steps=400, window=(0.5, 4.0))
    longer = decay.decay_table(dataclasses.replace(s, num_steps=550))
    for label, fit in decay.decay_table(s).rows.items():
        np.testing.assert_array_equal(longer.rows[label].lam, fit.lam)


def test_refine_never_worsens_and_stays_on_three_digits():
    start = decay.DecaySettings(num_steps=400, eps=1.0, window=(0.0, 4.0))
    before = decay.compare_with_paper(decay.decay_table(start))
    refined = decay.refine_settings(start, rounds=1, moves=1)
    ((best, score),) = refined.ranked
    assert score["max_abs_diff"] <= before["max_abs_diff"]
    assert decay.compare_with_paper(decay.decay_table(best)) == pytest.approx(score)
    assert float(f"{best.eps:.3g}") == best.eps
    assert refined.num_settings > 1 and refined.verdicts == {}


def test_robustness_band_on_a_tiny_setting():
    base = decay.DecaySettings(num_steps=200, window=(0.0, 1.0))
    band = decay.robustness_band(base, ("eps", "window"), draws=3, seed=1)
    assert [(e["field"], e["factor"]) for e in band["one_at_a_time"]] == [
        ("eps", 0.8),
        ("eps", 1.2),
        ("window", 0.8),
        ("window", 1.2),
    ]
    j = band["joint"]
    assert j["draws"] == 3
    assert j["median_max"] <= j["worst_max"] and j["median_mean"] <= j["worst_mean"]
    assert band["verdicts_hold"]["p0_flat"] == 1.0
    for fraction in band["verdicts_hold"].values():
        assert fraction in (0.0, 1 / 3, 2 / 3, 1.0)
    with pytest.raises(ValueError, match="fields"):
        decay.robustness_band(base, ("energy",))
    with pytest.raises(ValueError, match="scale"):
        decay.robustness_band(base, scale=1.5)


def test_robustness_band_horizon_follows_the_window():
    base = decay.DecaySettings(num_steps=100, window=(0.0, 1.0))
    band = decay.robustness_band(base, ("window",), draws=1)
    longer = dataclasses.replace(base, window=(0.0, 1.2), num_steps=120)
    direct = decay.compare_with_paper(decay.decay_table(longer))
    assert band["one_at_a_time"][1]["max_abs_diff"] == pytest.approx(
        direct["max_abs_diff"]
    )


@pytest.mark.slow
def test_the_default_is_the_declared_search_s_best():
    # The full search (~1.5 min of CPU on 2 cores) and its refinement (~30 s).
    found = decay.search_settings(top=1)
    assert found.num_settings == 425_250
    refined = decay.refine_settings(found.ranked[0][0])
    best, score = refined.ranked[0]
    assert best == decay.DecaySettings()
    assert score["max_abs_diff"] == pytest.approx(0.0714, abs=1e-3)
    assert score["mean_abs_diff"] == pytest.approx(0.0250, abs=1e-3)
    assert found.verdicts["fit"]["settings"] == 78
    assert found.verdicts["top"]["settings"] == 4252


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"eps": 0.0}, ValueError, "eps"),
        ({"eta": float("nan")}, ValueError, "eta"),
        ({"dt": True}, TypeError, "dt"),
        ({"amplitude_decay": -1.0}, ValueError, "amplitude_decay"),
        ({"num_steps": 10.5}, TypeError, "num_steps"),
        ({"num_points": 32}, ValueError, "num_points"),
        ({"modes": (1, 1)}, ValueError, "modes"),
        ({"window": (0.0, 9.0)}, ValueError, "window"),
        ({"window": (0.0, 0.01)}, ValueError, "three records"),
        ({"energy": "loss"}, ValueError, "energy"),
        ({"regression": "x"}, ValueError, "regression"),
        ({"tau_exponent": "max"}, ValueError, "tau_exponent"),
    ],
)
def test_bad_settings(change, error, match):
    with pytest.raises(error, match=match):
        decay.DecaySettings(**change)


def test_settings_accept_numpy_and_jax_scalars():
    s = decay.DecaySettings(
        eps=np.float32(0.5),
        num_steps=np.int64(300),
        eta=jnp.float32(0.3),
        window=(0.0, 3.0),
    )
    assert (s.eps, s.num_steps) == (0.5, 300)
    assert type(s.eta) is float and s.eta == pytest.approx(0.3)


def test_bad_simulate_arguments():
    with pytest.raises(ValueError, match="num_points"):
        decay.simulate_decay(0.0, jnp.ones(6), num_points=32)
    with pytest.raises(ValueError, match="energy"):
        decay.simulate_decay(0.0, jnp.ones(6), energy="loss", **_TINY)
    with pytest.raises(ValueError, match="eps"):
        decay.simulate_decay(0.0, jnp.ones(6), eps=0.0, **_TINY)
    trace = decay.simulate_decay(0.0, jnp.ones(6), **_TINY)
    with pytest.raises(ValueError, match="window"):
        decay.fit_decay(trace, (5.0, 6.0))
    with pytest.raises(ValueError, match="variable"):
        decay.fit_decay(trace, (0.0, 1.0), "s")


def test_cli_json_schema(capsys):
    argv = ["--json", "--num_steps", "200", "--window", "0", "1", "--readings"]
    argv += ["--robustness", "--draws", "2"]
    assert decay.main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {
        "experiment",
        "evidence",
        "evidence_note",
        "verdict_details",
        "settings",
        "modes",
        "rows",
        "paper_comparison",
        "verdicts",
        "readings",
        "robustness",
        "verdicts_over_settings",
    }
    band = data["verdicts_over_settings"]["band"]
    assert band["settings"] == 2
    assert band["holds"] == data["robustness"]["verdicts_hold"]
    assert set(band["holds"]) == set(data["verdicts"]) == set(data["verdict_details"])
    assert data["modes"] == [1, 2, 4, 8, 16, 32]
    assert data["settings"]["num_steps"] == 200
    assert data["settings"]["regression"] == "tau"
    assert len(data["rows"]) == 8
    for label, row in data["rows"].items():
        assert row["variable"] == "tau"
        assert row["lambda"] == row["lambda_tau"]
        assert (row["paper"] is None) == (label not in decay.PAPER_TABLE)
    assert all(isinstance(v["holds"], bool) for v in data["verdict_details"].values())
    assert data["verdicts"] == {
        k: v["holds"] for k, v in data["verdict_details"].items()
    }
    assert data["evidence"] is True and "num_steps" in data["evidence_note"]
    assert "regression=t" in data["readings"]


def test_cli_search_on_a_small_grid(capsys, monkeypatch):
    # The command's wiring, on a two-setting grid and a one-step refinement.
    monkeypatch.setattr(command, "SEARCH_GRID", {"amplitude": (1.65, 2.0)})
    quick = functools.partial(decay.refine_settings, rounds=1, moves=1)
    monkeypatch.setattr(command, "refine_settings", quick)
    argv = ["--search", "--top", "2", "--num_steps", "200", "--window", "0", "2"]
    assert decay.main([*argv, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    search = data["search"]
    assert search["settings"] == 2 and len(search["best"]) == 2
    assert {b["settings"]["amplitude"] for b in search["best"]} == {1.65, 2.0}
    assert search["refined"]["max_abs_diff"] <= search["best"][0]["max_abs_diff"]
    over = data["verdicts_over_settings"]
    assert set(over) == {"fit", "top"}
    fits = [b for b in search["best"] if b["max_abs_diff"] <= decay.FIT_MAX_ABS_DIFF]
    assert over["fit"]["settings"] == len(fits)
    assert over["top"]["settings"] == 1  # 1 % of two settings: the best one
    assert decay.main(argv) == 0
    out = capsys.readouterr().out
    assert "search over 2 settings" in out and "refined (" in out
    assert "best 1% of the search (1): p0_flat 1.00" in out


def test_cli_t_fit_and_text(capsys):
    assert decay.main(["--t_fit", "--num_steps", "200", "--window", "0", "1"]) == 0
    out = capsys.readouterr().out
    assert "regression=t," in out and "p=0 (t)" in out and "vs paper" in out


def test_cli_runs_as_a_module():
    out = subprocess.run(
        [sys.executable, "-m", "nsf_optax.experiments.decay", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    for flag in ("--eps", "--regression", "--energy", "--t_fit", "--search"):
        assert flag in out.stdout
