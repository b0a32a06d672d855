"""The comparison harness: a well-formed table on a tiny config; its summary."""

import json
import math

import pytest

from nsf_optax.experiments.compare import command, compare
from nsf_optax.experiments.resnet.configs import get_config


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
    lines = (tmp_path / "results.md").read_text().strip().splitlines()
    table = [line for line in lines if line.startswith("|")]
    assert len(table) == 4  # header, rule, two methods
    assert all(line.count("|") == len(compare.TABLE_COLUMNS) + 1 for line in table)
    with open(tmp_path / "results.json") as f:
        results = json.load(f)
    assert [r["method"] for r in results["rows"]] == ["sgd", "nsf-pulse"]
    assert results["rows"][0]["seeds"] == 2
    assert (tmp_path / "comparison.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "results.csv").is_file()
    assert (tmp_path / "nsf-pulse" / "seed1" / "metrics.csv").is_file()
    # --resume reloads the finished runs instead of training them again.
    assert command.main([*argv, "--resume"]) == 0
    with open(tmp_path / "results.json") as f:
        again = json.load(f)
    assert again["rows"] == results["rows"]
