"""The cadence of a training loop as small hooks, in the manner of CLU's
``periodic_actions``.

:func:`.loop.train_loop` calls every hook after every step, in order, with the
number of steps done and the step's loss; each hook decides itself whether to act
now. :class:`PeriodicAction` is the shape most of them share: act after every
``every_steps``-th step and at a few named steps.

* :class:`ReportProgress`: the tqdm bar and its postfix.
* :class:`EvaluateEvery`: one history row per run, then a callback (the
  metrics files).
* :class:`CheckpointEvery`: a verified checkpoint.
* :class:`StopOnPreemption`: after a SIGTERM or SIGINT every process agreed on, a
  checkpoint of the step (unless one was just written) and
  :class:`~.preemption.Preempted`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import jax
import numpy as np
from jax.experimental import multihost_utils

from nsf_optax.experiments.runner import checkpointing, preemption

History = list[dict[str, float]]


class Runs(Protocol):
    """One run or a population, as the loop and its hooks drive it."""

    def train_step(self, step: int) -> jax.Array:
        """Trains every run on the batch of ``step`` (0-based); returns the loss."""
        ...

    def evaluate(self, step: int) -> list[dict[str, float]]:
        """One row per run: lr, p, the running train loss and accuracy since the
        last evaluation (then reset), test loss and accuracy."""
        ...

    def items(self) -> dict[str, Any]:
        """The named pytrees of a checkpoint."""
        ...

    def postfix(self, step: int, loss: jax.Array) -> dict[str, str]:
        """The progress bar's postfix after ``step`` steps."""
        ...


class Hook(Protocol):
    """Called after every step with the number of steps done and its loss."""

    def __call__(self, step: int, loss: jax.Array) -> None: ...


class PeriodicAction:
    """Acts after every ``every_steps``-th step (0: never) and at the steps ``at``.

    Subclasses implement :meth:`_apply`; :attr:`last_step` is the step it last
    acted at (None before).
    """

    def __init__(self, every_steps: int, *, at: Sequence[int] = ()):
        self.every_steps = every_steps
        self.at = frozenset(at)
        self.last_step: int | None = None

    def __call__(self, step: int, loss: jax.Array) -> None:
        every = self.every_steps
        if (every and step % every == 0) or step in self.at:
            self._apply(step, loss)
            self.last_step = step

    def _apply(self, step: int, loss: jax.Array) -> None:
        raise NotImplementedError


class ReportProgress(PeriodicAction):
    """Advances the bar every step; refreshes its postfix every 10 steps and at
    ``last``."""

    def __init__(self, bar: Any, runs: Runs, *, last: int):
        super().__init__(10, at=(last,))
        self.bar, self.runs = bar, runs

    def __call__(self, step: int, loss: jax.Array) -> None:
        self.bar.update(1)
        super().__call__(step, loss)

    def _apply(self, step: int, loss: jax.Array) -> None:
        self.bar.set_postfix(self.runs.postfix(step, loss), refresh=False)


def _from_host_0(seconds: float) -> float:
    # Every process must hold the same history (it travels in the checkpoint's
    # meta, which each process verifies): the elapsed time is host 0's.
    if jax.process_count() == 1:
        return seconds
    return float(multihost_utils.broadcast_one_to_all(np.float32(seconds)))


class EvaluateEvery(PeriodicAction):
    """Evaluates every ``every_steps`` steps and after step ``num_steps``.

    Appends one row per run to ``histories`` (``step``, ``epoch``, the row of
    :meth:`Runs.evaluate` and ``elapsed_s``: training wall time, counted across
    resumptions from the histories' last row), then calls ``on_eval``.
    """

    def __init__(
        self,
        every_steps: int,
        runs: Runs,
        histories: list[History],
        *,
        num_steps: int,
        steps_per_epoch: int,
        on_eval: Callable[[], None] = lambda: None,
    ):
        super().__init__(every_steps, at=(num_steps,))
        self.runs, self.histories, self.on_eval = runs, histories, on_eval
        self.steps_per_epoch = steps_per_epoch
        done = histories[0][-1]["elapsed_s"] if histories and histories[0] else 0.0
        self.start = time.perf_counter() - done

    def _apply(self, step: int, loss: jax.Array) -> None:
        rows = self.runs.evaluate(step)
        elapsed = _from_host_0(time.perf_counter() - self.start)
        epoch = step / self.steps_per_epoch
        for history, row in zip(self.histories, rows, strict=True):
            history.append({"step": step, "epoch": epoch, **row, "elapsed_s": elapsed})
        self.on_eval()


class CheckpointEvery(PeriodicAction):
    """Saves ``runs.items()`` and ``meta(step)`` every ``every_steps`` steps (0:
    never) and after step ``last``."""

    def __init__(
        self,
        every_steps: int,
        ckpts: checkpointing.Checkpoints,
        runs: Runs,
        meta: Callable[[int], dict[str, Any]],
        *,
        last: int,
    ):
        super().__init__(every_steps, at=(last,))
        self.ckpts, self.runs, self.meta = ckpts, runs, meta

    def _apply(self, step: int, loss: jax.Array) -> None:
        self.save(step)

    def save(self, step: int) -> None:
        """Saves the checkpoint of ``step`` now."""
        self.ckpts.save(step, self.runs.items(), self.meta(step))


class StopOnPreemption:
    """Stops after the step a SIGTERM or SIGINT came in (every process agreeing),
    with a checkpoint of that step.

    Args:
      stop: the signals recorded while the loop runs.
      checkpoint: the hook that writes checkpoints; its checkpoint of this step is
        reused, otherwise one is written.

    Raises:
      Preempted: after the checkpoint.
    """

    def __init__(self, stop: preemption.StopOnSignal, checkpoint: CheckpointEvery):
        self.stop, self.checkpoint = stop, checkpoint

    def __call__(self, step: int, loss: jax.Array) -> None:
        signum = self.stop.agreed()
        if signum is None:
            return
        if self.checkpoint.last_step != step:
            self.checkpoint.save(step)
        raise preemption.Preempted(signum, step)
