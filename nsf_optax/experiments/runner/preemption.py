"""Stopping a run on SIGTERM or SIGINT with a verified checkpoint.

A cluster manager that preempts a job sends SIGTERM and, after a grace period
(30 s on Kubernetes and by default on SLURM), SIGKILL. While the training loop
(:func:`.loop.train_loop`) runs, :class:`StopOnSignal` turns SIGTERM and SIGINT
(Ctrl-C) into a request: the loop finishes the step under way, saves a verified
checkpoint of that step, and raises :class:`Preempted`; the command lines then
print one line and exit with :data:`EXIT_PREEMPTED` (SIGTERM) or
:data:`.cli.EXIT_INTERRUPTED` (SIGINT). ``--resume`` continues bit for bit.

* The handlers only record the signal: a second signal while the checkpoint is
  being written changes nothing (the save runs to its end; ``kill -9`` remains
  the way to stop at once, and then the older verified checkpoints are kept).
* They are installed only around the loop and the previous handlers are put back
  after it, however it ends; outside the loop (imports, data loading, the
  plots) the signals do what they did before (SIGINT: one line and status 130;
  SIGTERM: the process ends), which loses no training.
* In a multi-process job all processes must stop after the same step (the
  checkpoint is written collectively). :meth:`StopOnSignal.agreed` therefore
  takes the maximum of the requests over the processes after every step (one
  small all-gather per step), so a signal that reaches only one process stops
  them all at the same step boundary. JAX's own preemption service, which does
  the same through its coordination service, stays off
  (:func:`.distributed.initialize`): it would catch SIGTERM for the whole
  process, not only around the loop.

This module imports jax only inside :meth:`StopOnSignal.agreed`.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType
from typing import Any

# sysexits.h EX_TEMPFAIL, "temporary failure; the user is invited to retry": the
# run is intact and resumable. Distinct from 143 (128 + SIGTERM), which means
# killed, possibly without a checkpoint; a cluster manager can requeue on it
# (e.g. a Kubernetes podFailurePolicy onExitCodes rule, SLURM's RequeueExit).
EXIT_PREEMPTED = 75
SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Preempted(Exception):
    """The training loop stopped on a signal after saving a verified checkpoint.

    Attributes:
      signum: the signal (``signal.SIGTERM`` or ``signal.SIGINT``).
      step: the step of the checkpoint it saved.
    """

    def __init__(self, signum: int, step: int):
        self.signum = signum
        self.step = step
        super().__init__(
            f"stopped by {signal.Signals(signum).name} after step {step}, with a "
            "verified checkpoint of that step; continue with --resume"
        )


class StopOnSignal:
    """Records SIGTERM and SIGINT while the ``with`` block runs.

    A signal that :meth:`agreed` never returned (it came after the last step
    boundary) is raised again on exit, under the restored handler. Outside the
    main thread (where Python cannot install handlers) it records nothing and the
    signals keep their handlers.

    Examples:
      >>> import os, signal
      >>> from nsf_optax.experiments.runner.preemption import StopOnSignal
      >>> with StopOnSignal() as stop:
      ...     os.kill(os.getpid(), signal.SIGTERM)  # recorded, not fatal
      ...     stop.agreed() == signal.SIGTERM  # at a step boundary: stop there
      True
    """

    def __init__(self):
        self.requested: int | None = None
        self._acted_on = False
        self._previous: dict[int, Any] = {}

    def _record(self, signum: int, frame: FrameType | None) -> None:
        # Only the first signal counts; later ones (a second Ctrl-C while the
        # checkpoint is written) are ignored so that the save runs to its end.
        if self.requested is None:
            self.requested = signum

    def __enter__(self) -> StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            for signum in SIGNALS:
                self._previous[signum] = signal.signal(signum, self._record)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
        if self.requested is not None and not self._acted_on and exc_type is None:
            # Came after the last step boundary: not lost, but delivered again
            # to the handler it would have met.
            signal.raise_signal(self.requested)

    def agreed(self) -> int | None:
        """The signal every process stops on now, or None to go on.

        In a multi-process job this is a collective (every process must call it
        after the same step): the largest signal number any process received,
        so that all stop together.
        """
        import jax

        if jax.process_count() == 1:
            found = self.requested
        else:
            import numpy as np
            from jax.experimental import multihost_utils

            mine = np.int32(self.requested or 0)
            found = int(np.max(multihost_utils.process_allgather(mine))) or None
        self._acted_on = found is not None
        return found
