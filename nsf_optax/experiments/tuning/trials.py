"""Trains a list of trial configurations: :func:`run_trials`.

Each trial is a full :class:`~nsf_optax.experiments.resnet.configs.default.Config`;
trial ``k`` trains in ``<workdir>/trial<k>`` through the run lifecycle
(:func:`~nsf_optax.experiments.resnet.train.train_and_evaluate`), so a trial is
checked, locked, checkpointed and resumed like any run.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

from nsf_optax.experiments.resnet.configs.default import Config
from nsf_optax.experiments.runner import hooks, preflight

History = hooks.History


def trial_dir(workdir: str | os.PathLike, index: int) -> str:
    """``<workdir>/trial<index>``."""
    return os.path.join(os.fspath(workdir), f"trial{index}")


def run_trials(
    configs: Sequence[Config], workdir: str | os.PathLike, *, resume: bool = False
) -> list[History]:
    """Trains every configuration, one after another; returns their histories.

    Args:
      configs: the trials (any optimizer, learning rate, p, seed).
      workdir: trial ``k`` trains in :func:`trial_dir` ``(workdir, k)``.
      resume: a trial with a checkpoint continues from it (a finished one is only
        reloaded); the others start afresh.

    Returns:
      One metric history per trial, in order.
    """
    from nsf_optax.experiments.resnet import train

    histories = []
    for index, config in enumerate(configs):
        run_dir = trial_dir(workdir, index)
        again = resume and bool(
            preflight.checkpoint_steps(preflight.checkpoint_dir(run_dir))
        )
        result = train.train_and_evaluate(
            dataclasses.replace(config, resume=again), run_dir
        )
        histories.append(result.history)
    return histories
