"""Starting a multi-process JAX job from the experiments' command lines.

Every command line that trains (the single run's, the sweep's) takes
``--distributed`` and the flags of :func:`add_flags`; :func:`from_flags` checks
them before jax loads and :func:`initialize` then calls
``jax.distributed.initialize`` once, before anything else touches jax:

* On a cluster manager that JAX detects (SLURM, Open MPI, a TPU pod, Kubernetes,
  ...), ``--distributed`` alone: the coordinator, the process count and this
  process's id come from the manager.
* On hosts started by hand (or processes on one machine), every process gets the
  same ``--coordinator_address HOST:PORT`` (where process 0 listens) and
  ``--num_processes N``, and its own ``--process_id`` in ``0..N-1``; each may
  instead come from the environment variables ``JAX_COORDINATOR_ADDRESS``,
  ``JAX_NUM_PROCESSES`` and ``JAX_PROCESS_ID`` (a flag wins over its variable).

On CPU the cross-process collectives are gloo's (unless
``jax_cpu_collectives_implementation`` is already set). A value that is missing,
malformed or out of range, or a coordinator that does not answer in time, is one
line naming the flag and exit status 2 (a :class:`DistributedError`, a
:class:`~nsf_optax.experiments.runner.errors.UsageError`). Once running, a process that
fails leaves at once (:func:`run`); one that dies breaks the collectives, and
the others stop with the collective's error or JAX's "distributed service
detected fatal errors" (about a second after a ``kill -9`` of one of two
processes on one machine, tested); a host that vanishes without closing its
connections is noticed through JAX's heartbeats within about
``--heartbeat_timeout`` seconds.

This module imports jax only inside :func:`initialize` and :func:`run`.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import math
import os
import socket
import sys
import time
import traceback
from collections.abc import Callable, Mapping
from typing import Any

from nsf_optax.experiments.runner import cli, preemption
from nsf_optax.experiments.runner.errors import UsageError
from nsf_optax.experiments.runner.fields import Bound

# Flag (and Launch field) -> the environment variable it may come from.
ENV_VARS = {
    "coordinator_address": "JAX_COORDINATOR_ADDRESS",
    "num_processes": "JAX_NUM_PROCESSES",
    "process_id": "JAX_PROCESS_ID",
}
DEFAULT_INITIALIZATION_TIMEOUT = 300  # seconds, jax's default
DEFAULT_HEARTBEAT_TIMEOUT = 100  # seconds, jax's default

# The launch this process joined with (set by initialize).
_joined: Launch | None = None


class DistributedError(UsageError):
    """A multi-process launch that cannot start: a launch value missing,
    malformed or out of range, or a coordinator that does not answer."""


@dataclasses.dataclass(frozen=True)
class Launch:
    """How this process joins a multi-process job.

    Attributes:
      coordinator_address: ``HOST:PORT`` of process 0's coordinator; None: from
        the cluster manager.
      num_processes: the number of processes (>= 1); None: from the manager.
      process_id: this process's index in ``[0, num_processes)``; None: from the
        manager.
      initialization_timeout: seconds to wait for every process to connect (> 0).
      heartbeat_timeout: seconds without a heartbeat after which a process counts
        as dead and the job stops (> 0).
    """

    coordinator_address: str | None = None
    num_processes: int | None = None
    process_id: int | None = None
    initialization_timeout: int = DEFAULT_INITIALIZATION_TIMEOUT
    heartbeat_timeout: int = DEFAULT_HEARTBEAT_TIMEOUT

    def __post_init__(self):
        def whole(name: str, low: int) -> None:
            value = getattr(self, name)
            ok = isinstance(value, int) and not isinstance(value, bool)
            if not ok or value < low:
                raise DistributedError(
                    f"{name} must be an integer >= {low}, got {value!r}"
                )

        if self.coordinator_address is not None:
            try:
                _address(self.coordinator_address)
            except (argparse.ArgumentTypeError, TypeError, AttributeError):
                raise DistributedError(
                    "coordinator_address must be HOST:PORT with a port in "
                    f"[1, 65535], got {self.coordinator_address!r}"
                ) from None
        for name, low in (("num_processes", 1), ("process_id", 0)):
            if getattr(self, name) is not None:
                whole(name, low)
        whole("initialization_timeout", 1)
        whole("heartbeat_timeout", 1)
        n, i = self.num_processes, self.process_id
        if n is not None and i is not None and i >= n:
            raise DistributedError(
                f"process_id must be in [0, {n - 1}] for num_processes {n}, got {i}"
            )


def _address(text: str) -> str:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(
            f"expected HOST:PORT with a port in [1, 65535], got {text!r}"
        )
    return text


def add_flags(parser: argparse.ArgumentParser) -> None:
    """Adds ``--distributed`` and the flags that say how processes find each other.

    Args:
      parser: the command's parser.
    """
    group = parser.add_argument_group(
        "multi-process jobs (one process per host; see https://nsf-optax.readthedocs.io/en/latest/multihost.html)"
    )
    group.add_argument(
        "--distributed",
        action="store_true",
        help="run as one process of a multi-process JAX job: call "
        "jax.distributed.initialize() first (on a cluster manager JAX detects, "
        "this flag alone)",
    )
    positive = cli.int_flag(Bound(low=0, low_open=True))
    for name, kind, metavar, text in (
        ("coordinator_address", _address, "HOST:PORT", "where process 0 listens"),
        ("num_processes", positive, "INT", "how many processes the job has"),
        (
            "process_id",
            cli.int_flag(Bound(low=0)),
            "INT",
            "this process's index, 0 to num_processes - 1",
        ),
    ):
        group.add_argument(
            f"--{name}",
            type=kind,
            default=None,
            metavar=metavar,
            help=f"{text} (default: ${ENV_VARS[name]}, else the cluster manager's)",
        )
    group.add_argument(
        "--initialization_timeout",
        type=positive,
        default=DEFAULT_INITIALIZATION_TIMEOUT,
        metavar="SECONDS",
        help="how long to wait for every process to connect "
        f"(default: {DEFAULT_INITIALIZATION_TIMEOUT})",
    )
    group.add_argument(
        "--heartbeat_timeout",
        type=positive,
        default=DEFAULT_HEARTBEAT_TIMEOUT,
        metavar="SECONDS",
        help="after how long without a heartbeat a process counts as dead and "
        f"the job stops (default: {DEFAULT_HEARTBEAT_TIMEOUT})",
    )


def _from_env(name: str, environ: Mapping[str, str]) -> str | int | None:
    variable = ENV_VARS[name]
    text = environ.get(variable, "").strip()
    if not text:
        return None
    parse = {
        "coordinator_address": _address,
        "num_processes": cli.int_flag(Bound(low=0, low_open=True)),
        "process_id": cli.int_flag(Bound(low=0)),
    }[name]
    try:
        return parse(text)
    except argparse.ArgumentTypeError as e:
        raise DistributedError(f"${variable} (for --{name}): {e}") from None


def from_flags(
    args: argparse.Namespace, environ: Mapping[str, str] | None = None
) -> Launch | None:
    """The launch the parsed flags (and the environment) ask for; checks it.

    Args:
      args: parsed by a parser extended with :func:`add_flags`.
      environ: the environment (default ``os.environ``), read only with
        ``--distributed``.

    Returns:
      None for a single-process run (no ``--distributed``), else the
      :class:`Launch`.

    Raises:
      DistributedError: for launch flags without ``--distributed``, a malformed
        environment variable, or a ``process_id`` not below ``num_processes``.

    Examples:
      >>> import argparse
      >>> from nsf_optax.experiments.runner import distributed
      >>> parser = argparse.ArgumentParser()
      >>> distributed.add_flags(parser)
      >>> args = parser.parse_args(["--distributed", "--process_id", "1"])
      >>> env = {"JAX_COORDINATOR_ADDRESS": "10.0.0.1:1234", "JAX_NUM_PROCESSES": "2"}
      >>> distributed.from_flags(args, env)  # doctest: +NORMALIZE_WHITESPACE
      Launch(coordinator_address='10.0.0.1:1234', num_processes=2, process_id=1,
             initialization_timeout=300, heartbeat_timeout=100)
      >>> distributed.from_flags(parser.parse_args([]), env) is None  # one process
      True
    """
    given = [n for n in ENV_VARS if getattr(args, n) is not None]
    if not args.distributed:
        if given:
            flags = ", ".join(f"--{n}" for n in given)
            raise DistributedError(
                f"{flags}: only for a multi-process job; add --distributed"
            )
        return None
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {
        n: getattr(args, n) if n in given else _from_env(n, environ) for n in ENV_VARS
    }
    n, i = values["num_processes"], values["process_id"]
    if isinstance(n, int) and isinstance(i, int) and i >= n:
        raise DistributedError(
            f"--process_id must be in [0, {n - 1}] for --num_processes {n}, got {i}"
        )
    return Launch(
        initialization_timeout=args.initialization_timeout,
        heartbeat_timeout=args.heartbeat_timeout,
        **values,
    )


def _missing(launch: Launch) -> list[str]:
    return [
        f"--{n} (or ${v})" for n, v in ENV_VARS.items() if getattr(launch, n) is None
    ]


def _wait_for_coordinator(address: str, timeout: int) -> int:
    """Waits until ``address`` accepts a TCP connection; returns the seconds left.

    Raises:
      DistributedError: when it does not within ``timeout`` seconds.
    """
    host, _, port = address.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")  # [::1]:1234
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, int(port)), timeout=1.0):
                break
        except OSError as e:
            if time.monotonic() + 0.25 >= deadline:
                raise DistributedError(
                    f"--coordinator_address {address}: nothing answers there "
                    f"after {timeout} s ({e.strerror or e}); start process 0 with "
                    "the same --coordinator_address, or raise "
                    "--initialization_timeout"
                ) from None
            time.sleep(0.25)
    return max(1, math.ceil(deadline - time.monotonic()))


def initialize(launch: Launch) -> None:
    """Joins the multi-process job: ``jax.distributed.initialize`` with ``launch``.

    Call it once per process, before any other jax call. On CPU, cross-process
    collectives use gloo unless ``jax_cpu_collectives_implementation`` is set.

    Args:
      launch: from :func:`from_flags`.

    Raises:
      DistributedError: when a value is neither given nor supplied by a detected
        cluster manager, or the coordinator does not answer within
        ``launch.initialization_timeout`` seconds.
    """
    timeout = launch.initialization_timeout
    if launch.coordinator_address is not None and launch.process_id not in (None, 0):
        # jax aborts the process (no exception) when the coordinator never
        # answers; wait for it here so that this is a one-line error instead.
        timeout = _wait_for_coordinator(launch.coordinator_address, timeout)
    import jax

    if getattr(jax.config, "jax_cpu_collectives_implementation", "gloo") in (
        None,
        "none",
    ):
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    # JAX's preemption service catches SIGTERM for the whole life of the
    # process, for code that checkpoints at its sync points: left on, a SIGTERM
    # outside the training loop (a cancelled job) would be logged and ignored.
    # The training loop agrees on the stop step itself (.preemption); outside
    # it, a SIGTERM ends the process and the others stop as after any failure.
    if getattr(jax.config, "jax_enable_preemption_service", False):
        jax.config.update("jax_enable_preemption_service", False)
    kwargs = {
        "coordinator_address": launch.coordinator_address,
        "num_processes": launch.num_processes,
        "process_id": launch.process_id,
        "initialization_timeout": timeout,
    }
    if (
        "heartbeat_timeout_seconds"
        in inspect.signature(jax.distributed.initialize).parameters
    ):
        kwargs["heartbeat_timeout_seconds"] = launch.heartbeat_timeout
    if not _missing(launch):
        print(
            f"joining a {launch.num_processes}-process job as process "
            f"{launch.process_id} (coordinator {launch.coordinator_address}, "
            f"waiting up to {timeout} s for every process)",
            file=sys.stderr,
        )
    try:
        jax.distributed.initialize(**kwargs)
    except ValueError as e:
        # jax's message when a value is neither given nor detected.
        missing = _missing(launch)
        if not missing:
            raise
        raise DistributedError(
            f"--distributed: no cluster manager detected to supply "
            f"{', '.join(missing)}; give all three on every process "
            f"({' '.join(str(e).split())})"
        ) from None
    except Exception as e:
        if "DEADLINE_EXCEEDED" not in str(e):
            raise
        raise DistributedError(
            f"--distributed: not every process connected to the coordinator at "
            f"{launch.coordinator_address or 'the detected address'} within "
            f"--initialization_timeout {launch.initialization_timeout} s"
        ) from None
    global _joined
    _joined = launch


def run(prog: str, body: Callable[[], object]) -> int:
    """:func:`.cli.run`; in a multi-process job, a process that fails leaves at once.

    A process that stops on an error while the others go on would leave them
    waiting in their next collective, and itself waiting in JAX's shutdown
    barrier for them (``shutdown_timeout``, 5 minutes by default). After
    :func:`initialize`, a failed process (a one-line error, Ctrl-C, or a bug
    with its traceback) therefore prints its error and a line saying so, and
    exits without the shutdown barrier; the others stop when their next
    collective fails on its closed connections (seconds), or at the latest when
    JAX misses its heartbeat (``--heartbeat_timeout``). Before
    :func:`initialize`, or when the body succeeds, this is :func:`.cli.run`.

    Args:
      prog: the command's name, the prefix of the error lines.
      body: the command; it calls :func:`initialize` for a multi-process job.

    A run stopped by SIGTERM or SIGINT (:mod:`.preemption`) is no failure:
    every process saved the same checkpoint and stops with the same status.

    Returns:
      The exit status of :func:`.cli.run` (in a multi-process job only 0, or
      the status of a stop on a signal: a failure ends the process).
    """
    preempted = False

    def tracked() -> object:
        nonlocal preempted
        try:
            return body()
        except preemption.Preempted:
            preempted = True
            raise

    try:
        status = cli.run(prog, tracked)
    except BaseException:
        if _joined is None:
            raise
        traceback.print_exc()
        status = 1
    # A stop on a signal is collective (every process saved the same step and
    # stops): the ordinary exit, JAX's shutdown barrier included, is right.
    if status and _joined is not None and not preempted:
        import jax

        print(
            f"{prog}: process {jax.process_index()} of {jax.process_count()} "
            f"stopped (exit status {status}); the others stop within about "
            f"{_joined.heartbeat_timeout} s (--heartbeat_timeout)",
            file=sys.stderr,
        )
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    return status
