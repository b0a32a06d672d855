"""Trains a list of trial configurations: :func:`run_trials`.

Each trial is a full :class:`~nsf_optax.experiments.resnet.configs.default.Config`.
Trials that differ only in ``learning_rate``, ``seed`` and (nsf with a constant
p) ``p_value`` (equal :func:`~nsf_optax.experiments.resnet.grouping.group_key`)
form a group, trained as one population
(:meth:`~nsf_optax.experiments.resnet.population.Population.of_trials`): one
compiled step for the whole group, each trial's peak learning rate (and p) a
traced scalar of its state, each trial the same run as its single run (to float
rounding: the traced peak multiplies the schedule's shape).

Layout of ``workdir``:

* a group of several trials, whose first trial is ``k``, trains in
  ``<workdir>/group<k>`` through the run lifecycle (``population.json``, the
  group's config and trials; ``histories.json``; verified checkpoints), and
  writes each trial's history to ``<workdir>/trial<j>/metrics.json``;
* a trial alone in its group trains as a single run in ``<workdir>/trial<k>``
  (:func:`~nsf_optax.experiments.resnet.train.train_and_evaluate`).

Every group or single run is checked, locked, checkpointed and resumed like any
run: with ``resume`` a killed tuning job continues each unfinished group from its
newest checkpoint and only reloads the finished ones. The checkpoints of every
run directory (:func:`run_dirs`) are checked before any of them trains.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

from nsf_optax.experiments.resnet.configs.default import Config
from nsf_optax.experiments.resnet.grouping import group_key
from nsf_optax.experiments.runner import hooks, lifecycle, preflight, workdirs

History = hooks.History


def trial_dir(workdir: str | os.PathLike, index: int) -> str:
    """``<workdir>/trial<index>``."""
    return os.path.join(os.fspath(workdir), f"trial{index}")


def group_dir(workdir: str | os.PathLike, first: int) -> str:
    """``<workdir>/group<first>``: the group whose first trial is ``first``."""
    return os.path.join(os.fspath(workdir), f"group{first}")


def groups(configs: Sequence[Config]) -> list[list[int]]:
    """The trial indices of each group, in order of their first trial.

    Args:
      configs: the trials.

    Returns:
      Lists of indices into ``configs``; trials in one list differ only in
      ``learning_rate``, ``seed`` and (nsf with a constant p) ``p_value``.
    """
    found: dict[Config, list[int]] = {}
    for index, config in enumerate(configs):
        found.setdefault(group_key(config), []).append(index)
    return list(found.values())


def run_dirs(configs: Sequence[Config], workdir: str | os.PathLike) -> list[str]:
    """The directory each trial trains in (see the module doc).

    Args:
      configs: the trials, as :func:`run_trials` gets them.
      workdir: its workdir.

    Returns:
      One directory per trial, in order: ``<workdir>/group<k>`` for a trial of a
      group of several whose first trial is ``k``, else ``<workdir>/trial<k>``.
      Checks of a start (checkpoints present, resume files) belong to these.
    """
    found = [""] * len(configs)
    for indices in groups(configs):
        first = indices[0]
        path = trial_dir(workdir, first) if len(indices) == 1 else None
        for index in indices:
            found[index] = path or group_dir(workdir, first)
    return found


class _GroupKind:
    """A group of trials as :func:`.lifecycle.train` trains it (a
    :class:`~nsf_optax.experiments.runner.lifecycle.Kind`)."""

    config_file = "population.json"

    def __init__(
        self, trials: list[Config], indices: list[int], workdir: str, resume: bool
    ):
        self.trials, self.indices, self.workdir = trials, indices, workdir
        self.config = dataclasses.replace(trials[0], resume=resume)

    def check(self) -> None:
        from nsf_optax.experiments.resnet import input_pipeline

        input_pipeline.check_source(self.config.dataset, self.config.data_dir)

    def describe(self) -> dict[str, Any]:
        from nsf_optax.experiments.resnet import train

        fields = train.config_dict(self.config)
        fields["trials"] = [
            {"trial": k, "learning_rate": c.peak_learning_rate, "seed": c.seed}
            | {"p_value": c.p_params.get("p_value")}
            for k, c in zip(self.indices, self.trials, strict=True)
        ]
        return fields

    def data_order(self) -> dict[str, Any]:
        return {"seeds": list(dict.fromkeys(c.seed for c in self.trials))}

    def build(self) -> Any:
        from nsf_optax.experiments.resnet import population, train

        data = train.load_training_set(self.config)
        return population.Population.of_trials(
            self.trials, data, population.default_map_batch_size()
        )

    def pack(self, histories: list[History]) -> dict[str, Any]:
        return {"histories": histories}

    def unpack(self, meta: Mapping[str, Any]) -> list[History]:
        return [list(h) for h in meta["histories"]]

    def write_metrics(self, workdir: str, histories: list[History]) -> None:
        described = self.describe()["trials"]
        rows = [{**d, "history": h} for d, h in zip(described, histories, strict=True)]
        workdirs.write_text(
            os.path.join(workdir, "histories.json"), json.dumps(rows, indent=1)
        )
        for index, history in zip(self.indices, histories, strict=True):
            path = trial_dir(self.workdir, index)
            os.makedirs(path, exist_ok=True)
            text = json.dumps(history, indent=1)
            workdirs.write_text(os.path.join(path, "metrics.json"), text)

    def label(self, runs: Any) -> str:
        return f"{runs.count} trials"

    def finish(
        self, runs: Any, histories: list[History], workdir: str, primary: bool
    ) -> list[History]:
        return histories


def _resumes(run_dir: str, resume: bool) -> bool:
    # Continue this run only when asked to and it has a checkpoint.
    return resume and bool(
        preflight.checkpoint_steps(preflight.checkpoint_dir(run_dir))
    )


def run_trials(
    configs: Sequence[Config],
    workdir: str | os.PathLike,
    *,
    resume: bool = False,
    max_steps_this_run: int | None = None,
) -> list[History]:
    """Trains every configuration, a group of them at a time; returns their
    histories.

    Args:
      configs: the trials (any optimizer, learning rate, p, seed); those of one
        group (:func:`groups`) train as one population, the others alone.
      workdir: see the module doc for the layout.
      resume: a group or trial with a checkpoint continues from it (a finished one
        is only reloaded); the others start afresh.
      max_steps_this_run: stop every group and trial after this many steps of this
        call (with a checkpoint); continue with ``resume``.

    Returns:
      One metric history per trial, in the order of ``configs``; the same, to
      float rounding, as training them one after another.
    """
    from nsf_optax.experiments.resnet import train

    lifecycle.check_max_steps(max_steps_this_run)
    for run_dir in dict.fromkeys(run_dirs(configs, workdir)):  # before any training
        preflight.check_start(run_dir, resume=_resumes(run_dir, resume), what="trial")
    histories: list[History | None] = [None] * len(configs)
    for indices in groups(configs):
        if len(indices) == 1:
            (index,) = indices
            run_dir = trial_dir(workdir, index)
            config = dataclasses.replace(
                configs[index], resume=_resumes(run_dir, resume)
            )
            result = train.train_and_evaluate(
                config, run_dir, max_steps_this_run=max_steps_this_run
            )
            histories[index] = result.history
            continue
        run_dir = group_dir(workdir, indices[0])
        trials = [configs[k] for k in indices]
        kind = _GroupKind(
            trials, indices, os.fspath(workdir), _resumes(run_dir, resume)
        )
        found = lifecycle.train(kind, run_dir, max_steps_this_run=max_steps_this_run)
        for index, history in zip(indices, found, strict=True):
            histories[index] = history
    return [h if h is not None else [] for h in histories]
