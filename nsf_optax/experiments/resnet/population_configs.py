"""The configurations a population trains and the hyperparameters it traces.

A population (:mod:`.population`) trains runs of one configuration that differ
only in ``seed`` and the hyperparameters traced per run: the peak learning rate
and, for nsf with a constant p, ``p_value`` (:func:`.grouping.group_key`). The optimizer
is :func:`.optimizers.create_optimizer` with those hyperparameters injected
(``optax.inject_hyperparams``), and each run's values are written into the
leaves of its stacked state (:func:`with_leaf`).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from flax import nnx
from jax.sharding import NamedSharding

from nsf_optax.experiments.resnet import models, optimizers, train
from nsf_optax.experiments.resnet.configs.default import Config
from nsf_optax.experiments.resnet.grouping import injects_p
from nsf_optax.experiments.runner import checkpointing
from nsf_optax.experiments.runner.errors import ConfigError

P_LEAF = "1/opt_state/hyperparams/p/value"  # the injected p, in the run's state
LR_LEAF = "1/opt_state/hyperparams/learning_rate/value"  # the injected peak lr


def check_values(ps: Sequence[float], seeds: Sequence[int]) -> None:
    if not len(ps) or not len(seeds):
        raise ConfigError("A population needs at least one p and one seed.", ("p",))
    for p in ps:
        if not isinstance(p, int | float) or not math.isfinite(p):
            raise ConfigError(f"Every p must be a finite number, got {p!r}.", ("p",))
    if len(set(ps)) != len(ps):
        raise ConfigError(f"The p values repeat: {list(ps)}.", ("p",))
    for seed in seeds:
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
            raise ConfigError(f"Seeds must be integers in [0, 2**32), got {seed!r}.")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"The seeds repeat: {list(seeds)}.", ("seeds",))


def put_global(tree: Any, sharding: NamedSharding) -> Any:
    # Host arrays, the same on every process, as global arrays with this sharding.
    def put(x):
        x = np.asarray(x)
        return jax.make_array_from_callback(x.shape, sharding, lambda i: x[i])

    return jax.tree.map(put, tree)


def p_of(config: Config) -> float:
    # A run's p: its constant p, else the p schedule's first value.
    if injects_p(config):
        return float(config.p_params["p_value"])
    return float(np.asarray(optimizers.create_p_schedule(config)(0)))


def step_fields(config: Config, inject_learning_rate: bool = False) -> Config:
    # The config without the fields a population's step does not depend on (the
    # data, seeds and the traced hyperparameters), so that the label-noise levels
    # of a sweep share one optimizer object, hence equal graphdefs and one
    # compiled step.
    config = dataclasses.replace(
        config,
        seed=0,
        label_noise=0.0,
        train_size=None,
        data_seed=0,
        resume=False,
        progress=False,
    )
    if inject_learning_rate:
        config = dataclasses.replace(config, learning_rate=1.0)
    return dataclasses.replace(config, p_value=0.0) if injects_p(config) else config


@functools.lru_cache(maxsize=8)
def optimizer(config: Config, inject_p: bool, inject_learning_rate: bool):
    return optimizers.create_optimizer(
        config, inject_p=inject_p, inject_learning_rate=inject_learning_rate
    )


def with_leaf(tree: Any, key: str, value: np.ndarray) -> Any:
    def replace(path, leaf):
        return value if checkpointing.key_string(path) == key else leaf

    found = [
        p
        for p, _ in jax.tree_util.tree_flatten_with_path(tree)[0]
        if checkpointing.key_string(p) == key
    ]
    if len(found) != 1:
        raise AssertionError(f"expected one {key!r} leaf in the run's state")
    return jax.tree_util.tree_map_with_path(replace, tree)


def population_config(
    config: Config, ps: Sequence[float], seeds: Sequence[int]
) -> dict[str, Any]:
    """What a population's checkpoint records and a resume must match: the
    config (its own ``seed`` and ``p_value`` unused) and the p values and seeds."""
    fields = train.config_dict(config)
    fields.update(seed=None, p_value=None, ps=[float(p) for p in ps])
    fields.update(seeds=[int(s) for s in seeds])
    return fields


def split_models(
    config: Config, data: Any, tx: Any, seeds: Sequence[int]
) -> tuple[tuple[nnx.GraphDef, ...], dict[int, nnx.State]]:
    """Every seed's initial run state and the graphdefs they share.

    Args:
      config: the population's configuration (model, width).
      data: the training set (its classes and input shape).
      tx: the optimizer (its hyperparameters injected).
      seeds: the distinct seeds.

    Returns:
      ``((graphdef, eval_graphdef, metrics_graphdef), per_seed)``: the graphdefs
      of one run's ``(model, optimizer, metrics)``, of its model in eval mode and
      of its metrics, and seed -> that seed's ``(model, optimizer, metrics)`` state.
    """
    per_seed, graphdef, model = {}, None, None
    for seed in seeds:
        model = models.create_model(
            config.model,
            num_classes=data.num_classes,
            in_features=data.in_features,
            ndim=data.ndim,
            seed=seed,
            num_filters=config.num_filters,
        )
        parts = (model, nnx.Optimizer(model, tx, wrt=nnx.Param))
        graphdef, per_seed[seed] = nnx.split((*parts, train.create_metrics()))
    assert model is not None and graphdef is not None  # seeds is not empty
    model.eval()
    metrics_graphdef = nnx.graphdef(train.create_metrics())
    return (graphdef, nnx.graphdef(model), metrics_graphdef), per_seed


def restore_stacked(
    loaded: checkpointing.Loaded,
    state: Any,
    rng: np.ndarray,
    order: Sequence[int],
    items: Sequence[str],
) -> tuple[Any, np.ndarray]:
    """A checkpoint's runs as the stacked state and keys of a population.

    Args:
      loaded: the verified checkpoint (the real runs only, no padding).
      state: the population's stacked state on the host (the restore target).
      rng: its stacked key data.
      order: run index of each row (padding repeats run 0).
      items: the checkpoint item of each part of ``state``, in order.

    Returns:
      ``(state, rng)`` restored, padding included.
    """
    count = max(order) + 1
    flat = {}
    for i, name in enumerate(items):
        target = jax.tree.map(lambda x: x[:count], state[i])
        tree = checkpointing.restore_into(loaded.items.get(name, {}), target, name=name)
        flat.update({f"{i}/{k}": v for k, v in checkpointing.flatten(tree).items()})
    target = {"key": rng[:count]}
    keys = checkpointing.restore_into(loaded.items.get("rng", {}), target, name="rng")
    index = np.asarray(order)
    state = jax.tree_util.tree_map_with_path(
        lambda path, _: flat[checkpointing.key_string(path)][index], state
    )
    return state, np.asarray(keys["key"])[index]
