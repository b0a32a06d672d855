"""Commands refuse what they can before they train, without loading jax; a result
that fails after training still leaves every other result written."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

from nsf_optax.experiments.compare import command
from nsf_optax.experiments.landscape import sweep
from nsf_optax.experiments.resnet import __main__ as run_cli
from nsf_optax.experiments.runner import workdirs
from nsf_optax.experiments.runner.errors import WorkdirError

from ._files import corrupt_largest_file, snapshot

_ROOT = pathlib.Path(__file__).resolve().parents[2]
TINY = ["--config", "tiny", "--num_filters", "32", "--no-progress"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A finished tiny run, and a copy whose newest checkpoint has a flipped chunk."""
    tmp = tmp_path_factory.mktemp("refusals")
    assert run_cli.main([*TINY, "--workdir", str(tmp / "run")]) == 0
    # A comparison's run and a sweep's level that hold checkpoints.
    # (A comparison's five seeds of sgd train as one population in sgd/group.)
    for path in (tmp / "cmp" / "sgd" / "group", sweep.level_dir(tmp / "sweep", 0.0)):
        os.makedirs(path)
        os.symlink(tmp / "run" / "checkpoints", os.path.join(path, "checkpoints"))
    corrupt = tmp / "corrupt"
    subprocess.run(["cp", "-r", str(tmp / "run"), str(corrupt)], check=True)
    corrupt_largest_file(corrupt / "checkpoints" / "6" / "model")
    (tmp / "empty").mkdir()
    return tmp


_REFUSE = """
import importlib, json, sys
import nsf_optax
core = set(sys.modules)
module, argv = sys.argv[1], json.loads(sys.argv[2])
status = importlib.import_module(module).main(argv)
heavy = {"jax", "flax", "orbax.checkpoint", "optax", "matplotlib", "scipy"}
print("STATUS", status, "LOADED", sorted(heavy & (set(sys.modules) - core)))
"""

DIGITS_60 = ["--config", "digits", "--seeds", "1", "--methods", "sgd,nsf-cosine"]
DIGITS_60 += ["--num_steps", "60"]


@pytest.mark.parametrize(
    ("module", "argv", "expected"),
    [
        (
            "nsf_optax.experiments.resnet",
            ["--workdir", "{tmp}/run"],
            "already holds checkpoints",
        ),
        (
            "nsf_optax.experiments.resnet",
            ["--workdir", "{tmp}/empty", "--resume"],
            "No checkpoint to resume from",
        ),
        (
            "nsf_optax.experiments.resnet",
            ["--workdir", "{tmp}/run", "--resume_step", "4"],
            "--resume_step 4: there is no such checkpoint",
        ),
        (
            "nsf_optax.experiments.resnet",
            ["--workdir", "{tmp}/corrupt", "--resume"],
            "Checkpoint step 6 in",
        ),
        (
            "nsf_optax.experiments.compare.command",
            ["--config", "tiny", "--methods", "sgd", "--workdir", "{tmp}/cmp"],
            "sgd/group/checkpoints' already holds checkpoints",
        ),
        (
            "nsf_optax.experiments.compare.command",
            [*DIGITS_60, "--workdir", "{tmp}/new"],
            "--eval_every_steps, --num_steps: eval_every_steps (50) leaves no "
            "evaluation in the first half (steps 0 to 30)",
        ),
        (
            "nsf_optax.experiments.compare.command",
            [*DIGITS_60, "--budgets", "0.5", "1.0", "--workdir", "{tmp}/new"],
            "use eval_every_steps <= 30",
        ),
        pytest.param(
            "nsf_optax.experiments.resnet",
            ["--workdir", "/sys/x/run"],
            "--workdir '/sys/x/run' cannot be created",
            marks=pytest.mark.skipif(not os.path.isdir("/sys/kernel"), reason="sysfs"),
        ),
        pytest.param(
            "nsf_optax.experiments.landscape.sweep",
            ["--config", "tiny", "--workdir", "/sys/x/sweep"],
            "--workdir '/sys/x/sweep' cannot be created",
            marks=pytest.mark.skipif(not os.path.isdir("/sys/kernel"), reason="sysfs"),
        ),
        (
            "nsf_optax.experiments.landscape.sweep",
            ["--config", "tiny", "--workdir", "{tmp}/sweep"],
            "label_noise_0/checkpoints' already holds checkpoints; pass --resume "
            "to continue that sweep",
        ),
    ],
    ids=[
        "holds-checkpoints",
        "no-checkpoint",
        "no-such-step",
        "corrupt",
        "compare-holds",
        "compare-window",
        "budgets-window",
        "path-under-sys",
        "sweep-under-sys",
        "sweep-holds",
    ],
)
def test_refused_before_jax_loads_in_one_line(runs, module, argv, expected):
    argv = [a.format(tmp=runs) for a in argv]
    if module == "nsf_optax.experiments.resnet":
        argv = [*TINY, *argv]
    before = snapshot(runs)
    main = f"{module}.__main__" if module == "nsf_optax.experiments.resnet" else module
    proc = subprocess.run(
        [sys.executable, "-c", _REFUSE, main, json.dumps(argv)],
        capture_output=True,
        text=True,
        cwd=_ROOT,
        check=False,
    )
    assert "STATUS 2 LOADED []" in proc.stdout, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], proc.stderr
    assert snapshot(runs) == before
    assert not (runs / "new").exists()


def test_corrupt_checkpoint_refusal_is_one_line_every_time(runs):
    # orbax's concurrent reads of a corrupt file used to print asyncio tracebacks
    # on some tries only: the file digest now refuses it before orbax reads.
    argv = [*TINY, "--workdir", str(runs / "corrupt"), "--resume"]
    for attempt in range(5):
        proc = subprocess.run(
            [sys.executable, "-m", "nsf_optax.experiments.resnet", *argv],
            capture_output=True,
            text=True,
            cwd=_ROOT,
            check=False,
        )
        assert proc.returncode == 2, (attempt, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1, (attempt, proc.stderr)
        assert "Checkpoint step 6" in lines[0] and "fails verification" in lines[0]
        assert "--resume_step 3" in lines[0]


@pytest.mark.skipif(not os.path.isdir("/sys/kernel"), reason="no sysfs")
def test_a_workdir_that_cannot_be_created_is_refused_by_the_check():
    # Root may write /sys by its permission bits; sysfs refuses the mkdir.
    with pytest.raises(WorkdirError, match="'/sys/x/run' cannot be created"):
        workdirs.check("/sys/x/run", probe=True)
    assert not os.path.exists("/sys/x")


def test_check_leaves_no_directory_behind(tmp_path):
    workdirs.check(tmp_path / "a" / "b", probe=True)
    assert list(tmp_path.iterdir()) == []


def test_an_analysis_that_fails_after_training_still_writes_the_results(
    tmp_path, capsys, monkeypatch
):
    from nsf_optax.spectral import alignment

    def fail(*args, **kwargs):
        raise ValueError("no steps to compare")

    monkeypatch.setattr(alignment, "early_alignment", fail)
    argv = ["--config", "tiny", "--seeds", "1", "--methods", "sgd,nsf-const"]
    capsys.readouterr()
    assert command.main([*argv, "--workdir", str(tmp_path)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [
        f"{command.PROG}: error: nsf-const: the early alignment (1st half): no "
        f"steps to compare. Every other result is written to {str(tmp_path)!r} "
        "(that column shows '-')."
    ]
    for name in ("results.md", "results.csv", "results.json", "comparison.png"):
        assert (tmp_path / name).is_file(), name
    rows = json.loads((tmp_path / "results.json").read_text())["rows"]
    assert [r["aligned_fraction_first_half"] for r in rows] == [None, None]
    assert rows[1]["final_test_accuracy_mean"] > 0
