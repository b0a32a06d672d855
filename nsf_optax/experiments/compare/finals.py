"""A comparison's final runs, trained as populations (:func:`train_finals`).

The final runs of a comparison differ, within a method (and budget), only in
their seed (and learning rate), so each method's seeds train as one population
(:func:`~nsf_optax.experiments.tuning.trials.run_trials`: one compiled step, each
run the same as its single run to float rounding). Layout, relative to the
comparison's workdir: each run's ``metrics.json`` and ``metrics.csv`` in its own
directory (``<method>/seed<k>``), and the group's run (``population.json``,
``histories.json``, checkpoints) in ``group`` next to them (``<method>/group``).
A method with a single seed trains as a single run in ``<method>/seed0``.

A population's runs share its training wall time (each history's ``elapsed_s``
is the population's): :func:`wall_per_run` divides it among them for the
"wall s/run" column.
"""

from __future__ import annotations

from collections.abc import Sequence

from nsf_optax.experiments.resnet.configs.default import Config
from nsf_optax.experiments.tuning import trials

History = trials.History


def run_dirs(configs: Sequence[Config], names: Sequence[str]) -> list[str]:
    """The directories the final runs train in, relative to the workdir (no jax).

    Args:
      configs: the final runs.
      names: each run's own directory (``<method>/seed<k>``), relative.

    Returns:
      Each run's training directory: ``group`` next to the first run of its
      group, or its own for a run alone (see the module doc); what
      :func:`.compare.check_runs` checks before anything trains.

    Examples:
      >>> from nsf_optax.experiments.resnet.configs import get_config
      >>> import dataclasses
      >>> base = get_config("tiny")
      >>> runs = [dataclasses.replace(base, seed=k) for k in range(2)]
      >>> run_dirs(runs + [dataclasses.replace(base, optimizer="adam")],
      ...          ["sgd/seed0", "sgd/seed1", "adam/seed0"])
      ['sgd/group', 'sgd/group', 'adam/seed0']
    """
    return trials.run_dirs(configs, "", names)


def train_finals(
    configs: Sequence[Config],
    names: Sequence[str],
    workdir: str,
    *,
    resume: bool,
    labels: Sequence[str] | None = None,
) -> list[History]:
    """Trains the final runs, a group at a time, and prints a line per run.

    Args:
      configs: the final runs (any methods, seeds and learning rates).
      names: each run's directory relative to ``workdir`` (distinct).
      workdir: the comparison's directory.
      resume: a group or run with a checkpoint continues from it (a finished one
        is only reloaded); the others start afresh.
      labels: printed after each run's method (e.g. ``" budget 0.5"``).

    Returns:
      One metric history per run, in the order of ``configs``.
    """
    histories = trials.run_trials(configs, workdir, resume=resume, names=names)
    for k, (config, history) in enumerate(zip(configs, histories, strict=True)):
        last = history[-1]
        label = labels[k] if labels is not None else ""
        print(
            f"{config.method:>14}{label} seed {config.seed}: test acc "
            f"{last['test_accuracy']:.4f} loss {last['test_loss']:.4f}",
            flush=True,
        )
    return histories


def wall_per_run(
    configs: Sequence[Config], histories: Sequence[History]
) -> list[History]:
    """The histories with each run's share of its population's wall time.

    Args:
      configs: the runs, as :func:`train_finals` got them.
      histories: its answer.

    Returns:
      Copies whose ``elapsed_s`` is divided by the size of the run's group (the
      metrics files keep the population's time).

    Examples:
      >>> from nsf_optax.experiments.resnet.configs import get_config
      >>> import dataclasses
      >>> runs = [dataclasses.replace(get_config("tiny"), seed=k) for k in range(4)]
      >>> shared = [[{"step": 1, "elapsed_s": 8.0}]] * 4
      >>> [h[-1]["elapsed_s"] for h in wall_per_run(runs, shared)]
      [2.0, 2.0, 2.0, 2.0]
    """
    size = [0] * len(configs)
    for indices in trials.groups(configs):
        for index in indices:
            size[index] = len(indices)
    return [
        [{**row, "elapsed_s": row["elapsed_s"] / n} if "elapsed_s" in row else row
         for row in history]
        for history, n in zip(histories, size, strict=True)
    ]  # fmt: skip
