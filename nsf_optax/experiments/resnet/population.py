"""A population of runs that differ only in p and seed, trained as one program.

:func:`train_population` trains ``len(seeds) x len(ps)`` runs of one
:class:`~.configs.default.Config` (optimizer ``nsf``, constant p) together. Each
run carries its own parameters, optimizer state, running metrics, PRNG key and
exponent p: the optimizer is :func:`.train.create_optimizer` with ``inject_p``, so
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
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

try:  # public since jax 0.6.1
    from jax import shard_map
except ImportError:  # pragma: no cover
    from jax.experimental.shard_map import shard_map

from nsf_optax.experiments.resnet import input_pipeline, models, train
from nsf_optax.experiments.resnet.configs.default import Config
from nsf_optax.experiments.runner import checkpointing, lifecycle, workdirs
from nsf_optax.experiments.runner.errors import ConfigError

AXIS = "pop"
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
        tx = _optimizer(_step_fields(config))
        per_seed, model = {}, None
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
            self.graphdef, per_seed[seed] = nnx.split((*parts, train.create_metrics()))
        assert model is not None  # seeds is not empty
        model.eval()
        self.eval_graphdef = nnx.graphdef(model)
        self.metrics_graphdef = nnx.graphdef(train.create_metrics())
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
        self.lr_fn = train.create_learning_rate_schedule(config)
        local = len(self.order) // self.mesh.size
        self.map_batch_size = local if map_batch_size in (0, None) else map_batch_size
        # Populations of the same shape (e.g. the label-noise levels of a sweep)
        # share these compiled functions.
        self._step, self._eval, self._gather, self._reset = _programs(
            config.crop_padding,
            config.flip,
            self.graphdef,
            self.eval_graphdef,
            self.mesh,
            self.count,
            local,
            self.map_batch_size,
        )

    # The Runs protocol ----------------------------------------------------------

    def place(self) -> None:
        """Puts the runs on the mesh (sharded) and the test set (replicated)."""
        self.state = _global(self.state, self.sharded)
        self.rng = _global(self.rng, self.sharded)
        self.seed_index = _global(self.seed_index, self.sharded)
        self.eval_batches = [
            _global(batch, self.replicated)
            for batch in train.eval_batches(self.data, self.config.eval_batch_size)
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
            train.evaluation_row(
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
    return train.create_optimizer(config, inject_p=True)


@functools.lru_cache(maxsize=8)
def _programs(
    crop_padding: int,
    flip: bool,
    graphdef: nnx.GraphDef,
    eval_graphdef: nnx.GraphDef,
    mesh: Mesh,
    count: int,
    local: int,
    map_batch_size: int,
):
    """The step, evaluation, gather and metrics reset of a population.

    The step and the evaluation are jitted programs, or with ``map_batch_size`` 1
    a :class:`_RunLoop` and an :class:`_EvalLoop` of single-run programs; ``local``
    is the number of runs on each device.
    """
    step_one = functools.partial(train.train_step, crop_padding=crop_padding, flip=flip)

    def each(fn, xs):
        # b runs vmapped at a time (b = 1: a loop over the device's runs).
        return jax.lax.map(fn, xs, batch_size=map_batch_size)

    def local_step(state, rng, seed_index, xs, ys):
        def one(args):
            run_state, key, i = args
            model, optimizer, metrics = nnx.merge(graphdef, run_state)
            key = jax.random.wrap_key_data(key)
            loss, key = step_one(model, optimizer, metrics, xs[i], ys[i], key)
            new = nnx.state((model, optimizer, metrics))
            return new, jax.random.key_data(key), loss

        return each(one, (state, rng, seed_index))

    def local_eval(model_state, x, y, w):
        def one(run_state):
            return train.eval_step(nnx.merge(eval_graphdef, run_state), x, y, w)

        return each(one, model_state)

    def local_run_step(state, rng, seed_index, xs, ys, losses, k):
        # Run k of this device's block, stepped and written back in place.
        def at(x):
            return jax.lax.dynamic_index_in_dim(x, k, keepdims=False)

        def put(buffer, value):
            return jax.lax.dynamic_update_index_in_dim(buffer, value, k, 0)

        model, optimizer, metrics = nnx.merge(graphdef, jax.tree.map(at, state))
        i = at(seed_index)
        loss, key = step_one(
            model, optimizer, metrics, xs[i], ys[i], jax.random.wrap_key_data(at(rng))
        )
        new = nnx.state((model, optimizer, metrics))
        return (
            jax.tree.map(put, state, new),
            put(rng, jax.random.key_data(key)),
            put(losses, loss),
        )

    pop, rep = P(AXIS), P()
    replicated = NamedSharding(mesh, rep)
    if map_batch_size == 1:
        step = _RunLoop(
            jax.jit(
                shard_map(
                    local_run_step,
                    mesh=mesh,
                    in_specs=(pop, pop, pop, rep, rep, pop, rep),
                    out_specs=(pop, pop, pop),
                ),
                donate_argnums=(0, 1, 5),
            ),
            jax.jit(
                lambda: jnp.zeros(local * mesh.size, jnp.float32),
                out_shardings=NamedSharding(mesh, pop),
            ),
            local,
        )
    else:
        step = jax.jit(
            shard_map(
                local_step,
                mesh=mesh,
                in_specs=(pop, pop, pop, rep, rep),
                out_specs=(pop, pop, pop),
            ),
            donate_argnums=(0, 1),
        )
    if map_batch_size == 1:

        def local_eval_one(model_state, x, y, w, k):
            run_state = jax.tree.map(
                lambda a: jax.lax.dynamic_index_in_dim(a, k, keepdims=False),
                model_state,
            )
            loss, correct = train.eval_step(
                nnx.merge(eval_graphdef, run_state), x, y, w
            )
            return loss[None], correct[None]

        evaluate = _EvalLoop(
            jax.jit(
                shard_map(
                    local_eval_one,
                    mesh=mesh,
                    in_specs=(pop, rep, rep, rep, rep),
                    out_specs=(pop, pop),
                ),
                out_shardings=(replicated, replicated),
            ),
            local,
        )
    else:
        evaluate = jax.jit(
            shard_map(
                local_eval,
                mesh=mesh,
                in_specs=(pop, rep, rep, rep),
                out_specs=(pop, pop),
            ),
            out_shardings=(replicated, replicated),
        )

    def gather(tree):  # the real runs, replicated: readable on every host
        return jax.tree.map(lambda x: x[:count], tree)

    return (
        step,
        evaluate,
        jax.jit(gather, out_shardings=replicated),
        jax.jit(_zero_metrics, donate_argnums=0),
    )


class _RunLoop:
    """A population step as one compiled single-run program called per run.

    ``run_step(state, rng, seed_index, xs, ys, losses, k)`` steps run ``k`` of
    every device's block; calling this steps them all, with the signature of the
    one-program step.
    """

    def __init__(self, run_step, zeros, local: int):
        self.run_step, self.zeros, self.local = run_step, zeros, local

    def __call__(self, state, rng, seed_index, xs, ys):
        losses = self.zeros()
        for k in range(self.local):
            state, rng, losses = self.run_step(
                state, rng, seed_index, xs, ys, losses, np.int32(k)
            )
        return state, rng, losses

    def lower(self, state, rng, seed_index, xs, ys):
        """The single-run program, lowered (for its memory analysis)."""
        args = (state, rng, seed_index, xs, ys, self.zeros(), np.int32(0))
        return self.run_step.lower(*args)


class _EvalLoop:
    """A population's test batch as one compiled single-run program called per run.

    ``run_eval(model_state, x, y, w, k)`` evaluates run ``k`` of every device's
    block (one value per device); calling this evaluates them all and returns,
    as the one-program evaluation does, one value per run in the population's
    order (device-major blocks).
    """

    def __init__(self, run_eval, local: int):
        self.run_eval, self.local = run_eval, local

    def __call__(self, model_state, x, y, w):
        outs = [
            self.run_eval(model_state, x, y, w, np.int32(k)) for k in range(self.local)
        ]
        loss = np.stack([np.asarray(o[0]) for o in outs], axis=1).reshape(-1)
        correct = np.stack([np.asarray(o[1]) for o in outs], axis=1).reshape(-1)
        return loss, correct


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


def _zero_metrics(state: nnx.State) -> nnx.State:
    # Resets every run's running metrics (the third part of a run's state).
    def zero(path, leaf):
        return jnp.zeros_like(leaf) if path[0].key == 2 else leaf

    return jax.tree_util.tree_map_with_path(zero, state)


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
    train.create_optimizer(config, inject_p=True)  # refuses other optimizers
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
