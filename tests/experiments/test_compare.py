"""The comparison harness: a well-formed table on a tiny config; its summary."""

import dataclasses
import json
import math

import pytest

from nsf_optax.experiments.compare import command, compare, verdicts
from nsf_optax.experiments.compare import results as results_module
from nsf_optax.experiments.resnet import train
from nsf_optax.experiments.resnet.configs import get_config
from nsf_optax.experiments.tuning import protocol


def _history(accuracy, loss):
    return [
        {"step": 10 * (i + 1), "test_accuracy": a, "test_loss": x}
        for i, (a, x) in enumerate(zip(accuracy, loss, strict=True))
    ]


def test_summarize_steps_ratio_and_alignment():
    histories = {
        "sgd": [
            _history([0.2, 0.4, 0.6, 0.8], [2.0, 1.5, 1.0, 0.5]),
            _history([0.2, 0.4, 0.6, 0.8], [2.0, 1.5, 1.0, 0.5]),
        ],
        "nsf-pulse": [
            _history([0.5, 0.8, 0.85, 0.9], [2.0, 1.6, 1.2, 0.6]),
            _history([0.5, 0.8, 0.85, 0.9], [2.0, 1.6, 1.2, 0.6]),
        ],
    }
    rows, curves = compare.summarize(histories)
    sgd, nsf = rows
    assert sgd["steps_to_target"] == 40.0 and sgd["ratio_vs_baseline"] == 1.0
    assert nsf["steps_to_target"] == 20.0 and nsf["ratio_vs_baseline"] == 0.5
    assert nsf["final_test_accuracy_mean"] == pytest.approx(0.9)
    assert nsf["final_test_accuracy_std"] == pytest.approx(0.0)
    # First half (steps 10, 20): accuracy leads and loss is not lower at both.
    assert nsf["aligned_fraction_first_half"] == 1.0
    assert nsf["table"]["seeds reaching"] == "2/2"
    assert curves["sgd"]["test_accuracy"].shape == (2, 4)
    table = compare.markdown_table(rows)
    assert table.count("\n") == 3 and "| nsf-pulse | 90.00 ± 0.00 |" in table


def test_summarize_uses_sample_std_and_t_intervals():
    histories = {
        "sgd": [_history([0.5, 0.8], [1.0, 0.4]), _history([0.5, 0.9], [1.0, 0.2])],
        "adam": [_history([0.5, 0.7], [1.0, 0.5])],
    }
    rows, _ = compare.summarize(histories)
    sgd, adam = rows
    # ddof 1: std of (0.8, 0.9) is 0.0707; the 95 % t-interval uses t(1) = 12.706.
    assert sgd["final_test_accuracy_std"] == pytest.approx(0.1 / 2**0.5)
    assert sgd["final_test_accuracy_ci95"] == pytest.approx(12.7062 * 0.05, rel=1e-4)
    assert sgd["final_test_loss_std"] == pytest.approx(0.2 / 2**0.5)
    assert sgd["table"]["final test acc"] == "85.00 ± 7.07"
    # One seed: no spread to report.
    assert math.isnan(adam["final_test_accuracy_std"])
    assert math.isnan(adam["final_test_accuracy_ci95"])
    assert adam["table"]["final test acc"] == "70.00"


def test_summarize_needs_baseline_and_common_steps():
    with pytest.raises(ValueError, match="baseline"):
        compare.summarize({"adam": [_history([0.1, 0.2], [1.0, 0.9])]})
    with pytest.raises(ValueError, match="different steps"):
        compare.summarize({"sgd": [_history([0.1, 0.2], [1, 1]), _history([0.1], [1])]})


def test_bad_methods():
    with pytest.raises(ValueError, match="Unknown method"):
        compare.run_comparison(get_config("tiny"), "unused", methods=["sgd", "lamb"])
    with pytest.raises(ValueError, match="baseline"):
        compare.run_comparison(get_config("tiny"), "unused", methods=["adam"])
    with pytest.raises(ValueError, match="seeds"):
        compare.run_comparison(get_config("tiny"), "unused", seeds=0)


def test_harness_on_tiny_config_writes_a_table(tmp_path, capsys):
    argv = ["--config", "tiny", "--seeds", "2", "--methods", "sgd,nsf-pulse"]
    argv += ["--workdir", str(tmp_path), "--checkpoint_every_steps", "0"]
    assert command.main(argv) == 0
    out = capsys.readouterr().out
    assert "| method | final test acc |" in out
    assert results_module.UNTUNED_NOTE in out
    lines = (tmp_path / "results.md").read_text().strip().splitlines()
    table = [line for line in lines if line.startswith("|")]
    assert len(table) == 4  # header, rule, two methods
    assert all(line.count("|") == len(compare.TABLE_COLUMNS) + 1 for line in table)
    with open(tmp_path / "results.json") as f:
        results = json.load(f)
    assert [r["method"] for r in results["rows"]] == ["sgd", "nsf-pulse"]
    assert results["rows"][0]["seeds"] == 2
    assert results["tuned"] is False and "chosen" not in results["rows"][0]
    assert results["evidence"] is False
    assert "learning rates not tuned" in results["not_evidence_because"]
    assert "NOT EVIDENCE (a smoke test): the tiny preset (for tests)" in out
    assert (tmp_path / "comparison.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "results.csv").is_file()
    # Each method's two seeds trained as one population in <method>/group; each
    # run's metrics and config in <method>/seed<k>, one printed line per run.
    assert out.count(" seed 1: test acc ") == 2
    for method in ("sgd", "nsf-pulse"):
        described = json.loads(
            (tmp_path / method / "group" / "population.json").read_text()
        )
        assert [t["seed"] for t in described["trials"]] == [0, 1]
        assert (
            (tmp_path / method / "seed0" / "metrics.csv")
            .read_text()
            .startswith("step,")
        )
        assert not (tmp_path / method / "seed0" / "checkpoints").exists()
    # The same history as the run trained alone (to float rounding).
    alone = train.train_and_evaluate(
        dataclasses.replace(
            compare.method_config(get_config("tiny"), "nsf-pulse", 1),
            checkpoint_every_steps=0,
            progress=False,
        ),
        tmp_path / "alone",
    ).history
    pulse = json.loads((tmp_path / "nsf-pulse" / "seed1" / "metrics.json").read_text())
    assert (
        json.loads((tmp_path / "nsf-pulse" / "seed1" / "config.json").read_text())[
            "seed"
        ]
        == 1
    )
    assert [r["step"] for r in pulse] == [r["step"] for r in alone]
    for got, want in zip(pulse, alone, strict=True):
        for key in ("train_loss", "test_loss", "test_accuracy", "lr", "p"):
            assert got[key] == pytest.approx(want[key], rel=1e-4), key
    # --resume reloads the finished groups instead of training them again.
    assert command.main([*argv, "--resume"]) == 0
    with open(tmp_path / "results.json") as f:
        again = json.load(f)
    assert again["rows"] == results["rows"]


def _finals(method_acc, steps=(10, 20)):
    # One history per seed that ends at the given final accuracy.
    return [_history([a / 2, a], [1.0, 0.5]) for a in method_acc]


def test_paired_difference_interval_and_detectable_difference():
    histories = {
        "sgd": _finals([0.80, 0.82, 0.78]),
        "nsf-pulse": _finals([0.81, 0.84, 0.77]),  # d = +0.01, +0.02, -0.01
        "adam": _finals([0.85, 0.88, 0.82]),  # d = +0.05, +0.06, +0.04
    }
    rows, _ = compare.summarize(histories)
    sgd, nsf, adam = rows
    assert sgd["vs_baseline"] is None
    assert sgd["table"]["Δ acc vs SGD [95% CI]"] == "-"
    v = nsf["vs_baseline"]
    # s = 0.015275, t(0.975, 2) = 4.302653: half-width 0.037946.
    assert v["paired_seeds"] == 3
    assert v["accuracy_difference_mean"] == pytest.approx(0.02 / 3)
    assert v["accuracy_difference_ci95"] == pytest.approx(0.037946, abs=1e-6)
    assert v["difference_detected"] is False
    assert v["detectable_difference"] == pytest.approx(0.0499, abs=1e-4)
    assert nsf["table"]["Δ acc vs SGD [95% CI]"] == "+0.67 [-3.13, +4.46]"
    assert nsf["table"]["detectable Δ (80% power)"] == "4.99"
    w = adam["vs_baseline"]
    # s = 0.01: half-width 4.302653 * 0.01 / sqrt(3) = 0.024841, above 0.
    assert w["accuracy_difference_mean"] == pytest.approx(0.05)
    assert w["accuracy_difference_ci95"] == pytest.approx(0.024841, abs=1e-6)
    assert w["difference_detected"] is True and w["detectable_difference"] is None
    assert adam["table"]["detectable Δ (80% power)"] == "detected"
    assert "time_to_val_target" in adam and adam["time_to_val_target"] is None
    assert (
        compare.markdown_table(rows).splitlines()[0].count("|")
        == len(compare.TABLE_COLUMNS) + 1
    )


def _tuned(curves, lr=0.1):
    # A tuning result whose chosen rate's trials have these validation curves
    # (evaluated at steps 10, 20, ...), and a worse rate beside it.
    trials = [
        {
            "learning_rate": rate,
            "seed": 1000 + k,
            "val_accuracy": acc[-1] * scale,
            "val_loss": 1.0,
            "val_curve": [[10.0 * (i + 1), a * scale] for i, a in enumerate(acc)],
        }
        for rate, scale in ((lr, 1.0), (10 * lr, 0.5))
        for k, acc in enumerate(curves)
    ]
    return protocol.select((lr, 10 * lr), trials)


def test_time_to_the_tuned_baseline_validation_accuracy():
    # Test curves far below the validation ones: the time is read on the latter.
    histories = {
        "sgd": [_history([0.1, 0.1, 0.1, 0.1], [2, 1, 1, 1])] * 2,
        "adam": [_history([0.1, 0.1, 0.1, 0.2], [2, 1, 1, 1])] * 2,
    }
    tuned = {
        "sgd": _tuned([[0.2, 0.5, 0.7, 0.8], [0.2, 0.6, 0.6, 0.6]]),
        "adam": _tuned([[0.7, 0.8, 0.8, 0.8], [0.4, 0.7, 0.8, 0.8]]),
    }
    assert tuned["sgd"].val_target == pytest.approx(0.7)
    rows, _ = compare.summarize(histories, tuned=tuned)
    sgd, adam = rows
    # sgd: mean curve 0.2, 0.55, 0.65, 0.7 -> step 40; seeds reach at 30 and never.
    assert sgd["time_to_val_target"]["steps_to_val_target"] == 40.0
    assert sgd["time_to_val_target"]["per_seed_steps_to_val_target"] == [30.0, None]
    assert sgd["table"]["steps to SGD val target"] == "40"
    assert sgd["table"]["Δ steps vs SGD [95% CI]"] == "-"
    t = adam["time_to_val_target"]
    # adam: mean curve 0.55, 0.75 -> step 20; seeds at 10 and 20: one pair, -20.
    assert t["steps_to_val_target"] == 20.0 and t["val_target"] == pytest.approx(0.7)
    assert t["per_seed_steps_to_val_target"] == [10.0, 20.0]
    assert t["steps_difference_pairs"] == 1 and t["steps_difference_mean"] == -20.0
    assert math.isnan(t["steps_difference_ci95"])
    assert adam["table"]["Δ steps vs SGD [95% CI]"] == "-20"
    header = compare.markdown_table(rows).splitlines()[0]
    assert header.endswith("| steps to SGD val target | Δ steps vs SGD [95% CI] |")
    never = verdicts.time_to_target([10, 20], [[0.1, 0.2]], [[0.1, 0.9]], 0.5)
    assert never["steps_to_val_target"] is None
    assert never["steps_difference_pairs"] == 0
    assert verdicts.cells(None, never)["steps to SGD val target"] == "never"


def test_versus_pairs_any_two_methods_and_names_what_is_missing():
    rows = [
        {"method": "adam", "final_test_accuracy_per_seed": [0.90, 0.92, 0.91]},
        {"method": "nsf", "final_test_accuracy_per_seed": [0.88, 0.91, 0.89]},
        {"method": "old", "final_test_accuracy_mean": 0.9},
    ]
    v = verdicts.versus(rows, "nsf", "adam")
    assert v["paired_seeds"] == 3
    assert v["accuracy_difference_mean"] == pytest.approx(-0.05 / 3)
    with pytest.raises(ValueError, match="No method 'sgd'"):
        verdicts.versus(rows, "nsf", "sgd")
    with pytest.raises(ValueError, match="--resume"):
        verdicts.versus(rows, "old", "adam")


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--lr_grid", "0.1"], "--lr_grid: lr_grid needs --tune."),
        (["--tune_seeds", "3"], "--tune_seeds: tune_seeds needs --tune."),
        (["--val_fraction", "0.2"], "--val_fraction: val_fraction needs --tune."),
        (["--tune", "--val_fraction", "0.5"], "must be in (0, 0.5), got '0.5'"),
        (["--tune", "--lr_grid", "0.1", "-1"], "must be a positive number, got '-1'"),
        (["--tune", "--tune_seeds", "0"], "must be > 0, got 0"),
        (
            ["--tune", "--train_size", "60", "--val_fraction", "0.005"],
            "holds out 0 of the 60",
        ),
        (["--tune", "--lr_grid", "0.1", "0.1"], "lr_grid repeats a value"),
    ],
)
def test_tuning_flags_are_checked_before_anything_runs(
    argv, expected, capsys, tmp_path
):
    workdir = tmp_path / "w"
    assert command.main(["--config", "tiny", "--workdir", str(workdir), *argv]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert expected in line
    assert not workdir.exists()


def test_tuned_cifar10_comparison_at_a_tiny_size(fake_cifar10, tmp_path, capsys):
    # The docs' GPU command (docs/compare.md), shrunk to the 40-image test file.
    workdir = tmp_path / "c"
    argv = ["--config", "cifar10", "--data_dir", str(fake_cifar10), "--tune"]
    argv += ["--lr_grid", "0.01", "0.1", "--tune_seeds", "1", "--val_fraction", "0.3"]
    argv += ["--lr_extend", "0"]
    argv += ["--model", "tiny", "--batch_size", "8", "--eval_batch_size", "4"]
    argv += ["--num_steps", "4", "--warmup_steps", "1", "--eval_every_steps", "2"]
    argv += ["--checkpoint_every_steps", "0", "--no-progress"]
    argv += ["--methods", "sgd,adam", "--seeds", "2", "--workdir", str(workdir)]
    assert command.main(argv) == 0
    out = capsys.readouterr().out
    assert results_module.UNTUNED_NOTE not in out and "| grid index |" in out
    results = json.loads((workdir / "results.json").read_text())
    assert results["tuned"] is True and results["search"]["tune_seeds"] == 1
    assert results["not_evidence_because"] == ["2 final seeds (fewer than 5)"]
    plan = json.loads((workdir / "tuning" / "plan.json").read_text())
    assert [(p["key"], p["learning_rate"], p["seed"]) for p in plan] == [
        ("sgd", 0.01, 1000),
        ("sgd", 0.1, 1000),
        ("adam", 0.01, 1000),
        ("adam", 0.1, 1000),
    ]
    for row in results["rows"]:
        assert row["grid"] == [0.01, 0.1] and row["edge"] in ("low", "high")
        assert len(row["trials"]) == 2
        # Scored on the 12 held-out images (30 % of 40), not the 8 test ones.
        for trial in row["trials"]:
            assert trial["val_accuracy"] * 12 == pytest.approx(
                round(trial["val_accuracy"] * 12), abs=1e-4
            )
        chosen = row["chosen"]["learning_rate"]
        for seed in range(2):
            run = workdir / row["method"] / f"seed{seed}" / "config.json"
            config = json.loads(run.read_text())
            assert config["learning_rate"] == chosen
            assert config["val_fraction"] == 0.0 and config["seed"] == seed
        assert row["time_to_val_target"]["val_target"] == pytest.approx(
            results["rows"][0]["val_target"]
        )
    md = (workdir / "results.md").read_text()
    assert "| grid index | sgd (edge: " in md
    # --resume reloads the tuning and the final runs instead of training again.
    assert command.main([*argv, "--resume"]) == 0
    again = json.loads((workdir / "results.json").read_text())
    assert again["rows"] == results["rows"]


def test_the_documented_cifar10_tuned_command_parses():
    import pathlib
    import shlex

    page = pathlib.Path(__file__).resolve().parents[2] / "docs" / "compare.md"
    text = page.read_text().replace("\\\n", " ")
    (line,) = [
        t for t in text.splitlines() if "--config cifar10 --data_dir DIR --tune" in t
    ]
    argv = shlex.split(line)[3:]  # after "python -m nsf_optax.experiments.compare"
    args = command.build_parser().parse_args(argv)
    from nsf_optax.experiments.tuning import flags, protocol

    assert flags.search(args) == protocol.Search(tune_seeds=2, val_fraction=0.1)
    assert args.preset == "cifar10" and args.seeds == 5


def test_each_methods_seeds_train_in_one_group_directory():
    tiny = get_config("tiny")
    assert compare.run_dirs(tiny, ["sgd", "adam"], 2) == [
        "sgd/group", "sgd/group", "adam/group", "adam/group"
    ]  # fmt: skip
    # One seed: a single run in its own directory, as before.
    assert compare.run_dirs(tiny, ["sgd", "adam"], 1) == ["sgd/seed0", "adam/seed0"]
