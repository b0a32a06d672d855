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
  writes each trial's history to ``<workdir>/trial<j>/`` (``metrics.json``,
  ``metrics.csv`` and its ``config.json``, as its single run would);
* a trial alone in its group trains as a single run in ``<workdir>/trial<k>``
  (:func:`~nsf_optax.experiments.resnet.train.train_and_evaluate`).

With ``names`` (one relative directory per trial, e.g. ``sgd/seed0``) trial ``k``
writes to ``<workdir>/<names[k]>`` instead of ``trial<k>`` (its metrics and
config, or the whole single run), and a group trains in ``group`` next
to its first trial (``<workdir>/sgd/group`` for ``sgd/seed0``).

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
from nsf_optax.experiments.runner import preflight, workdirs

# A run's metric history (:data:`.hooks.History`; the runner's modules load jax,
# this module does not until it trains: its directories are checked before).
History = list[dict[str, float]]


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


def _trial_dirs(
    configs: Sequence[Config],
    workdir: str | os.PathLike,
    names: Sequence[str] | None,
) -> list[str]:
    # Where each trial's metrics (or its whole single run) go.
    if names is None:
        return [trial_dir(workdir, k) for k in range(len(configs))]
    if len(names) != len(configs) or len(set(names)) != len(names):
        raise ValueError(
            f"names must give each of the {len(configs)} trials its own directory, "
            f"got {list(names)}."
        )
    return [os.path.join(os.fspath(workdir), name) for name in names]


def _group_dirs(
    configs: Sequence[Config],
    workdir: str | os.PathLike,
    names: Sequence[str] | None,
) -> dict[int, str]:
    # First trial -> its group's directory, for the groups of several trials.
    paths = _trial_dirs(configs, workdir, names)
    found = {
        g[0]: group_dir(workdir, g[0])
        if names is None
        else os.path.join(os.path.dirname(paths[g[0]]), "group")
        for g in groups(configs)
        if len(g) > 1
    }
    if len(set(found.values())) != len(found):
        raise ValueError(
            "names put the first trials of two groups in one directory; give "
            "trials that train apart different parent directories."
        )
    return found


def run_dirs(
    configs: Sequence[Config],
    workdir: str | os.PathLike,
    names: Sequence[str] | None = None,
) -> list[str]:
    """The directory each trial trains in (see the module doc).

    Args:
      configs: the trials, as :func:`run_trials` gets them.
      workdir: its workdir.
      names: as :func:`run_trials` gets them.

    Returns:
      One directory per trial, in order: for a trial of a group of several whose
      first trial is ``k``, ``<workdir>/group<k>`` (with ``names``: ``group``
      next to trial ``k``'s directory); else ``<workdir>/trial<k>`` (with
      ``names``: ``<workdir>/<names[k]>``). Checks of a start (checkpoints
      present, resume files) belong to these.

    Raises:
      ValueError: for ``names`` that do not give every trial its own directory,
        or that put two groups in one.
    """
    paths = _trial_dirs(configs, workdir, names)
    grouped = _group_dirs(configs, workdir, names)
    found = [""] * len(configs)
    for indices in groups(configs):
        for index in indices:
            found[index] = grouped.get(indices[0], paths[indices[0]])
    return found


class _GroupKind:
    """A group of trials as :func:`.lifecycle.train` trains it (a
    :class:`~nsf_optax.experiments.runner.lifecycle.Kind`)."""

    config_file = "population.json"

    def __init__(
        self, trials: list[Config], indices: list[int], paths: list[str], resume: bool
    ):
        self.trials, self.indices, self.paths = trials, indices, paths
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
        from nsf_optax.experiments.resnet import train

        for path, config, history in zip(
            self.paths, self.trials, histories, strict=True
        ):
            os.makedirs(path, exist_ok=True)
            # What a single run writes, but its checkpoints (the group's).
            text = json.dumps(train.config_dict(config), indent=1)
            workdirs.write_text(os.path.join(path, "config.json"), text)
            train._write_metrics(path, history)

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
    names: Sequence[str] | None = None,
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
      names: each trial's directory relative to ``workdir`` (distinct), in place
        of ``trial<k>``; a group then trains in ``group`` next to its first
        trial's directory (see the module doc). None: ``trial<k>``, ``group<k>``.

    Returns:
      One metric history per trial, in the order of ``configs``; the same, to
      float rounding, as training them one after another.

    Raises:
      ValueError: for bad ``names`` (see :func:`run_dirs`).
    """
    from nsf_optax.experiments.resnet import train
    from nsf_optax.experiments.runner import lifecycle

    lifecycle.check_max_steps(max_steps_this_run)
    dirs = run_dirs(configs, workdir, names)
    paths = _trial_dirs(configs, workdir, names)
    for run_dir in dict.fromkeys(dirs):  # before any training
        preflight.check_start(run_dir, resume=_resumes(run_dir, resume), what="trial")
    histories: list[History | None] = [None] * len(configs)
    for indices in groups(configs):
        if len(indices) == 1:
            (index,) = indices
            run_dir = paths[index]
            config = dataclasses.replace(
                configs[index], resume=_resumes(run_dir, resume)
            )
            result = train.train_and_evaluate(
                config, run_dir, max_steps_this_run=max_steps_this_run
            )
            histories[index] = result.history
            continue
        run_dir = dirs[indices[0]]
        trials = [configs[k] for k in indices]
        kind = _GroupKind(
            trials, indices, [paths[k] for k in indices], _resumes(run_dir, resume)
        )
        found = lifecycle.train(kind, run_dir, max_steps_this_run=max_steps_this_run)
        for index, history in zip(indices, found, strict=True):
            histories[index] = history
    return [h if h is not None else [] for h in histories]
