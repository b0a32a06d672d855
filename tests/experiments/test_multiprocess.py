"""A real multi-process JAX job: 2 processes on 127.0.0.1, gloo collectives on CPU.

Each process runs the training command line with ``--distributed
--coordinator_address 127.0.0.1:<free port> --num_processes 2 --process_id i``
(through ``_multiprocess_worker``, which logs the files it writes) and sees one
CPU device: the global batch of 32 is split 16 + 16 across the processes. Every
process is started by the test with bounded waits and killed in a ``finally``.
"""

import dataclasses
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from nsf_optax.experiments.landscape import sweep
from nsf_optax.experiments.resnet import __main__ as run_cli
from nsf_optax.experiments.resnet import train
from nsf_optax.experiments.resnet.configs import get_config
from nsf_optax.experiments.runner import distributed

_ROOT = pathlib.Path(__file__).resolve().parents[2]
WAIT_S = 240  # the most a job may take (a loaded 2-core machine: ~60 s seen)
# The tiny config's metrics in 2 processes x 1 device against 1 process x 1
# device: only the order of the sums differs (the gradient all-reduce, the
# metrics' and the test set's sums), so they agree to float32 rounding.
RTOL = 1e-4
OUTPUTS = {
    "config.json",
    "metrics.json",
    "metrics.csv",
    "curves.png",
    "schedules.png",
    "evidence.json",  # the command's note that one run is not evidence
}


# Launch flags: checked before jax loads; a mistake is one line, exit 2. ----------


def _one_line_error(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{run_cli.PROG}: error: "), lines[0]
    return lines[0]


@pytest.mark.parametrize(
    ("argv", "env", "expected"),
    [
        (["--process_id", "1"], {}, "--process_id: only for a multi-process job"),
        (["--num_processes", "2"], {}, "add --distributed"),
        (["--distributed", "--num_processes", "0"], {}, "--num_processes: must be"),
        (["--distributed", "--process_id", "-1"], {}, "--process_id: must be"),
        (["--distributed", "--coordinator_address", "host"], {}, "HOST:PORT"),
        (["--distributed", "--coordinator_address", "h:0"], {}, "[1, 65535]"),
        (["--distributed", "--heartbeat_timeout", "0"], {}, "--heartbeat_timeout"),
        (
            ["--distributed", "--num_processes", "2", "--process_id", "2"],
            {},
            "--process_id must be in [0, 1] for --num_processes 2, got 2",
        ),
        (
            ["--distributed"],
            {"JAX_NUM_PROCESSES": "two"},
            "$JAX_NUM_PROCESSES (for --num_processes): expected an integer",
        ),
        (
            ["--distributed", "--process_id", "3"],
            {"JAX_NUM_PROCESSES": "2"},
            "--process_id must be in [0, 1]",
        ),
        (
            ["--distributed"],
            {"JAX_COORDINATOR_ADDRESS": "127.0.0.1"},
            "$JAX_COORDINATOR_ADDRESS (for --coordinator_address): expected HOST:PORT",
        ),
    ],
)
def test_launch_mistakes_are_one_line(argv, env, expected, capsys, monkeypatch):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert run_cli.main(["--config", "tiny", *argv]) == 2
    assert expected in _one_line_error(capsys)


def test_flags_win_over_the_environment():
    parser = run_cli.build_parser()
    env = {"JAX_COORDINATOR_ADDRESS": "10.0.0.1:1234", "JAX_NUM_PROCESSES": "4"}
    env["JAX_PROCESS_ID"] = "3"
    args = parser.parse_args(["--distributed", "--process_id", "1"])
    assert distributed.from_flags(args, env) == distributed.Launch(
        coordinator_address="10.0.0.1:1234", num_processes=4, process_id=1
    )
    # Without --distributed the environment is not read.
    assert distributed.from_flags(parser.parse_args([]), env) is None
    # Nothing given: every value left to the cluster manager.
    args = parser.parse_args(["--distributed", "--heartbeat_timeout", "7"])
    assert distributed.from_flags(args, {}) == distributed.Launch(heartbeat_timeout=7)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"coordinator_address": "host"}, "HOST:PORT"),
        ({"coordinator_address": 1234}, "HOST:PORT"),
        ({"num_processes": 0}, "num_processes must be an integer >= 1"),
        ({"num_processes": 2.0}, "num_processes must be an integer"),
        ({"process_id": True}, "process_id must be an integer"),
        ({"num_processes": 2, "process_id": 2}, r"process_id must be in \[0, 1\]"),
        ({"heartbeat_timeout": 0}, "heartbeat_timeout must be an integer >= 1"),
        ({"initialization_timeout": None}, "initialization_timeout must be"),
    ],
)
def test_launch_refuses_bad_values(kwargs, match):
    with pytest.raises(distributed.DistributedError, match=match):
        distributed.Launch(**kwargs)


def test_no_cluster_manager_and_missing_values_is_one_line(tmp_path):
    # In a fresh process: jax.distributed.initialize must come before any other
    # jax call, and this test process has made many.
    argv = ["--config", "tiny", "--workdir", str(tmp_path / "w"), "--distributed"]
    argv += ["--num_processes", "2", "--process_id", "0"]
    proc = subprocess.run(
        [sys.executable, "-m", "nsf_optax.experiments.resnet", *argv],
        cwd=_ROOT,
        env=_env(),  # no SLURM, Open MPI, Kubernetes or TPU: nothing supplies it
        capture_output=True,
        text=True,
        timeout=WAIT_S,
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{run_cli.PROG}: error: --distributed: no cluster")
    assert "supply --coordinator_address (or $JAX_COORDINATOR_ADDRESS);" in lines[0]
    assert not (tmp_path / "w").exists()


def test_a_missing_coordinator_is_one_line():
    launch = distributed.Launch(
        coordinator_address=f"127.0.0.1:{_free_port()}",
        num_processes=2,
        process_id=1,
        initialization_timeout=1,
    )
    with pytest.raises(distributed.DistributedError, match="nothing answers there"):
        distributed.initialize(launch)


# A 2-process job on 127.0.0.1. -------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in distributed.ENV_VARS}
    env = {k: v for k, v in env.items() if not k.startswith("JAX_")}
    env.pop("XLA_FLAGS", None)  # one CPU device per process
    return {**env, "JAX_PLATFORMS": "cpu", "PYTHONUNBUFFERED": "1"}


class Job:
    """``n`` processes of one command line; :meth:`stop` kills what still runs."""

    def __init__(
        self,
        tmp: pathlib.Path,
        argv: list[str],
        n: int = 2,
        module: str = "nsf_optax.experiments.resnet.__main__",
        **launch,
    ):
        self.tmp, self.procs, self.logs, self.writes = tmp, [], [], []
        port = _free_port()
        tmp.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            flags = [
                "--distributed",
                "--coordinator_address",
                f"127.0.0.1:{port}",
                "--num_processes",
                str(n),
                "--process_id",
                str(i),
                "--initialization_timeout",
                str(launch.get("initialization_timeout", 60)),
                "--heartbeat_timeout",
                str(launch.get("heartbeat_timeout", 10)),
            ]
            self.logs.append(tmp / f"out{i}.txt")
            self.writes.append(tmp / f"writes{i}.txt")
            with open(self.logs[i], "w") as out:
                self.procs.append(
                    subprocess.Popen(
                        [
                            sys.executable,
                            "-m",
                            "tests.experiments._multiprocess_worker",
                            str(self.writes[i]),
                            module,
                            *argv,
                            *flags,
                        ],
                        cwd=_ROOT,
                        env=_env(),
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                )

    def output(self, i: int) -> str:
        return self.logs[i].read_text()

    def wait(self, timeout: float = WAIT_S) -> list[int]:
        deadline = time.monotonic() + timeout
        return [p.wait(max(1.0, deadline - time.monotonic())) for p in self.procs]

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
        for p in self.procs:
            p.wait(30)

    def run(self) -> None:
        """Waits for every process; fails with their output unless all exit 0."""
        try:
            codes = self.wait()
        finally:
            self.stop()
        logs = "\n".join(f"--- process {i}\n{self.output(i)}" for i in range(2))
        assert codes == [0, 0], logs


def _argv(workdir: pathlib.Path, *extra: str) -> list[str]:
    return ["--config", "tiny", "--workdir", str(workdir), *extra]


def _metrics(history):
    keys = ("step", "lr", "p", "train_loss", "train_accuracy")
    keys += ("test_loss", "test_accuracy")
    return {k: [row[k] for row in history] for k in keys}


def _assert_same_metrics(history, expected):
    got, want = _metrics(history), _metrics(expected)
    assert got["step"] == want["step"] == [3, 6]
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=RTOL, err_msg=key)


def _digests(workdir: pathlib.Path, step: int) -> dict[str, str]:
    digest = json.loads(
        (workdir / "checkpoints" / str(step) / "digest.json").read_text()
    )
    return digest["items"]


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory):
    """The tiny config (6 steps, checkpoints at 3 and 6) as a 2-process job."""
    tmp = tmp_path_factory.mktemp("two")
    job = Job(tmp, _argv(tmp / "run"))
    job.run()
    return tmp, job


@pytest.fixture(scope="module")
def one_process_history(tmp_path_factory):
    """The same run in this (single) process: the reference."""
    workdir = tmp_path_factory.mktemp("one") / "run"
    return train.train_and_evaluate(get_config("tiny"), workdir).history


def test_two_processes_match_one(two_process_run, one_process_history):
    tmp, job = two_process_run
    history = json.loads((tmp / "run" / "metrics.json").read_text())
    _assert_same_metrics(history, one_process_history)
    out0, out1 = job.output(0), job.output(1)
    for i, out in enumerate((out0, out1)):
        assert f"Rank {i} is connected to 1 peer ranks" in out  # gloo collectives
    # Only host 0 reports.
    assert "| step |" in out0 and "| step |" not in out1


def test_host_0_alone_writes_metrics_plots_and_config(two_process_run):
    tmp, job = two_process_run
    workdir = tmp / "run"
    assert {p.name for p in workdir.iterdir()} == OUTPUTS | {"checkpoints"}
    writes = [
        {pathlib.Path(line).relative_to(workdir) for line in w.read_text().split()}
        for w in job.writes
    ]
    top = [
        {p.name.removesuffix(".tmp") for p in w if len(p.parts) == 1} for w in writes
    ]
    assert top == [OUTPUTS, set()]
    digests = [{p for p in w if p.name.startswith("digest.json")} for w in writes]
    assert len(digests[0]) == 2 and not digests[1]  # steps 3 and 6
    # What process 1 writes itself: orbax's per-process files, inside the items.
    for path in writes[1]:
        assert path.parts[0] == "checkpoints" and len(path.parts) > 3, path


def test_checkpoint_of_two_processes_resumes_in_one(two_process_run, tmp_path):
    tmp, _ = two_process_run
    workdir = tmp_path / "run"
    shutil.copytree(tmp / "run", workdir)
    config = dataclasses.replace(get_config("tiny"), resume=True)
    result = train.train_and_evaluate(config, workdir, resume_step=3)
    expected = json.loads((tmp / "run" / "metrics.json").read_text())
    _assert_same_metrics(result.history, expected)


@pytest.mark.slow
def test_checkpoint_of_two_processes_resumes_in_two(two_process_run, tmp_path):
    tmp, _ = two_process_run
    workdir = tmp_path / "run"
    shutil.copytree(tmp / "run", workdir)
    Job(tmp_path, _argv(workdir, "--resume_step", "3")).run()
    # Bit for bit: every array of the final checkpoint has the same digest.
    assert _digests(workdir, 6) == _digests(tmp / "run", 6)
    expected = json.loads((tmp / "run" / "metrics.json").read_text())
    got = json.loads((workdir / "metrics.json").read_text())
    assert _metrics(got) == _metrics(expected)


def _kill_and_wait(tmp_path: pathlib.Path, victim: int, signum: int) -> None:
    """Kills process ``victim`` while both train; the other must stop, saying so."""
    workdir = tmp_path / "run"
    argv = _argv(workdir, "--num_steps", "100000", "--eval_every_steps", "1")
    job = Job(tmp_path, [*argv, "--checkpoint_every_steps", "0"], heartbeat_timeout=5)
    survivor = job.procs[1 - victim]
    try:
        deadline = time.monotonic() + WAIT_S
        while not (workdir / "metrics.json").exists():  # both are training
            assert time.monotonic() < deadline, job.output(0)
            assert all(p.poll() is None for p in job.procs), job.output(0)
            time.sleep(0.2)
        job.procs[victim].send_signal(signum)
        start = time.monotonic()
        assert job.procs[victim].wait(30) != 0
        code = survivor.wait(60)
        took = time.monotonic() - start
    finally:
        job.stop()
    out = job.output(1 - victim)
    assert code != 0, out
    # Measured here: under a second (the collective or JAX's client sees the
    # closed connection); a host that vanishes without closing its connections
    # would be noticed by the heartbeat (5 s here).
    print(f"the other process stopped {took:.1f} s after the kill")
    assert took < 30, (took, out)
    # The collective's error and our line, or (when the coordinator is gone and
    # JAX's client notices first) JAX's own.
    fatal = "the JAX distributed service detected fatal errors"
    assert f"process {1 - victim} of 2 stopped" in out or fatal in out, out


def test_a_killed_process_stops_the_other(tmp_path):
    # SIGTERM stops both with a checkpoint instead: see test_preemption.py.
    _kill_and_wait(tmp_path, victim=1, signum=signal.SIGKILL)


@pytest.mark.slow
def test_a_killed_coordinator_stops_the_other(tmp_path):
    _kill_and_wait(tmp_path, victim=0, signum=signal.SIGKILL)


@pytest.mark.slow
def test_sweep_in_two_processes_matches_one(tmp_path):
    ps, seeds = (-0.25, 0.5), 2
    argv = ["--config", "tiny", "--p", *map(str, ps), "--seeds", str(seeds)]
    two = tmp_path / "two"
    job = Job(tmp_path, [*argv, "--workdir", str(two)], module=sweep.__name__)
    job.run()
    one = tmp_path / "one"
    expected = sweep.run_sweep(get_config("tiny"), one, ps=ps, seeds=seeds)
    rows = json.loads((two / "results.json").read_text())
    assert [(r["p"], r["seed"]) for r in rows] == [
        (r["p"], r["seed"]) for r in expected
    ]
    for key in ("final_test_accuracy", "final_test_loss", "final_train_loss"):
        # Each run lives on one device in both jobs (4 runs: 2 per process, or
        # 4 on one device): measured identical here; 1e-6 allows for the
        # compiler treating the two block sizes differently elsewhere.
        np.testing.assert_allclose(
            [r[key] for r in rows], [r[key] for r in expected], rtol=1e-6
        )
    # Host 0 alone writes the results; process 1 only its own orbax files.
    outputs = {p.name for p in two.iterdir()}
    assert {p.name for p in one.iterdir()} == outputs
    written = {
        pathlib.Path(line).relative_to(two)
        for line in job.writes[1].read_text().split()
    }
    assert all(p.parts[1] == "checkpoints" for p in written), written
