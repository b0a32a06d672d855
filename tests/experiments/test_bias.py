"""Tests for the spectral-bias experiment (ReLU MLP, time to learn each k)."""

import contextlib
import dataclasses
import doctest
import functools
import io
import json
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import nsf_optax.experiments.bias.model
from nsf_optax.experiments.bias import experiment as bias
from nsf_optax.experiments.bias.model import make_train_program
from nsf_optax.spectral import frequency_error


class MlpTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_init_follows_torch_bounds(self):
        init = self.variant(functools.partial(bias.init_relu_mlp, width=16, depth=3))
        params = init(jax.random.key(0))
        assert [w.shape for w, _ in params] == [(1, 16), (16, 16), (16, 16), (16, 1)]
        for w, b in params:
            bound = 1 / math.sqrt(w.shape[0])
            assert float(jnp.max(jnp.abs(w))) <= bound
            assert float(jnp.max(jnp.abs(b))) <= bound
            assert w.dtype == jnp.float32

    @chex.variants(with_jit=True, without_jit=True)
    def test_apply_is_piecewise_linear(self):
        params = bias.init_relu_mlp(jax.random.key(1), width=8, depth=2)
        apply = self.variant(bias.relu_mlp_apply)
        x = jnp.linspace(0, 1, 4097)
        y = np.asarray(apply(params, x), np.float64)
        # Second differences vanish except near the (few) kinks.
        kinks = np.abs(np.diff(y, 2)) > 1e-5
        assert y.shape == (4097,) and kinks.mean() < 0.02

    @chex.variants(with_jit=True, without_jit=True)
    def test_target_has_unit_amplitude_at_each_frequency(self):
        freqs = (1, 3, 7)
        make = self.variant(
            functools.partial(bias.make_sine_target, freqs=freqs, num_points=32)
        )
        f, phases = make(jax.random.key(2))
        assert bool(jnp.all((phases >= 0) & (phases < 2 * jnp.pi)))
        spectrum = np.abs(np.fft.rfft(np.asarray(f))) / 16  # N / 2 per unit sine
        np.testing.assert_allclose(spectrum[list(freqs)], 1.0, rtol=1e-5)
        others = np.delete(spectrum, list(freqs))
        assert np.max(others) < 1e-5
        np.testing.assert_allclose(frequency_error(jnp.zeros(32), f, freqs), 1.0)


@pytest.mark.parametrize(
    "freqs,n", [((0, 2), 32), ((16,), 32), ((2.5,), 32), ((1, 40), 64)]
)
def test_target_bad_freqs(freqs, n):
    with pytest.raises(ValueError, match="freqs"):
        bias.make_sine_target(jax.random.key(0), freqs, n)


def test_mlp_bad_sizes():
    with pytest.raises(ValueError, match="width and depth"):
        bias.init_relu_mlp(jax.random.key(0), width=0)


def test_program_at_p_half_is_adam():
    # The batched program at p = 1/2 without normalize reproduces optax.adam.
    freqs, n, steps, lr = (1, 2, 4), 16, 12, 3e-3
    program = make_train_program(
        freqs=freqs,
        num_points=n,
        num_steps=steps,
        probe_every=6,
        b1=0.9,
        b2=0.999,
        eps=1e-8,
        normalize=None,
    )
    keys = jax.random.split(jax.random.key(0), 2)
    params = jax.vmap(lambda k: bias.init_relu_mlp(k, 8, 2))(keys)
    target = jax.vmap(lambda k: bias.make_sine_target(k, freqs, n)[0])(keys)
    trace = program(params, target, jnp.full(2, lr), jnp.full((2, steps), 0.5))
    chex.assert_shape(trace.errors, (2, steps + 1, 3))
    chex.assert_shape(trace.loss, (2, steps + 1))
    chex.assert_shape(trace.kernel_gain, (2, 2, 3))
    x = jnp.arange(n) / n
    tx = optax.adam(lr)

    def loss_fn(q, f):
        out = bias.relu_mlp_apply(q, x)
        return jnp.mean((out - f) ** 2), out

    @jax.jit
    def step(carry, _):
        q, state, f = carry
        (loss, out), grads = jax.value_and_grad(loss_fn, has_aux=True)(q, f)
        updates, state = tx.update(grads, state, q)
        logged = (loss, frequency_error(out, f, freqs))
        return (optax.apply_updates(q, updates), state, f), logged

    p0, f0 = jax.tree.map(lambda a: a[0], params), target[0]
    _, (losses, errors) = jax.lax.scan(
        step, (p0, tx.init(p0), f0), None, length=steps + 1
    )
    np.testing.assert_allclose(trace.loss[0], losses, rtol=2e-4)
    np.testing.assert_allclose(trace.errors[0], errors, rtol=2e-3, atol=1e-5)
    # At p = 0 the gain is 1 / (1 + eps) for every coordinate, so the weighted
    # gain equals the unweighted tangent energy.
    trace0 = program(params, target, jnp.full(2, lr), jnp.zeros((2, steps)))
    np.testing.assert_allclose(trace0.kernel_gain, trace0.kernel, rtol=1e-5)


# ---------------------------------------------------------------------------
# Verdict logic on synthetic results (known answers, no training).

_SYN = bias.BiasSettings(
    freqs=(1, 2, 3, 4, 5, 6),
    num_steps=1000,
    seeds=(0, 1, 2),
    normalizes=(None,),
    band_size=2,
    probe_every=500,
)


def _synthetic(times, log_nu_slope=1.0, low_final=0.01):
    """A BiasResult whose time to learn is ``times[label](k, seed)``."""
    s = _SYN
    k = np.asarray(s.freqs, np.float64)
    rows, ttl, errors, loss, kg, kern, lnu = [], {}, {}, {}, {}, {}, {}
    for label, (_, desc) in s.schedules().items():
        rows.append(
            bias.BiasRow(
                label, label, None, desc, desc.get("p", 0.0), (0.0,), 1e-2, False
            )
        )
        ttl[label] = np.stack([times[label](k, i) for i in range(len(s.seeds))])
        # Error 1 until learned, then 0.01 (never learned: 1 throughout).
        steps = np.arange(s.num_steps + 1)[None, :, None]
        t = np.where(np.isnan(ttl[label]), np.inf, ttl[label])[:, None, :]
        err = np.where(steps < t, 1.0, 0.01)
        err[:, -100:, : s.band_size] = low_final
        errors[label], loss[label] = err, np.full((len(s.seeds), 2), 0.1)
        p = desc.get("p", 0.0)
        nu = np.broadcast_to(log_nu_slope * np.log10(k), (len(s.seeds), 2, k.size))
        lnu[label], kern[label] = nu, np.ones_like(nu)
        kg[label] = 10.0 ** (-p * nu)
    res = bias.BiasResult(
        s, rows, errors, loss, ttl, np.array([500, 1000]), kg, kern, lnu, {}, {}
    )
    return bias.bias_verdicts(res)


def _power_law(p, scale=1.0):
    # t_k = 10 k^(1 + p): low k first; a lower p flattens the ratio; seed jitter.
    return lambda k, i: scale * 10 * k ** (1 + p) * (1 + 0.03 * (i - 1))


def _paper_world():
    times = {f"p={p:g}": _power_law(p) for p in _SYN.ps}
    times["cosine[-0.5,0.5]"] = lambda k, i: (
        _power_law(0.0)(k, i) * np.where(k > 4, 0.5, 1.0)
    )
    times["pulse[-0.5,0.5]"] = _power_law(0.0)
    return times


def test_verdicts_where_the_paper_holds():
    summary, v = _synthetic(_paper_world())
    assert v["a"]["holds"] and v["b"]["holds"]
    assert v["b"]["cases"]["none"]["spearman_p_vs_ratio"] == pytest.approx(1.0)
    assert v["b"]["cases"]["none"]["complete_ps"] == list(_SYN.ps)
    c = v["c"]["cases"]
    assert (
        c["cosine[-0.5,0.5]"]["holds"] and c["cosine[-0.5,0.5]"]["reference"] == "p=0"
    )
    d = c["cosine[-0.5,0.5]"]["high_band_log10_steps_minus_reference"]["mean"]
    assert d == pytest.approx(math.log10(0.5))
    # Same as its reference: not earlier, so (c) as a whole does not hold.
    assert not c["pulse[-0.5,0.5]"]["holds"] and not v["c"]["holds"]
    assert v["eq4"]["premise_holds"] and v["eq4"]["gain_direction_holds"]
    ratio = summary["p=0.5"]["log10_ratio_high_low"]["mean"]
    # H - L = 1.5 * (mean log10 of {5, 6} - mean log10 of {1, 2}).
    assert ratio == pytest.approx(0.75 * math.log10(15), rel=1e-6)


def test_verdicts_where_the_paper_fails():
    # High frequencies first (a fails); p has no effect on the ratio (b fails);
    # high-frequency tangents on small second moments (Eq. 4's premise fails).
    times = {
        label: (lambda k, i: 1000.0 / k * (1 + 0.03 * i)) for label in _SYN.schedules()
    }
    _, v = _synthetic(times, log_nu_slope=-1.0, low_final=0.5)
    assert not v["a"]["holds"] and not v["b"]["holds"] and not v["c"]["holds"]
    assert not v["eq4"]["premise_holds"] and not v["eq4"]["gain_direction_holds"]
    assert not v["eq4"]["holds"]


def test_never_learned_counts_as_num_steps():
    times = _paper_world()
    times["p=0.5"] = lambda k, i: np.where(k > 4, np.nan, 10.0 * k)
    summary, _ = _synthetic(times)
    high = summary["p=0.5"]["high_band_log10_steps"]["mean"]
    assert high == pytest.approx(3.0) and summary["p=0.5"]["learned_fraction"] < 1
    assert not summary["p=0.5"]["complete"] and summary["p=0"]["complete"]


def test_censored_settings_drop_out_of_b_and_c():
    times = _paper_world()
    # Untrainable negative p: nothing learned, so r = 0 there (a censoring
    # artefact that must not count as "lowering p shortens the high band").
    for p in (-0.5, -0.25):
        times[f"p={p:g}"] = lambda k, i: np.full_like(k, np.nan)
    # Positive p only, the ratio falling with p: (b) must not hold.
    for p in (0.0, 0.25, 0.5):
        times[f"p={p:g}"] = _power_law(-p)
    times["cosine[-0.5,0.5]"] = lambda k, i: np.where(k > 4, np.nan, 1.0)
    _, v = _synthetic(times)
    case = v["b"]["cases"]["none"]
    assert case["complete_ps"] == [0.0, 0.25, 0.5]
    assert case["spearman_p_vs_ratio"] == pytest.approx(-1.0) and not case["holds"]
    # The cosine row "learns" its low band at step 1 but never its high band.
    assert not v["c"]["cases"]["cosine[-0.5,0.5]"]["holds"]
    # Fewer than three complete p: not measurable, does not hold.
    times["p=0.25"] = times["p=-0.5"]
    _, v = _synthetic(times)
    assert not v["b"]["holds"] and "spearman_p_vs_ratio" not in v["b"]["cases"]["none"]


def test_b_falls_back_to_the_error_area():
    # Every setting misses k = 6: none is complete, all learn their low band,
    # so the uncensored log-error area decides (b).
    def censored(fn):
        return lambda k, i: np.where(k == 6, np.nan, fn(k, i))

    times = {f"p={p:g}": censored(_power_law(p, 5.0)) for p in _SYN.ps}
    times["cosine[-0.5,0.5]"] = times["pulse[-0.5,0.5]"] = times["p=0"]
    _, v = _synthetic(times)
    case = v["b"]["cases"]["none"]
    assert case["complete_ps"] == [] and case["decided_by"] == "area"
    assert case["low_band_learned_ps"] == list(_SYN.ps)
    assert case["spearman_p_vs_ratio"] == pytest.approx(1.0) and case["holds"]


def test_bad_settings():
    with pytest.raises(ValueError, match="two seeds"):
        bias.bias_experiment(dataclasses.replace(_SYN, seeds=(0,)))
    with pytest.raises(ValueError, match="probe_every"):
        bias.bias_experiment(dataclasses.replace(_SYN, probe_every=300))
    with pytest.raises(ValueError, match="band_size"):
        bias.bias_experiment(dataclasses.replace(_SYN, band_size=4))
    # A negative size names itself (not the multiple of probe_every it also breaks).
    with pytest.raises(ValueError, match=r"num_steps must be >= 1, got -400"):
        bias.bias_experiment(dataclasses.replace(_SYN, num_steps=-400))


# ---------------------------------------------------------------------------
# The command line and the module's doctests, on one --quick run: one test, so
# that the compiled programs are shared (also under pytest-xdist).


def _cli(monkeypatch, result, args):
    # The command line on the quick run (no second training).
    monkeypatch.setattr(bias, "bias_experiment", lambda settings: result)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert bias.main(args) == 0
    return out.getvalue()


def _check_quick_json(data):
    s = bias.BiasSettings.quick()
    assert {"settings", "time_to_learn", "summary", "verdict_details"} <= set(data)
    rows = data["settings"]["rows"]
    keys = [r["key"] for r in rows]
    assert len(keys) == len(s.schedules()) * len(s.normalizes) == len(set(keys))
    assert "p=0.5" in keys and "cosine[-0.5,0.5] rms" in keys
    for r in rows:
        assert r["lr"] in s.lr_grid and len(r["tune_mean_log10_loss"]) == len(s.lr_grid)
    assert set(data["time_to_learn"]) == set(keys)
    for per_k in data["time_to_learn"].values():
        assert list(per_k) == [str(k) for k in s.freqs]
        for per_seed in per_k.values():
            assert len(per_seed) == len(s.seeds)
            assert all(t is None or 0 <= t <= s.num_steps for t in per_seed)
    details = data["verdict_details"]
    for claim in ("a", "b", "c", "eq4"):
        assert data["verdicts"][claim] is details[claim]["holds"]
        assert details[claim]["cases"]
    sensitivity = details["threshold_sensitivity"]
    assert list(sensitivity) == [f"{t:g}" for t in s.sensitivity_thresholds]
    assert all(set(v) == {"a", "b", "c"} for v in sensitivity.values())
    # Adam (p = 1/2) at its tuned rate learns k = 1 in every seed.
    assert all(t is not None for t in data["time_to_learn"]["p=0.5"]["1"])


def test_quick_run_cli_and_doctests(monkeypatch, tmp_path):
    doc = doctest.testmod(bias, optionflags=doctest.ELLIPSIS)  # runs --quick
    assert doc.attempted > 0 and doc.failed == 0
    result = bias.bias_experiment(bias.BiasSettings.quick())
    text = _cli(monkeypatch, result, ["--quick", "--json"])
    _check_quick_json(json.loads(text, parse_constant=lambda c: pytest.fail(c)))
    # Overrides reach the settings.
    seen = []
    monkeypatch.setattr(bias, "bias_experiment", lambda st: seen.append(st) or result)
    args = ["--quick", "--first_seed", "5", "--num_seeds", "3", "--threshold", "0.3"]
    with contextlib.redirect_stdout(io.StringIO()):
        assert bias.main([*args, "--num_steps", "200", "--json"]) == 0
    assert seen[0].seeds == (5, 6, 7) and seen[0].threshold == 0.3
    assert seen[0].num_steps == 200 and seen[0].width == bias.BiasSettings.quick().width
    # The text table, verdicts and figures.
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    text = _cli(monkeypatch, result, ["--quick", "--plots", str(tmp_path)])
    assert "high - low" in text and "(eq4)" in text
    names = sorted(f.name for f in tmp_path.iterdir())
    assert names == ["bias_eq4.png", "bias_heatmaps.png", "bias_time_to_learn.png"]


def test_doctests_of_the_model():
    result = doctest.testmod(
        nsf_optax.experiments.bias.model, optionflags=doctest.ELLIPSIS
    )
    assert result.attempted > 0
    assert result.failed == 0
