"""One run lifecycle: start, lock, resume, build, train with cadence, finish.

:func:`train` is the whole life of a training call, the same for one run
(:func:`.train.train_and_evaluate`) and a population (:func:`.population.
train_population`); each tells it what differs through a :class:`Kind`:

1. start: check ``max_steps_this_run``, the workdir (:func:`.workdirs.check`) and
   what the kind checks itself (data source, devices), before anything is written;
2. lock: hold ``<workdir>/.lock`` (host 0) to the end;
3. resume: find and verify the checkpoint to continue from
   (:func:`find_resume`, writing nothing), load the data and build the runs,
   restore them; once every check has passed, set newer checkpoints aside
   (:func:`set_aside_newer`);
4. place the runs on the devices; write the described config (host 0);
5. train with cadence: :func:`.loop.train_loop` with the hooks of :mod:`.hooks`
   (progress, evaluation, checkpoints, the preemption check);
6. finish: the final checkpoint (a hook at the last step), the metrics files (at
   every evaluation), and the kind's result.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar

from tqdm.auto import tqdm

from nsf_optax.experiments.runner import (
    checkpointing,
    hooks,
    loop,
    preemption,
    preflight,
    workdirs,
)
from nsf_optax.experiments.runner.errors import CheckpointError

# Fields that may differ between an interrupted run and its resumption.
RESUMABLE_CHANGES = ("resume", "progress", "data_dir")

History = hooks.History
Result = TypeVar("Result", covariant=True)


class Resumable(hooks.Runs, Protocol):
    """Runs the lifecycle can restore and place (one run or a population)."""

    count: int  # the number of runs (one history each)
    steps_per_epoch: int  # for the ``epoch`` column and the data-order position

    def restore(self, loaded: checkpointing.Loaded) -> None:
        """Takes the state of a verified checkpoint (on the host)."""
        ...

    def place(self) -> None:
        """Puts the state and the test set on the devices, ready to train."""
        ...


R = TypeVar("R", bound=Resumable)


class RunConfig(Protocol):
    """What :func:`train` reads of a run's configuration (a frozen config
    dataclass, such as the ResNet's, has these fields)."""

    @property
    def num_steps(self) -> int:
        """The last step of the run."""
        ...

    @property
    def resume(self) -> bool:
        """Continue from the newest verified checkpoint (required to exist)."""
        ...

    @property
    def eval_every_steps(self) -> int:
        """Evaluate (and write the metrics) every this many steps."""
        ...

    @property
    def checkpoint_every_steps(self) -> int:
        """Save a verified checkpoint every this many steps (0: only at the end)."""
        ...

    @property
    def progress(self) -> bool:
        """Show a progress bar (host 0)."""
        ...


class Kind(Protocol[R, Result]):
    """What one run or a population tells :func:`train`.

    Attributes:
      config: the shared configuration (what :class:`RunConfig` names).
      config_file: the JSON file of :meth:`describe`, written at the start.
    """

    @property
    def config(self) -> RunConfig:
        """The shared configuration."""
        ...

    config_file: str

    def check(self) -> None:
        """Checks made before the lock (data source, devices); writes nothing."""
        ...

    def describe(self) -> dict[str, Any]:
        """The config a checkpoint records and a resume must match."""
        ...

    def data_order(self) -> dict[str, Any]:
        """The seed(s) of the data order, for the checkpoint meta."""
        ...

    def build(self) -> R:
        """Loads the data and builds the runs (on the host)."""
        ...

    def pack(self, histories: list[History]) -> dict[str, Any]:
        """The histories as fields of the checkpoint meta."""
        ...

    def unpack(self, meta: Mapping[str, Any]) -> list[History]:
        """The histories a checkpoint meta holds (the inverse of :meth:`pack`)."""
        ...

    def write_metrics(self, workdir: str, histories: list[History]) -> None:
        """Writes the metrics files (host 0, after every evaluation)."""
        ...

    def label(self, runs: R) -> str:
        """The progress bar's label."""
        ...

    def finish(
        self, runs: R, histories: list[History], workdir: str, primary: bool
    ) -> Result:
        """What :func:`train` returns, after the loop (plots, final models)."""
        ...


def check_max_steps(max_steps_this_run: int | None) -> None:
    """Refuses a ``max_steps_this_run`` that is not None or positive."""
    if max_steps_this_run is not None and max_steps_this_run <= 0:
        raise ValueError(
            f"max_steps_this_run must be positive, got {max_steps_this_run}."
        )


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


def train(
    kind: Kind[R, Result],
    workdir: str | os.PathLike,
    *,
    max_steps_this_run: int | None = None,
    resume_step: int | None = None,
) -> Result:
    """The whole life of a training call (see the module doc).

    Args:
      kind: one run or a population.
      workdir: the directory of its metrics, config and checkpoints.
      max_steps_this_run: stop after this many steps of this call (with a
        checkpoint); None trains to ``kind.config.num_steps``.
      resume_step: with ``config.resume``, the checkpoint to continue from
        instead of the newest.

    Returns:
      ``kind.finish(...)``.

    Raises:
      UsageError: for what a start refuses (workdir, lock, data, devices,
        checkpoints), before anything is written.
      Preempted: after the checkpoint a SIGTERM or SIGINT asked for.
    """
    import jax

    check_max_steps(max_steps_this_run)
    workdir = os.fspath(workdir)
    workdirs.check(workdir)
    kind.check()
    primary = jax.process_index() == 0
    with workdirs.Lock(workdir, enabled=primary):
        return _train_locked(kind, workdir, max_steps_this_run, resume_step, primary)


def _train_locked(
    kind: Kind[R, Result],
    workdir: str,
    max_steps_this_run: int | None,
    resume_step: int | None,
    primary: bool,
) -> Result:
    config = kind.config
    described = kind.describe()
    ckpts = checkpointing.Checkpoints(
        preflight.checkpoint_dir(workdir), primary=primary
    )
    loaded = find_resume(
        ckpts,
        resume=config.resume,
        resume_step=resume_step,
        num_steps=config.num_steps,
        config=described,
        where=workdir,
    )
    runs = kind.build()
    step, histories = 0, [[] for _ in range(runs.count)]
    if loaded is not None:
        runs.restore(loaded)
        step, histories = loaded.step, kind.unpack(loaded.meta)
    # Every check passed: from here on the run writes to its workdir.
    set_aside_newer(ckpts, loaded, workdir)
    runs.place()
    if primary:
        workdirs.write_text(
            os.path.join(workdir, kind.config_file), json.dumps(described, indent=1)
        )
    last = config.num_steps
    if max_steps_this_run is not None:
        last = min(last, step + max_steps_this_run)

    def meta(step: int) -> dict[str, Any]:
        epoch, position = divmod(step, runs.steps_per_epoch)
        order = {**kind.data_order(), "epoch": epoch, "position": position}
        return {
            "config": described,
            "step": step,
            "data_order": order,
            **kind.pack(histories),
        }

    def on_eval() -> None:
        if primary:
            kind.write_metrics(workdir, histories)

    progress = config.progress and primary
    try:
        _train_with_cadence(
            kind, runs, ckpts, histories, meta, on_eval, step, last, progress
        )
    finally:
        ckpts.close()  # however the loop ends
    return kind.finish(runs, histories, workdir, primary)


def _train_with_cadence(
    kind: Kind[R, Any],
    runs: R,
    ckpts: checkpointing.Checkpoints,
    histories: list[History],
    meta: Callable[[int], dict[str, Any]],
    on_eval: Callable[[], None],
    step: int,
    last: int,
    progress: bool,
) -> None:
    # The loop with its hooks, under the signal recorder and the progress bar.
    config = kind.config
    with (
        preemption.StopOnSignal() as stop,
        tqdm(
            total=config.num_steps,
            initial=step,
            disable=not progress,
            desc=kind.label(runs),
            dynamic_ncols=True,
        ) as bar,
    ):
        checkpoint = hooks.CheckpointEvery(
            config.checkpoint_every_steps, ckpts, runs, meta, last=last
        )
        cadence = [
            hooks.ReportProgress(bar, runs, last=last),
            hooks.EvaluateEvery(
                config.eval_every_steps,
                runs,
                histories,
                num_steps=config.num_steps,
                steps_per_epoch=runs.steps_per_epoch,
                on_eval=on_eval,
            ),
            checkpoint,
            hooks.StopOnPreemption(stop, checkpoint),
        ]
        loop.train_loop(runs, cadence, step=step, last=last)
