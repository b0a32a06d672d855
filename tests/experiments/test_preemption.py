"""SIGTERM and SIGINT stop the training loop with a verified checkpoint; --resume
continues bit for bit: one run, a population (the sweep), a 2-process job."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

from nsf_optax.experiments.landscape import sweep
from nsf_optax.experiments.resnet import __main__ as run_cli
from nsf_optax.experiments.resnet import population, train
from nsf_optax.experiments.runner import checkpointing, preemption

from ._runs import assert_same_run, final_checkpoint, one_stderr_line

_ROOT = pathlib.Path(__file__).resolve().parents[2]
WAIT_S = 240
ARGV = ["--config", "tiny", "--num_steps", "8", "--eval_every_steps", "2"]
ARGV += ["--checkpoint_every_steps", "0", "--no-progress"]


def _signal_during(monkeypatch, cls, step, *signums):
    """Sends ``signums`` to this process while ``cls.train_step`` runs ``step``."""
    real = cls.train_step

    def train_step(self, s):
        if s == step:
            for signum in signums:
                os.kill(os.getpid(), signum)
        return real(self, s)

    monkeypatch.setattr(cls, "train_step", train_step)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("reference") / "run"
    assert run_cli.main([*ARGV, "--workdir", str(workdir)]) == 0
    return final_checkpoint(workdir)


@pytest.mark.parametrize(
    ("signum", "status"),
    [(signal.SIGTERM, preemption.EXIT_PREEMPTED), (signal.SIGINT, 130)],
    ids=["SIGTERM", "SIGINT"],
)
def test_a_signal_saves_the_step_and_resume_is_bit_for_bit(
    signum, status, uninterrupted, tmp_path, capsys, monkeypatch
):
    handlers = {s: signal.getsignal(s) for s in preemption.SIGNALS}
    workdir = tmp_path / "run"
    argv = [*ARGV, "--workdir", str(workdir)]
    with monkeypatch.context() as patch:
        # During step index 4: the loop stops after step 5, between evaluations
        # (2, 4) and with no periodic checkpoint.
        _signal_during(patch, train._SingleRun, 4, signum)
        capsys.readouterr()
        assert run_cli.main(argv) == status
    name = signal.Signals(signum).name
    assert one_stderr_line(capsys) == (
        f"{run_cli.PROG}: stopped by {name} after step 5, with a verified "
        "checkpoint of that step; continue with --resume"
    )
    ckpts = checkpointing.Checkpoints(train.checkpoint_dir(workdir))
    assert ckpts.verified_steps() == [5]
    assert not (workdir / ".lock").exists()
    # The handlers are those of before the run.
    assert {s: signal.getsignal(s) for s in preemption.SIGNALS} == handlers
    assert run_cli.main([*argv, "--resume"]) == 0
    assert_same_run(final_checkpoint(workdir), uninterrupted)


def test_a_second_signal_while_saving_changes_nothing(
    uninterrupted, tmp_path, capsys, monkeypatch
):
    workdir = tmp_path / "run"
    argv = [*ARGV, "--workdir", str(workdir)]
    real_save = checkpointing.Checkpoints.save

    def save(self, step, items, meta):
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while the checkpoint is written
        os.kill(os.getpid(), signal.SIGTERM)
        return real_save(self, step, items, meta)

    with monkeypatch.context() as patch:
        _signal_during(patch, train._SingleRun, 2, signal.SIGTERM)
        patch.setattr(checkpointing.Checkpoints, "save", save)
        capsys.readouterr()
        assert run_cli.main(argv) == preemption.EXIT_PREEMPTED
    assert "stopped by SIGTERM after step 3" in one_stderr_line(capsys)
    assert checkpointing.Checkpoints(
        train.checkpoint_dir(workdir)
    ).verified_steps() == [3]
    assert run_cli.main([*argv, "--resume"]) == 0
    assert_same_run(final_checkpoint(workdir), uninterrupted)


def test_handlers_are_restored_after_a_finished_run(tmp_path):
    handlers = {s: signal.getsignal(s) for s in preemption.SIGNALS}
    argv = [*ARGV, "--max_steps_this_run", "1", "--workdir", str(tmp_path / "run")]
    assert run_cli.main(argv) == 0
    assert {s: signal.getsignal(s) for s in preemption.SIGNALS} == handlers


def test_stop_on_signal_records_only_the_first_and_restores():
    # Python's own SIGINT handler, whatever the launcher left (a job started in
    # the background of a non-interactive shell inherits SIGINT ignored).
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        before = signal.getsignal(signal.SIGTERM)
        with preemption.StopOnSignal() as stop:
            assert stop.agreed() is None
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGTERM)
            assert stop.agreed() == signal.SIGINT
        assert signal.getsignal(signal.SIGTERM) is before
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        # After the last step boundary: delivered again under the old handler.
        with pytest.raises(KeyboardInterrupt), preemption.StopOnSignal():
            os.kill(os.getpid(), signal.SIGINT)
    finally:
        signal.signal(signal.SIGINT, inherited)


# A population: the sweep. -----------------------------------------------------

SWEEP_ARGV = ["--config", "tiny", "--p", "0", "0.5", "--seeds", "2"]
SWEEP_ARGV += ["--num_steps", "8", "--eval_every_steps", "2", "--no-progress"]


def test_a_preempted_sweep_resumes_bit_for_bit(tmp_path, capsys, monkeypatch):
    reference, workdir = tmp_path / "reference", tmp_path / "run"
    assert sweep.main([*SWEEP_ARGV, "--workdir", str(reference)]) == 0
    argv = [*SWEEP_ARGV, "--workdir", str(workdir)]
    with monkeypatch.context() as patch:
        _signal_during(patch, population.Population, 2, signal.SIGTERM)
        capsys.readouterr()
        assert sweep.main(argv) == preemption.EXIT_PREEMPTED
    assert "stopped by SIGTERM after step 3" in one_stderr_line(capsys)
    assert not (workdir / "results.json").exists()
    level = sweep.level_dir(workdir, 0.0)
    assert checkpointing.Checkpoints(train.checkpoint_dir(level)).verified_steps() == [
        3
    ]
    assert sweep.main([*argv, "--resume"]) == 0
    got = json.loads((workdir / "results.json").read_text())
    assert got == json.loads((reference / "results.json").read_text())
    assert_same_run(
        final_checkpoint(level), final_checkpoint(sweep.level_dir(reference, 0.0))
    )


# Real signals from outside. -----------------------------------------------------


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_")}
    env.pop("XLA_FLAGS", None)
    return {**env, "JAX_PLATFORMS": "cpu", "PYTHONUNBUFFERED": "1"}


def _wait_for_training(workdir: pathlib.Path, procs, output) -> None:
    deadline = time.monotonic() + WAIT_S
    while not (workdir / "metrics.json").exists():  # every process trains
        assert time.monotonic() < deadline, output()
        assert all(p.poll() is None for p in procs), output()
        time.sleep(0.1)


def test_sigterm_from_outside_exits_75_with_a_checkpoint(tmp_path):
    workdir = tmp_path / "run"
    argv = ["--config", "tiny", "--num_steps", "100000", "--eval_every_steps", "1"]
    argv += ["--checkpoint_every_steps", "0", "--no-progress"]
    argv += ["--workdir", str(workdir)]
    log = tmp_path / "log.txt"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "nsf_optax.experiments.resnet", *argv],
            cwd=_ROOT,
            env=_env(),
            stdout=out,
            stderr=subprocess.PIPE,
            text=True,
        )
    try:
        _wait_for_training(workdir, [proc], log.read_text)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == preemption.EXIT_PREEMPTED, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "stopped by SIGTERM after step" in lines[0], err
    step = int(lines[0].split("after step ")[1].split(",")[0])
    ckpts = checkpointing.Checkpoints(train.checkpoint_dir(workdir))
    assert ckpts.verified_steps() == [step]
    assert ckpts.find_resume().step == step
    resumed = [*argv, "--resume", "--max_steps_this_run", "2"]
    assert run_cli.main(resumed) == 0
    assert checkpointing.Checkpoints(
        train.checkpoint_dir(workdir)
    ).verified_steps() == [step, step + 2]


# Two processes: a SIGTERM that reaches one stops both after the same step. -------


def _stopped_step(output: str) -> int:
    line = next(s for s in output.splitlines() if "stopped by SIGTERM" in s)
    return int(line.split("after step ")[1].split(",")[0])


def _two_process_stop(tmp_path: pathlib.Path) -> tuple[list[str], int]:
    from .test_multiprocess import Job

    workdir = tmp_path / "run"
    argv = ["--config", "tiny", "--num_steps", "100000", "--eval_every_steps", "1"]
    argv += ["--checkpoint_every_steps", "0", "--no-progress"]
    argv += ["--workdir", str(workdir)]
    job = Job(tmp_path / "stop", argv)
    try:
        _wait_for_training(workdir, job.procs, lambda: job.output(0))
        job.procs[1].send_signal(signal.SIGTERM)  # the other gets none
        codes = job.wait(120)
    finally:
        job.stop()
    logs = job.output(0) + job.output(1)
    assert codes == [preemption.EXIT_PREEMPTED] * 2, logs
    step = _stopped_step(job.output(0))
    assert _stopped_step(job.output(1)) == step, logs
    ckpts = checkpointing.Checkpoints(train.checkpoint_dir(workdir))
    assert ckpts.verified_steps() == [step], logs
    return argv, step


def test_sigterm_to_one_of_two_processes_stops_both_after_one_step(tmp_path):
    _two_process_stop(tmp_path)


@pytest.mark.slow
def test_two_processes_resume_bit_for_bit_after_sigterm(tmp_path):
    from .test_multiprocess import Job

    argv, step = _two_process_stop(tmp_path)
    Job(tmp_path / "resume", [*argv, "--resume", "--max_steps_this_run", "2"]).run()
    reference = tmp_path / "reference"
    argv[-1] = str(reference)
    Job(
        tmp_path / "reference-job", [*argv, "--max_steps_this_run", str(step + 2)]
    ).run()
    digests = [
        json.loads(
            (w / "checkpoints" / str(step + 2) / checkpointing.DIGEST_FILE).read_text()
        )["items"]
        for w in (tmp_path / "run", reference)
    ]
    assert digests[0] == digests[1]
