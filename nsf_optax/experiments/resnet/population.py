"""A population of runs that differ only in p and seed, trained as one program.

:func:`train_population` trains ``len(seeds) x len(ps)`` runs of one
:class:`~.configs.default.Config` (optimizer ``nsf``, constant p) together. Each
run carries its own parameters, optimizer state, running metrics, PRNG key and
exponent p: the optimizer is :func:`.optimizers.create_optimizer` with ``inject_p``, so
p is a per-run scalar leaf of the optimizer state, traced in the compiled step.

**Pairing.** Runs with the same seed start from the same parameters (``key(seed)``),
see the same batches (the order ``input_pipeline.batch_indices(seed, step)``, one
batch per seed and step) and the same augmentation (the key stream
``fold_in(key(seed), 1)``): within a seed only p differs. Seeds differ in all
three. Run ``(p, seed)`` is therefore the single run
``train_and_evaluate(replace(config, p_value=p, seed=seed))``, up to the traced p
(tested).

**Execution.** One jitted step: ``jax.shard_map`` over a one-axis mesh ``"pop"`` of
all devices (those of every process) splits the runs into contiguous blocks, one
per device (the population is padded with copies of run 0 to a multiple of the
device count; the copies are dropped from every output). ``map_batch_size``
says how each device steps its runs. ``1``: one run at a time, each step of a run
one call of a compiled single-run program whose run index is a traced argument (one
compilation for all runs; the run's slice of the stacked state is updated in place,
the state being donated). ``b > 1``: ``jax.lax.map`` over the runs inside one
compiled step, ``b`` runs vmapped at a time; ``0`` (or the block size) one
``vmap`` over all of them. :func:`default_map_batch_size` picks per backend from
``benchmarks/bench_population.py``: 1 on CPU, where XLA batches convolutions over
different weights poorly and runs them slowly inside a loop body, and all runs on
GPU/TPU, the usual way to fill an accelerator (not measured here: no GPU was
available). Batches and
the test set are replicated; every process computes the same batches.

**Checkpoints.** The named pytrees of :func:`.train.train_and_evaluate`
(``model``, ``optimizer``, ``train_metrics``, ``rng``) with a leading run axis,
through :class:`.checkpointing.Checkpoints`; the p values and seeds are part of
the config a resume must match. A resumed population continues bit for bit.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import jax
import numpy as np
from flax import nnx
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from nsf_optax.experiments.resnet import (
    evaluation,
    input_pipeline,
    models,
    optimizers,
    train,
)
from nsf_optax.experiments.resnet.configs.default import Config
from nsf_optax.experiments.resnet.population_programs import AXIS, programs
from nsf_optax.experiments.runner import checkpointing, lifecycle, workdirs
from nsf_optax.experiments.runner.errors import ConfigError

_P_LEAF = "1/opt_state/hyperparams/p/value"  # the injected p, in the run's state
_ITEMS = ("model", "optimizer", "train_metrics")  # a run's state, in order


def default_map_batch_size(platform: str | None = None) -> int:
    """How many runs each device steps at once: 1 on CPU, 0 (all) elsewhere.

    Args:
      platform: a JAX platform name; None: the default backend's.

    Returns:
      1 (one compiled single-run call per run and step) for ``"cpu"``, else 0 (a
      ``vmap`` over all of the device's runs).
    """
    platform = platform or jax.default_backend()
    return 1 if platform == "cpu" else 0


class PopulationResult(NamedTuple):
    """What :func:`train_population` returns."""

    runs: tuple[tuple[float, int], ...]  # (p, seed) of each run, seed-major
    histories: list[list[dict[str, float]]]  # one per run, train.HISTORY_FIELDS
    graphdef: nnx.GraphDef  # of one run's model
    model_state: Any  # the models' nnx.State, leading run axis, on the host

    def model(self, index: int) -> models.ResNet:
        """Run ``index``'s trained model, in eval mode."""
        state = jax.tree.map(lambda x: x[index], self.model_state)
        model = nnx.merge(self.graphdef, state)
        model.eval()
        return model


def _check_values(ps: Sequence[float], seeds: Sequence[int]) -> None:
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


def _global(tree: Any, sharding: NamedSharding) -> Any:
    # Host arrays, the same on every process, as global arrays with this sharding.
    def put(x):
        x = np.asarray(x)
        return jax.make_array_from_callback(x.shape, sharding, lambda i: x[i])

    return jax.tree.map(put, tree)


class Population:
    """The runs ``(p, seed)``, seed-major, as :func:`.lifecycle.train` drives them.

    Built on the host (states stacked along a leading run axis); :meth:`place`
    puts them on the mesh; :meth:`train_step` then steps every run on the batches
    of one step. :func:`train_population` is the usual entry point; the class is
    public for benchmarks and tests.

    Args:
      config: as :func:`train_population`.
      ps: the exponents.
      seeds: the seeds.
      data: the training set (:func:`.train.load_training_set`).
      map_batch_size: runs stepped at once on each device (see the module doc).
    """

    def __init__(
        self,
        config: Config,
        ps: Sequence[float],
        seeds: Sequence[int],
        data: input_pipeline.Dataset,
        map_batch_size: int,
    ):
        self.config, self.data = config, data
        self.seeds = list(seeds)
        self.runs = [(float(p), s) for s in seeds for p in ps]
        self.count = len(self.runs)
        self.steps_per_epoch = input_pipeline.steps_per_epoch(
            len(data.y_train), config.batch_size
        )
        self.mesh = Mesh(np.asarray(jax.devices()), (AXIS,))
        self.sharded = NamedSharding(self.mesh, P(AXIS))
        self.replicated = NamedSharding(self.mesh, P())
        padded = -(-self.count // self.mesh.size) * self.mesh.size
        self.order = list(range(self.count)) + [0] * (padded - self.count)
        per_seed = self._split_models(config, data)
        states = [per_seed[self.runs[k][1]] for k in self.order]
        stacked = jax.tree.map(lambda *xs: np.stack(xs), *states)
        p_values = np.asarray([self.runs[k][0] for k in self.order], np.float32)
        self.state = _with_leaf(stacked, _P_LEAF, p_values)
        self.rng = np.stack(
            [
                jax.random.key_data(jax.random.fold_in(jax.random.key(s), 1))
                for _, s in (self.runs[k] for k in self.order)
            ]
        )
        self.seed_index = np.asarray(
            [self.seeds.index(self.runs[k][1]) for k in self.order], np.int32
        )
        self.lr_fn = optimizers.create_learning_rate_schedule(config)
        local = len(self.order) // self.mesh.size
        self.map_batch_size = local if map_batch_size in (0, None) else map_batch_size
        # Populations of the same shape (e.g. the label-noise levels of a sweep)
        # share these compiled functions.
        self._step, self._eval, self._gather, self._reset = programs(
            config.crop_padding,
            config.flip,
            self.graphdef,
            self.eval_graphdef,
            self.mesh,
            self.count,
            local,
            self.map_batch_size,
        )

    def _split_models(
        self, config: Config, data: input_pipeline.Dataset
    ) -> dict[int, nnx.State]:
        # Seed -> the state of one run's (model, optimizer, metrics); sets the
        # graphdefs.
        tx = _optimizer(_step_fields(config))
        per_seed, model = {}, None
        for seed in self.seeds:
            model = models.create_model(
                config.model,
                num_classes=data.num_classes,
                in_features=data.in_features,
                ndim=data.ndim,
                seed=seed,
                num_filters=config.num_filters,
            )
            parts = (model, nnx.Optimizer(model, tx, wrt=nnx.Param))
            self.graphdef, per_seed[seed] = nnx.split((*parts, train.create_metrics()))
        assert model is not None  # seeds is not empty
        model.eval()
        self.eval_graphdef = nnx.graphdef(model)
        self.metrics_graphdef = nnx.graphdef(train.create_metrics())
        return per_seed

    # The Runs protocol ----------------------------------------------------------

    def place(self) -> None:
        """Puts the runs on the mesh (sharded) and the test set (replicated)."""
        self.state = _global(self.state, self.sharded)
        self.rng = _global(self.rng, self.sharded)
        self.seed_index = _global(self.seed_index, self.sharded)
        self.eval_batches = [
            _global(batch, self.replicated)
            for batch in evaluation.eval_batches(self.data, self.config.eval_batch_size)
        ]

    def _batches(self, step: int) -> tuple[jax.Array, jax.Array]:
        size = self.config.batch_size
        idx = [
            input_pipeline.batch_indices(s, step, len(self.data.y_train), size)
            for s in self.seeds
        ]
        xs = np.stack([self.data.x_train[i] for i in idx])
        ys = np.stack([self.data.y_train[i] for i in idx])
        return _global(xs, self.replicated), _global(ys, self.replicated)

    def train_step(self, step: int) -> jax.Array:
        xs, ys = self._batches(step)
        self.state, self.rng, loss = self._step(
            self.state, self.rng, self.seed_index, xs, ys
        )
        return loss

    def evaluate(self, step: int) -> list[dict[str, float]]:
        metrics = nnx.merge(self.metrics_graphdef, self._gather(self.state[2]))
        train_metrics = {k: np.asarray(v) for k, v in metrics.compute().items()}
        self.state = self._reset(self.state)
        loss_sum = np.zeros(len(self.order))
        correct = np.zeros(len(self.order))
        for x, y, w in self.eval_batches:
            batch_loss, batch_correct = self._eval(self.state[0], x, y, w)
            loss_sum = loss_sum + np.asarray(batch_loss, np.float64)
            correct = correct + np.asarray(batch_correct, np.float64)
        lr = float(np.asarray(self.lr_fn(step - 1)))
        return [
            evaluation.evaluation_row(
                lr=lr,
                p=p,
                train_metrics={k: v[i] for k, v in train_metrics.items()},
                loss_sum=loss_sum[i],
                correct=correct[i],
                count=len(self.data.y_test),
            )
            for i, (p, _) in enumerate(self.runs)
        ]

    def items(self) -> dict[str, Any]:
        items = {name: self._gather(self.state[i]) for i, name in enumerate(_ITEMS)}
        return {**items, "rng": {"key": self._gather(self.rng)}}

    def restore(self, loaded: checkpointing.Loaded) -> None:
        flat = {}
        for i, name in enumerate(_ITEMS):
            target = jax.tree.map(lambda x: x[: self.count], self.state[i])
            tree = checkpointing.restore_into(
                loaded.items.get(name, {}), target, name=name
            )
            flat.update({f"{i}/{k}": v for k, v in checkpointing.flatten(tree).items()})
        target = {"key": self.rng[: self.count]}
        rng = checkpointing.restore_into(
            loaded.items.get("rng", {}), target, name="rng"
        )
        order = np.asarray(self.order)
        self.state = jax.tree_util.tree_map_with_path(
            lambda path, _: flat[checkpointing.key_string(path)][order], self.state
        )
        self.rng = np.asarray(rng["key"])[order]

    def postfix(self, step: int, loss: jax.Array) -> dict[str, str]:
        losses = np.asarray(self._gather(loss))
        return {
            "loss": f"{float(np.mean(losses)):.3f}",
            "lr": f"{float(np.asarray(self.lr_fn(step - 1))):.3g}",
            "runs": str(self.count),
        }


def _step_fields(config: Config) -> Config:
    # The config without the fields a population's step does not depend on (the
    # data, seeds and p values), so that the label-noise levels of a sweep share
    # one optimizer object, hence equal graphdefs and one compiled step.
    return dataclasses.replace(
        config,
        seed=0,
        p_value=0.0,
        label_noise=0.0,
        train_size=None,
        data_seed=0,
        resume=False,
        progress=False,
    )


@functools.lru_cache(maxsize=8)
def _optimizer(config: Config):
    return optimizers.create_optimizer(config, inject_p=True)


def _with_leaf(tree: Any, key: str, value: np.ndarray) -> Any:
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


class _PopulationKind:
    """A population, as :func:`.lifecycle.train` trains it (a
    :class:`~nsf_optax.experiments.runner.lifecycle.Kind`)."""

    config_file = "population.json"

    def __init__(
        self,
        config: Config,
        ps: list[float],
        seeds: list[int],
        map_batch_size: int,
    ):
        self.config, self.ps, self.seeds = config, ps, seeds
        self.map_batch_size = map_batch_size
        self.runs = [(float(p), s) for s in seeds for p in ps]  # as Population's

    def check(self) -> None:
        input_pipeline.check_source(self.config.dataset, self.config.data_dir)

    def describe(self) -> dict[str, Any]:
        return population_config(self.config, self.ps, self.seeds)

    def data_order(self) -> dict[str, Any]:
        return {"seeds": self.seeds}

    def build(self) -> Population:
        data = train.load_training_set(self.config)
        return Population(self.config, self.ps, self.seeds, data, self.map_batch_size)

    def pack(self, histories: list[train.History]) -> dict[str, Any]:
        return {"histories": histories}

    def unpack(self, meta: Mapping[str, Any]) -> list[train.History]:
        return [list(h) for h in meta["histories"]]

    def write_metrics(self, workdir: str, histories: list[train.History]) -> None:
        runs = [
            {"p": p, "seed": s, "history": h}
            for (p, s), h in zip(self.runs, histories, strict=True)
        ]
        workdirs.write_text(
            os.path.join(workdir, "histories.json"), json.dumps(runs, indent=1)
        )

    def label(self, runs: Population) -> str:
        return f"{runs.count} runs"

    def finish(
        self,
        runs: Population,
        histories: list[train.History],
        workdir: str,
        primary: bool,
    ) -> PopulationResult:
        model_state = jax.tree.map(np.asarray, runs.items()["model"])
        return PopulationResult(
            tuple(runs.runs), histories, runs.eval_graphdef, model_state
        )


def train_population(
    config: Config,
    ps: Sequence[float],
    seeds: Sequence[int],
    workdir: str | os.PathLike,
    *,
    map_batch_size: int | None = None,
    max_steps_this_run: int | None = None,
) -> PopulationResult:
    """Trains the runs ``(p, seed)`` for every seed and p as one program.

    The checks of :func:`.train.train_and_evaluate` come first (workdir, data
    source, the workdir's lock, with ``config.resume`` the checkpoint, its config,
    p values and seeds included); then the population trains, evaluates every
    ``config.eval_every_steps`` and checkpoints into ``<workdir>/checkpoints``
    (the life of one run, :func:`.lifecycle.train`). Only host 0 writes
    ``population.json`` (the config, p values and seeds) and ``histories.json``
    (one history per run).

    Args:
      config: the shared configuration: optimizer ``nsf`` with the ``constant``
        p schedule (its ``p_value`` and ``seed`` are not used).
      ps: the exponents, finite and distinct.
      seeds: the seeds, distinct integers in ``[0, 2**32)``.
      workdir: the population's directory.
      map_batch_size: runs stepped at once on each device: 1 one compiled
        single-run call per run, ``b > 1`` ``b`` vmapped at a time in one program,
        0 one vmap over all; None: :func:`default_map_batch_size`.
      max_steps_this_run: stop after this many steps (a checkpoint is written);
        continue later with ``config.resume``.

    Returns:
      A :class:`PopulationResult`.

    Raises:
      UsageError: as :func:`.train.train_and_evaluate`, and ``ConfigError`` for
        an optimizer other than nsf with a constant p, or bad p values or seeds.
    """
    if not isinstance(config, Config):
        raise TypeError(f"config must be a Config, got {type(config).__name__}.")
    ps, seeds = list(ps), list(seeds)
    _check_values(ps, seeds)
    optimizers.create_optimizer(config, inject_p=True)  # refuses other optimizers
    lifecycle.check_max_steps(max_steps_this_run)
    if map_batch_size is None:
        map_batch_size = default_map_batch_size()
    if isinstance(map_batch_size, bool) or map_batch_size < 0:
        raise ValueError(f"map_batch_size must be >= 0, got {map_batch_size!r}.")
    return lifecycle.train(
        _PopulationKind(config, ps, seeds, map_batch_size),
        workdir,
        max_steps_this_run=max_steps_this_run,
    )
