"""Which configurations train as one population (no jax: read by the checks
that run before jax loads).

A population (:mod:`.population`) trains runs of one configuration that differ
only in ``seed`` and the hyperparameters it traces per run: the peak learning
rate and, for nsf with a constant p, ``p_value``.
"""

from __future__ import annotations

import dataclasses

from nsf_optax.experiments.resnet.configs.default import Config


def injects_p(config: Config) -> bool:
    """Whether a population traces the runs' p: nsf with the constant p schedule."""
    return config.optimizer == "nsf" and config.p_schedule == "constant"


def group_key(config: Config) -> Config:
    """What configurations that can train as one population share: the config
    without ``learning_rate``, ``seed`` and (nsf with a constant p) ``p_value``,
    and without the bookkeeping fields ``resume`` and ``progress``.

    Args:
      config: a run's configuration.

    Returns:
      A hashable config; equal keys train as one
      :meth:`.population.Population.of_trials`.
    """
    key = dataclasses.replace(
        config, learning_rate=None, seed=0, resume=False, progress=False
    )
    return dataclasses.replace(key, p_value=0.0) if injects_p(config) else key
