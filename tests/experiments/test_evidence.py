"""Which results are evidence: the rule, and the single run's and the sweep's
marking of their smoke tests."""

import json

import pytest

from nsf_optax.experiments.resnet import __main__ as run_cli
from nsf_optax.experiments.tuning import evidence


def test_a_tuned_five_seed_run_of_a_full_preset_is_evidence():
    note = evidence.assess(preset="mnist1d", seeds=5, tuned=True)
    assert note == {"evidence": True, "not_evidence_because": []}
    assert evidence.line(note).startswith("evidence: yes")


@pytest.mark.parametrize(
    ("kwargs", "reasons"),
    [
        (dict(preset="tiny"), ["the tiny preset (for tests)"]),
        (dict(seeds=4), ["4 final seeds (fewer than 5)"]),
        (dict(seeds=1), ["1 final seed (fewer than 5)"]),
        (dict(tuned=False), ["learning rates not tuned"]),
        (dict(quick=True), ["a quick size"]),
        (
            dict(preset="tiny", seeds=2, tuned=False, quick=True),
            [
                "the tiny preset (for tests)",
                "2 final seeds (fewer than 5)",
                "learning rates not tuned",
                "a quick size",
            ],
        ),
    ],
)
def test_each_shortcoming_is_a_reason(kwargs, reasons):
    note = evidence.assess(**{**dict(preset="cifar10", seeds=5, tuned=True), **kwargs})
    assert note == {"evidence": False, "not_evidence_because": reasons}
    assert evidence.line(note) == "NOT EVIDENCE (a smoke test): " + "; ".join(reasons)


@pytest.mark.parametrize("seeds", [0, -1, 2.0, True])
def test_bad_seed_counts_are_refused(seeds):
    with pytest.raises(ValueError, match="seeds must be a positive integer"):
        evidence.assess(preset="mnist1d", seeds=seeds, tuned=True)


def test_the_single_run_says_it_is_not_evidence(capsys, tmp_path):
    workdir = tmp_path / "w"
    argv = ["--config", "tiny", "--workdir", str(workdir)]
    assert run_cli.main([*argv, "--checkpoint_every_steps", "0"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last == (
        "NOT EVIDENCE (a smoke test): the tiny preset (for tests); "
        "1 final seed (fewer than 5); learning rates not tuned"
    )
    note = json.loads((workdir / "evidence.json").read_text())
    assert note["evidence"] is False and len(note["not_evidence_because"]) == 3
