"""The training loop that one run and a population of runs share.

:func:`train_loop` drives a :class:`Runs`: one run (:mod:`.train`, data parallel over
a ``"data"`` mesh axis) or a population of runs (:mod:`.population`, the runs
sharded over a ``"pop"`` mesh axis). Both compile the same step,
:func:`.train.train_step`; the loop around it is this one: the tqdm bar over steps,
evaluation every ``eval_every_steps`` (one history row per run), verified
checkpoints every ``checkpoint_every_steps``, at the last step of the call, and
at the step where a SIGTERM or SIGINT stops it (:mod:`.preemption`).

:func:`find_resume` and :func:`set_aside_newer` are the checkpoint side of a start:
refuse a workdir that already holds checkpoints unless resuming, read and verify the
checkpoint to continue from (writing nothing), and, once every check has passed,
move newer step directories out of the way.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import jax
import numpy as np
from jax.experimental import multihost_utils
from tqdm.auto import tqdm

from nsf_optax.experiments.runner import checkpointing, preemption, preflight
from nsf_optax.experiments.runner.errors import CheckpointError

# Fields that may differ between an interrupted run and its resumption.
RESUMABLE_CHANGES = ("resume", "progress", "data_dir")

History = list[dict[str, float]]


class Runs(Protocol):
    """One run or a population, as :func:`train_loop` drives it."""

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


def check_same_config(
    config: Mapping[str, Any], loaded: checkpointing.Loaded, where: str
) -> None:
    """Refuses a checkpoint whose ``meta["config"]`` differs from ``config``.

    Args:
      config: the fields of this start (``dataclasses.asdict`` of the config, plus
        whatever else must match, e.g. a population's p values and seeds).
      loaded: the checkpoint.
      where: the workdir, for the message.

    Raises:
      CheckpointError: naming the fields that differ.
    """
    saved = loaded.meta.get("config", {})
    changed = [
        k for k, v in config.items() if k not in RESUMABLE_CHANGES and saved.get(k) != v
    ]
    if changed:
        raise CheckpointError(
            f"The checkpoint of step {loaded.step} in {where!r} was written with a "
            f"different config ({', '.join(f'{k}={saved.get(k)!r}' for k in changed)})"
            "; resume with the same settings."
        )


def find_resume(
    ckpts: checkpointing.Checkpoints,
    *,
    resume: bool,
    resume_step: int | None,
    num_steps: int,
    config: Mapping[str, Any],
    where: str,
) -> checkpointing.Loaded | None:
    """The verified checkpoint to continue from, or None for a fresh start.

    Writes nothing.

    Args:
      ckpts: the run's checkpoints.
      resume: continue from a checkpoint (an error when there is none); without it
        a directory holding checkpoints is refused.
      resume_step: the step to continue from (None: the newest verified one).
      num_steps: the run's length: a finished run may be reloaded whatever it
        holds (nothing trains on it).
      config: what the checkpoint's ``meta["config"]`` must match (see
        :func:`check_same_config`).
      where: the workdir, for messages.

    Raises:
      CheckpointError: see :meth:`.checkpointing.Checkpoints.find_resume`, and a
        directory holding checkpoints without ``resume``.
    """
    preflight.check_checkpoints(ckpts.directory, resume=resume, resume_step=resume_step)
    if not resume:
        return None
    loaded = ckpts.find_resume(resume_step, nonfinite_from=num_steps)
    check_same_config(config, loaded, where)
    return loaded


def set_aside_newer(
    ckpts: checkpointing.Checkpoints,
    loaded: checkpointing.Loaded | None,
    workdir: str,
) -> None:
    """Moves the step directories newer than ``loaded`` to
    ``<workdir>/checkpoints_set_aside/`` (never deleting them)."""
    if loaded is None or not loaded.newer:
        return
    moved = ckpts.set_aside(
        loaded.newer, os.path.join(workdir, "checkpoints_set_aside")
    )
    logging.warning(
        "resuming from step %d; the newer checkpoints were moved to %s",
        loaded.step,
        ", ".join(moved),
    )


def _from_host_0(seconds: float) -> float:
    # Every process must hold the same history (it travels in the checkpoint's
    # meta, which each process verifies): the elapsed time is host 0's.
    if jax.process_count() == 1:
        return seconds
    return float(multihost_utils.broadcast_one_to_all(np.float32(seconds)))


def train_loop(
    runs: Runs,
    ckpts: checkpointing.Checkpoints,
    *,
    step: int,
    last: int,
    num_steps: int,
    eval_every_steps: int,
    checkpoint_every_steps: int,
    steps_per_epoch: int,
    histories: list[History],
    meta: Callable[[int], dict[str, Any]],
    on_eval: Callable[[], None] = lambda: None,
    progress: bool = True,
    desc: str | None = None,
) -> int:
    """Trains ``runs`` from ``step`` to ``last``; evaluates and checkpoints.

    Evaluates after every ``eval_every_steps``-th step and after step
    ``num_steps``, appending one row per run to ``histories`` (``step``,
    ``epoch``, the row of :meth:`Runs.evaluate` and ``elapsed_s``: training
    wall time, counted across resumptions), then calls ``on_eval``. Saves a
    verified checkpoint (``runs.items()`` and ``meta(step)``) every
    ``checkpoint_every_steps`` steps (0: never) and after step ``last``; closes
    ``ckpts`` at the end, however the loop ends. A SIGTERM or SIGINT while it
    runs stops it after the step under way, with a verified checkpoint of that
    step (see :mod:`.preemption`).

    Args:
      runs: what to train.
      ckpts: where to checkpoint.
      step: the number of steps already done.
      last: stop after this step.
      num_steps: the run's full length (the bar's total, the final evaluation).
      eval_every_steps: the evaluation period.
      checkpoint_every_steps: the checkpoint period (0: only after ``last``).
      steps_per_epoch: for the ``epoch`` column.
      histories: one list of rows per run, extended in place.
      meta: the JSON ``meta`` of the checkpoint after a given step.
      on_eval: called after each evaluation (e.g. to write the metrics files).
      progress: show the bar.
      desc: the bar's label.

    Returns:
      The number of steps done (``last``).

    Raises:
      Preempted: after the checkpoint a SIGTERM or SIGINT asked for.
    """
    done = histories[0][-1]["elapsed_s"] if histories and histories[0] else 0.0
    start = time.perf_counter() - done
    try:
        with (
            preemption.StopOnSignal() as stop,
            tqdm(
                total=num_steps,
                initial=step,
                disable=not progress,
                desc=desc,
                dynamic_ncols=True,
            ) as bar,
        ):
            while step < last:
                loss = runs.train_step(step)
                step += 1
                bar.update(1)
                if step % 10 == 0 or step == last:
                    bar.set_postfix(runs.postfix(step, loss), refresh=False)
                if step % eval_every_steps == 0 or step == num_steps:
                    rows = runs.evaluate(step)
                    elapsed = _from_host_0(time.perf_counter() - start)
                    for history, row in zip(histories, rows, strict=True):
                        history.append(
                            {
                                "step": step,
                                "epoch": step / steps_per_epoch,
                                **row,
                                "elapsed_s": elapsed,
                            }
                        )
                    on_eval()
                every = checkpoint_every_steps
                saved = bool(every and step % every == 0) or step == last
                if saved:
                    ckpts.save(step, runs.items(), meta(step))
                signum = stop.agreed()
                if signum is not None:
                    if not saved:
                        ckpts.save(step, runs.items(), meta(step))
                    raise preemption.Preempted(signum, step)
    finally:
        ckpts.close()
    return step
