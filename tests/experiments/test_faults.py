"""Runs that never lose work: kill -9, corrupt checkpoints, two runs in one workdir."""

import os
import pathlib
import random
import signal
import subprocess
import sys
import time

from nsf_optax.experiments.resnet import __main__ as run_cli
from nsf_optax.experiments.runner import checkpointing, workdirs

from ._files import corrupt_largest_file, snapshot
from ._runs import assert_same_run, final_checkpoint, one_stderr_line

_ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_sigkill_then_resume_equals_uninterrupted(tmp_path, capsys):
    """Also: a second run into the busy workdir is refused naming the holder, and
    the lock file the killed run leaves behind does not block the resume."""
    rng = random.Random()
    kill_after = rng.randint(1, 5)  # the checkpoint after which the kill lands
    delay = rng.uniform(0.0, 0.3)  # anywhere in the next steps, mid-save included
    context = f"killed after checkpoint {kill_after} + {delay:.3f} s"
    workdir = tmp_path / "run"
    argv = ["--config", "tiny", "--num_steps", "8", "--eval_every_steps", "2"]
    argv += ["--checkpoint_every_steps", "1", "--workdir", str(workdir)]
    log = open(tmp_path / "log.txt", "w")  # closed in the finally below
    proc = subprocess.Popen(
        [sys.executable, "-m", "nsf_optax.experiments.resnet", *argv],
        cwd=_ROOT,
        env={**os.environ, "JAX_PLATFORMS": "cpu"},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        digest = workdir / "checkpoints" / str(kill_after) / checkpointing.DIGEST_FILE
        deadline = time.monotonic() + 300
        while not digest.exists():
            assert proc.poll() is None, (tmp_path / "log.txt").read_text()
            assert time.monotonic() < deadline, "the run never saved a checkpoint"
            time.sleep(0.01)
        # A second run into the same workdir is refused while the first lives.
        assert run_cli.main(argv) == 2
        assert f"is in use by pid {proc.pid} on" in one_stderr_line(capsys)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    assert proc.returncode in (-signal.SIGKILL, 0), context  # 0: it finished first
    if proc.returncode:
        assert (workdir / workdirs.LOCK_NAME).exists(), context  # left behind
    assert run_cli.main([*argv, "--resume"]) == 0, capsys.readouterr().err
    assert not (workdir / workdirs.LOCK_NAME).exists()
    # Uninterrupted, with one checkpoint at the end (the frequency changes no number).
    reference = tmp_path / "reference"
    argv[-3:] = ["0", "--workdir", str(reference)]
    assert run_cli.main(argv) == 0
    assert_same_run(final_checkpoint(workdir), final_checkpoint(reference))


def test_corrupt_checkpoint_is_refused_then_resumed_from_an_older_one(tmp_path, capsys):
    workdir = tmp_path / "run"
    # Width 32 stores the kernels out of line, in the data files.
    argv = ["--config", "tiny", "--num_filters", "32", "--workdir", str(workdir)]
    assert run_cli.main(argv) == 0
    uninterrupted = final_checkpoint(workdir)
    corrupt_largest_file(workdir / "checkpoints" / "6" / "model")
    capsys.readouterr()
    before = snapshot(tmp_path)
    assert run_cli.main([*argv, "--resume"]) == 2
    line = one_stderr_line(capsys)
    # Where the bytes land decides: a chunk that still decompresses reads back
    # wrong numbers (caught by the digest), a broken one fails to read.
    assert "Checkpoint step 6" in line, line
    assert "fails verification" in line or "cannot be read" in line, line
    assert "Older verified checkpoints: step 3" in line
    assert "--resume_step 3" in line
    assert snapshot(tmp_path) == before  # nothing deleted, nothing written
    # The way out the message names: the corrupt step is set aside, not deleted.
    assert run_cli.main([*argv, "--resume_step", "3"]) == 0
    assert (workdir / "checkpoints_set_aside" / "6" / "model").is_dir()
    assert_same_run(final_checkpoint(workdir), uninterrupted)
