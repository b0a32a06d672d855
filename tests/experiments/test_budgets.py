"""Budgeted training: schedules fitted to each budget, the smallest-budget statistic,
and a budgeted comparison on the tiny config that resumes."""

import dataclasses
import json
import math

import jax.numpy as jnp
import numpy as np
import pytest

from nsf_optax.experiments.compare import budgets, command, compare, compare_budgets
from nsf_optax.experiments.resnet import train
from nsf_optax.experiments.resnet.configs import get_config
from nsf_optax.experiments.runner import summary
from nsf_optax.experiments.runner.errors import ConfigError
from nsf_optax.experiments.tuning.protocol import Search
from nsf_optax.spectral import detectable_difference


@pytest.mark.parametrize("fraction", [0.25, 0.5, 1.0])
def test_learning_rate_warmup_and_decay_end_at_the_budget(fraction):
    base = dataclasses.replace(get_config("mnist1d"), num_steps=600, warmup_steps=60)
    config = budgets.budget_config(base, fraction)
    steps = round(fraction * 600)
    assert config.num_steps == steps
    assert config.warmup_steps == round(fraction * 60)
    lr = train.create_learning_rate_schedule(config)
    assert float(lr(config.warmup_steps)) == pytest.approx(0.1)
    assert float(lr(config.warmup_steps // 2)) < 0.1
    assert float(lr(steps - 1)) < 1e-3 * 0.1 * 600 / steps
    assert float(lr(steps)) == pytest.approx(0.0, abs=1e-12)
    # Piecewise drops at 50 % and 75 % of the budget, not of num_steps.
    lr = train.create_learning_rate_schedule(
        dataclasses.replace(config, lr_schedule="piecewise")
    )
    assert float(lr(steps // 2 - 1)) == pytest.approx(0.1)
    assert float(lr(steps // 2)) == pytest.approx(0.01)
    assert float(lr(int(0.75 * steps))) == pytest.approx(0.001)


def _switches(schedule, steps):
    p = np.asarray([float(schedule(t)) for t in range(steps)])
    return [int(t) for t in np.flatnonzero(np.diff(p)) + 1]


@pytest.mark.parametrize("p_periods", ["scaled", "fixed"])
def test_p_periods_scale_with_the_budget_or_stay_fixed(p_periods):
    base = dataclasses.replace(get_config("mnist1d"), num_steps=800, warmup_steps=80)
    quarter = budgets.budget_config(base, 0.25, p_periods=p_periods)
    cosine = budgets.budget_config(
        dataclasses.replace(base, p_schedule="cosine_tidal"), 0.25, p_periods=p_periods
    )
    if p_periods == "scaled":
        # pulse 200 -> 50, then +0.25 / -0.25 every 200 -> 50: the same 4 switches
        # per run as the full budget, at a quarter of the steps.
        assert (quarter.pulse_steps, quarter.tidal_every_steps) == (50, 50)
        assert cosine.p_period_steps == 100
        # Only the lengths a schedule uses are scaled.
        assert quarter.p_period_steps == 400
        assert (cosine.pulse_steps, cosine.tidal_every_steps) == (200, 200)
        full = _switches(train.create_p_schedule(base), 800)
        assert _switches(train.create_p_schedule(quarter), 200) == [
            t // 4 for t in full
        ]
    else:
        assert (quarter.pulse_steps, quarter.tidal_every_steps) == (200, 200)
        assert cosine.p_period_steps == 400
        assert _switches(train.create_p_schedule(quarter), 200) == []  # all pulse
    # Baselines and a constant p ignore the p lengths: their runs do not depend
    # on p_periods.
    for unscheduled in (
        dataclasses.replace(base, optimizer="sgd"),
        dataclasses.replace(base, p_schedule="constant"),
    ):
        assert budgets.budget_config(unscheduled, 0.25, p_periods=p_periods) == (
            dataclasses.replace(unscheduled, num_steps=200, warmup_steps=20)
        )
    assert budgets.budget_config(base, 1.0, p_periods=p_periods) == base


def test_warmup_stays_below_a_tiny_budget():
    base = dataclasses.replace(get_config("tiny"), num_steps=6, warmup_steps=5)
    config = budgets.budget_config(base, 1 / 6)
    assert (config.num_steps, config.warmup_steps) == (1, 0)


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ([], "at least one"),
        ([0.0, 1.0], r"in \(0, 1\]"),
        ([1.5, 1.0], r"in \(0, 1\]"),
        ([math.nan, 1.0], r"in \(0, 1\]"),
        ([True, 1.0], r"in \(0, 1\]"),
        ([np.bool_(True), 1.0], r"in \(0, 1\]"),
        (["0.5", 1.0], r"in \(0, 1\]"),
        ([0.5 + 0j, 1.0], r"in \(0, 1\]"),
        ([np.array([0.5]), 1.0], r"in \(0, 1\]"),
        ([0.5], "include 1"),
        ([0.5, 0.501, 1.0], "same step count"),
        ([0.001, 1.0], "rounds to 0"),
    ],
)
def test_bad_budgets(values, match):
    with pytest.raises(ConfigError, match=match):
        budgets.check_budgets(values, 100)


def test_check_budgets_sorts_any_real_scalar():
    assert budgets.check_budgets([1, 0.25, 0.5], 100) == (0.25, 0.5, 1.0)
    mixed = [np.float32(0.5), jnp.asarray(0.25), np.int64(1)]
    assert budgets.check_budgets(mixed, 100) == (0.25, 0.5, 1.0)
    assert budgets.budget_steps(np.int64(8), jnp.asarray(0.5)) == 4
    for num_steps in (0, 2.0, True):
        with pytest.raises(ConfigError, match="num_steps must be a positive"):
            budgets.budget_steps(num_steps, 0.5)
    with pytest.raises(ConfigError, match="p_periods"):
        budgets.budget_config(get_config("tiny"), 1.0, p_periods="linear")


def test_smallest_budget_inverts_the_paired_test():
    # Seed-paired differences to the baseline's full-budget accuracy.
    diff = [
        [-0.05, -0.04, -0.06, -0.05],  # 0.25: clearly below
        [-0.01, 0.02, 0.0, -0.005],  # 0.5: mean +0.00125, interval contains 0
        [0.02, 0.03, 0.02, 0.025],  # 1.0: clearly above
    ]
    r = budgets.smallest_budget([0.25, 0.5, 1.0], diff)
    assert (r["low"], r["estimate"], r["high"]) == (0.5, 0.5, 1.0)
    assert r["seeds_reaching"] == [0, 2, 4]
    assert r["per_seed"] == [1.0, 0.5, 0.5, 1.0]
    assert r["mean_difference"] == pytest.approx([-0.05, 0.00125, 0.02375])
    # The interval half-width is Student-t with n - 1 = 3 degrees of freedom.
    sd = np.std(diff[1], ddof=1)
    assert r["ci_difference"][1] == pytest.approx(3.18245 * sd / 2, rel=1e-4)
    # Never reached: every bound is None, per seed "never".
    never = budgets.smallest_budget(
        [0.5, 1.0], [[-0.1, -0.11, -0.12], [-0.05, -0.06, -0.04]]
    )
    assert (never["low"], never["estimate"], never["high"]) == (None, None, None)
    assert never["per_seed"] == [None, None, None]
    # One seed: no interval, so the three coincide.
    one = budgets.smallest_budget([0.5, 1.0], [[-0.01], [0.0]])
    assert (one["low"], one["estimate"], one["high"]) == (1.0, 1.0, 1.0)
    assert math.isnan(one["ci_difference"][0])


def test_smallest_budget_rejects_bad_input():
    with pytest.raises(ValueError, match="shape"):
        budgets.smallest_budget([0.5, 1.0], [[0.0, 0.1]])
    with pytest.raises(ValueError, match="finite"):
        budgets.smallest_budget([1.0], [[math.nan]])
    with pytest.raises(ValueError, match="increasing"):
        budgets.smallest_budget([1.0, 0.5], [[0.0], [0.0]])


def _finals(accuracies):
    return {
        b: [{"test_accuracy": a, "test_loss": 1 - a} for a in accs]
        for b, accs in accuracies.items()
    }


def test_summarize_budgets_pairs_seeds():
    # Seeds differ much more than methods: the pairing is what separates them.
    target = [0.80, 0.86, 0.90, 0.74, 0.70]
    finals = {
        "sgd": _finals({0.5: [a - 0.03 for a in target], 1.0: target}),
        "nsf-pulse": _finals(
            {0.5: [a + 0.01 for a in target], 1.0: [a + 0.02 for a in target]}
        ),
    }
    sgd, nsf = budgets.summarize_budgets(finals)
    assert sgd["reach"]["estimate"] == 1.0 and sgd["reach"]["low"] == 1.0
    assert nsf["reach"]["high"] == 0.5
    assert nsf["test_accuracy"][0]["mean"] == pytest.approx(np.mean(target) + 0.01)
    assert nsf["test_accuracy"][0]["ci95"] > 0.05  # unpaired: seeds overlap
    assert nsf["test_loss"][1]["std"] == pytest.approx(np.std(target, ddof=1))
    tables = budgets.markdown_tables([sgd, nsf], [3, 6])
    assert "| nsf-pulse | 1.00 ± 0.00 | 2.00 ± 0.00 | 0.5 | 0.5 to 0.5 |" in tables
    assert "| sgd | -3.00 ± 0.00 | 0.00 ± 0.00 | 1 | 1 to 1 |" in tables
    with pytest.raises(ValueError, match="full budget"):
        budgets.summarize_budgets({"sgd": _finals({0.5: target})})
    with pytest.raises(ValueError, match="seeds"):
        finals["nsf-pulse"][0.5] = finals["nsf-pulse"][0.5][:3]
        budgets.summarize_budgets(finals)


def _run_configs(workdir):
    return {
        str(p.parent.relative_to(workdir)): json.loads(p.read_text())
        for p in workdir.glob("*/*/seed*/config.json")
    }


def test_budgeted_comparison_on_tiny_config_resumes(tmp_path, capsys):
    # One method and seed keep it short: the schedules and the statistics have
    # their own tests above.
    argv = ["--config", "tiny", "--seeds", "1", "--methods", "sgd"]
    argv += ["--budgets", "0.5", "1", "--workdir", str(tmp_path)]
    assert command.main(argv) == 0
    assert "smallest budget" in capsys.readouterr().out
    configs = _run_configs(tmp_path)
    assert set(configs) == {"sgd/budget0.5/seed0", "sgd/budget1/seed0"}
    for name, config in configs.items():
        full = "budget1/" in name
        assert config["num_steps"] == (6 if full else 3), name
        assert config["warmup_steps"] == (2 if full else 1), name
    with open(tmp_path / "budgets-scaled.json") as f:
        results = json.load(f)
    assert results["budgets"] == [0.5, 1.0] and results["steps"] == [3, 6]
    assert [r["method"] for r in results["rows"]] == ["sgd"]
    for suffix in ("md", "csv", "png"):
        assert (tmp_path / f"budgets-scaled.{suffix}").stat().st_size > 100
    assert (tmp_path / "budgets-curves.png").read_bytes()[:4] == b"\x89PNG"

    # Interrupt the half-budget run after 2 of its 3 steps; --resume finishes it
    # (not from scratch: the first 2 steps' evaluations are kept) and only reloads
    # the finished full-budget run, and the results are the same.
    run = tmp_path / "sgd" / "budget0.5" / "seed0"
    kept = (tmp_path / "sgd" / "budget1" / "seed0" / "checkpoints").stat().st_mtime_ns
    config = budgets.budget_config(
        compare.method_config(get_config("tiny"), "sgd", 0), 0.5
    )
    for path in sorted(run.rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    train.train_and_evaluate(config, run, max_steps_this_run=2)
    assert command.main([*argv, "--resume"]) == 0
    with open(tmp_path / "budgets-scaled.json") as f:
        again = json.load(f)
    assert again["rows"] == results["rows"]
    assert (
        tmp_path / "sgd" / "budget1" / "seed0" / "checkpoints"
    ).stat().st_mtime_ns == kept


def test_fixed_p_periods_share_the_runs_they_do_not_change():
    base = get_config("tiny")
    methods, b = ["sgd", "adam", "nsf-const", "nsf-pulse"], (0.5, 1.0)
    scaled = compare_budgets.budget_plan(base, methods, 2, b, "scaled")
    fixed = compare_budgets.budget_plan(base, methods, 2, b, "fixed")
    assert len(scaled) == len(fixed) == 16
    assert [run[3] for run in scaled][:2] == [
        "sgd/budget0.5/seed0",
        "sgd/budget0.5/seed1",
    ]
    changed = {s[3]: f[3] for s, f in zip(scaled, fixed, strict=True) if s != f}
    # Only NSF below the full budget depends on the setting: its own directory.
    assert changed == {
        f"nsf-pulse/budget0.5/seed{k}": f"nsf-pulse/budget0.5-pfixed/seed{k}"
        for k in range(2)
    }
    for method, budget, config, name in fixed:
        assert config.seed == int(name[-1]) and config.method == method
        assert config.num_steps == round(budget * 6)


@pytest.mark.slow
def test_fixed_p_periods_reuse_the_scaled_runs(tmp_path):
    argv = ["--config", "tiny", "--seeds", "1", "--methods", "sgd,nsf-pulse"]
    argv += ["--budgets", "0.5", "1", "--workdir", str(tmp_path)]
    assert command.main(argv) == 0
    before = _run_configs(tmp_path)
    assert command.main([*argv, "--resume", "--p_periods", "fixed"]) == 0
    added = set(_run_configs(tmp_path)) - set(before)
    assert added == {"nsf-pulse/budget0.5-pfixed/seed0"}
    with open(tmp_path / "budgets-fixed.json") as f:
        assert json.load(f)["p_periods"] == "fixed"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--budgets", "0", "1"], "--budgets: must be in (0, 1]"),
        (["--budgets", "x"], "--budgets: expected a number"),
        (["--budgets", "0.5"], "--budgets: budgets must include 1"),
        (["--p_periods", "fixed"], "--p_periods: p_periods needs --budgets"),
        (["--budgets", "1", "--p_periods", "half"], "--p_periods: invalid choice"),
    ],
)
def test_budget_flag_mistakes_are_one_line(argv, expected, tmp_path, capsys):
    base = ["--config", "tiny", "--workdir", str(tmp_path / "w")]
    assert command.main([*base, *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0], err
    assert not (tmp_path / "w").exists()


def test_matching_budget_allows_only_what_the_design_cannot_detect():
    diff = [
        [-0.05, -0.04, -0.06, -0.05],  # 0.25: clearly below
        [-0.01, 0.02, 0.0, -0.005],  # 0.5: within the detectable difference
        [0.02, 0.03, 0.02, 0.025],
    ]
    r = budgets.smallest_budget([0.25, 0.5, 1.0], diff)
    expected = [detectable_difference(np.asarray(d)) for d in diff]
    np.testing.assert_allclose(r["detectable"], expected, rtol=1e-12)
    # 0.5: mean - half = 0.00125 - 0.0208 > -0.0378 (its detectable difference).
    lower = r["mean_difference"][1] - r["ci_difference"][1]
    assert -r["detectable"][1] < lower < 0
    assert r["matching"] == 0.5
    # Equal differences at 0.25 are shown 5 points below: a detectable 0.
    flat = budgets.smallest_budget([0.25, 1.0], [[-0.05] * 3, [0.0, 0.01, -0.01]])
    assert flat["detectable"][0] == 0.0 and flat["matching"] == 1.0
    rows = [{"method": "nsf", "budgets": [0.25, 0.5, 1.0], "reach": r}]
    rows[0]["test_accuracy"] = rows[0]["test_loss"] = [{"mean": 0.5, "ci95": 0.0}] * 3
    table = budgets.markdown_tables(rows, [1, 2, 4]).splitlines()
    assert table[-3].endswith("| per seed | matches |")
    assert table[-1].endswith("| 0.5 |")
    one = budgets.smallest_budget([0.5, 1.0], [[-0.01], [0.0]])
    assert one["matching"] is None and math.isnan(one["detectable"][0])
    claims = compare_budgets.headline(
        [{"method": "nsf", "reach": r}, {"method": "sgd", "reach": one}]
    )
    assert claims == [
        {"method": "nsf", "matching": 0.5, "claim": False},
        {"method": "sgd", "matching": None, "claim": False},
    ]
    assert compare_budgets.headline([{"method": "a", "reach": r}], 0.5)[0]["claim"]
    assert compare_budgets.headline_line(claims) == (
        "**Baseline accuracy at 0.25 of the cost?** nsf: no (matches from budget "
        "0.5); sgd: no (no budget shown to match)."
    )


SEARCH = Search(lr_grid=(0.03, 0.3), tune_seeds=1, val_fraction=0.2, lr_extend=0)


def test_the_seeds_of_a_method_and_budget_train_in_one_group_directory():
    names = compare_budgets.run_names(get_config("tiny"), ["sgd"], 2, (0.5, 1.0))
    assert names == ["sgd/budget0.5/group"] * 2 + ["sgd/budget1/group"] * 2


def test_tuned_budget_plan_keys_every_method_and_budget():
    tiny = get_config("tiny")
    bases = compare_budgets.tuning_bases(tiny, ["sgd", "adam"], (0.5, 1.0))
    assert list(bases) == ["sgd@0.5", "sgd@1", "adam@0.5", "adam@1"]
    assert bases["sgd@0.5"].num_steps == 3 and bases["adam@1"].optimizer == "adam"
    names = compare_budgets.run_names(
        tiny, ["sgd", "adam"], 2, (0.5, 1.0), search=SEARCH
    )
    # 4 keys x 2 rates x 1 seed; each key's two trials train as one population.
    assert names == [f"tuning/group{2 * (k // 2)}" for k in range(8)]
    lrs = {"sgd@0.5": 0.3, "sgd@1": 0.03}
    plan = compare_budgets.final_plan(tiny, ["sgd"], 2, (0.5, 1.0), "scaled", lrs)
    assert [(name, c.learning_rate, c.seed) for *_, c, name in plan] == [
        ("sgd/budget0.5-lr0.3/seed0", 0.3, 0),
        ("sgd/budget0.5-lr0.3/seed1", 0.3, 1),
        ("sgd/budget1-lr0.03/seed0", 0.03, 0),
        ("sgd/budget1-lr0.03/seed1", 0.03, 1),
    ]


@pytest.mark.slow  # 4 trials and 3 final runs: about a minute on a loaded 2-core CPU
def test_tuned_budgets_tune_per_budget_and_keep_the_full_budget_variant(
    tmp_path, capsys
):
    base = dataclasses.replace(get_config("tiny"), progress=False)
    rows = compare_budgets.run_budget_comparison(
        base, tmp_path, budgets=(0.5, 1.0), methods=["sgd"], seeds=1,
        search=SEARCH, preset="tiny",
    )  # fmt: skip
    out = capsys.readouterr().out
    line = (
        "NOT EVIDENCE (a smoke test): the tiny preset (for tests); "
        "1 final seed (fewer than 5)"
    )
    assert out.splitlines().count(line) == 2  # heading each variant's results
    tuned = json.loads((tmp_path / "budgets-scaled-tuned.json").read_text())
    full = json.loads((tmp_path / "budgets-scaled-full-lr.json").read_text())
    assert tuned["rows"] == summary.strict_json(rows) and tuned["evidence"] is False
    assert list(tuned["tuning"]) == ["sgd@0.5", "sgd@1"]
    chosen = {k: t["chosen"]["learning_rate"] for k, t in tuned["tuning"].items()}
    for t in tuned["tuning"].values():
        assert len(t["trials"]) == 2 and t["edge"] in ("low", "high")
    configs = _run_configs(tmp_path)
    assert f"sgd/budget0.5-lr{chosen['sgd@0.5']:g}/seed0" in configs
    assert f"sgd/budget0.5-lr{chosen['sgd@1']:g}/seed0" in configs
    assert len(configs) == (2 if chosen["sgd@0.5"] == chosen["sgd@1"] else 3)
    # Both variants share the full-budget run.
    assert full["rows"][0]["test_accuracy"][1] == tuned["rows"][0]["test_accuracy"][1]
    md = (tmp_path / "budgets-scaled-tuned.md").read_text()
    assert "tuned per method and budget" in md and "## Tuning" in md
    assert "Baseline accuracy at 0.25 of the cost?" in md
    assert (
        "not retuned per budget" in (tmp_path / "budgets-scaled-full-lr.md").read_text()
    )
