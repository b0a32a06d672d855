"""A population of runs that differ only in seed and traced hyperparameters,
trained as one program.

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
(tested). :meth:`Population.of_trials` generalises this to any optimizer: runs of
configurations that differ in ``learning_rate``, ``seed`` and (nsf with a
constant p) ``p_value``, the peak learning rate traced too
(:mod:`.population_configs`); :func:`.tuning.trials.run_trials` trains its
trials that way.

**Execution.** ``jax.shard_map`` over a one-axis mesh ``"pop"`` of all devices
(those of every process) splits the runs into contiguous blocks, one per device
(the population is padded with copies of run 0 to a multiple of the device
count; the copies are dropped from every output). ``map_batch_size`` says how
each device steps its runs. ``1``: one run at a time, each step of a run one call
of a compiled single-run program (one compilation for all runs): on one device
each run's state is its own pytree (:class:`.population_programs.SeparateRuns`),
so a run's step costs a single run's; on several devices the program's run index
is traced and the run's slice of the stacked, donated state is updated in place.
``b > 1``: ``jax.lax.map`` over the runs inside one compiled step, ``b`` runs
vmapped at a time; ``0`` (or the block size) one ``vmap`` over all of them.
:func:`default_map_batch_size` picks per backend from
``benchmarks/bench_population.py``: 1 on CPU, where XLA batches convolutions over
different weights poorly and runs them slowly inside a loop body, and all runs on
GPU/TPU, the usual way to fill an accelerator (not measured here: no GPU was
available). Batches and the test set are replicated; every process computes the
same batches.

**Checkpoints.** The named pytrees of :func:`.train.train_and_evaluate`
(``model``, ``optimizer``, ``train_metrics``, ``rng``) with a leading run axis,
through :class:`.checkpointing.Checkpoints`; the p values and seeds are part of
the config a resume must match (separate runs are stacked to write and
unstacked after a restore). A resumed population continues bit for bit.
"""

from __future__ import annotations

import dataclasses
import json
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
    population_programs,
    train,
)
from nsf_optax.experiments.resnet.configs.default import Config
from nsf_optax.experiments.resnet.grouping import group_key, injects_p
from nsf_optax.experiments.resnet.population_configs import (
    LR_LEAF,
    P_LEAF,
    check_values,
    optimizer,
    p_of,
    population_config,
    put_global,
    restore_stacked,
    split_models,
    step_fields,
    with_leaf,
)
from nsf_optax.experiments.resnet.population_programs import AXIS
from nsf_optax.experiments.runner import checkpointing, lifecycle, workdirs

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
        """Run ``index``'s trained model, in eval mode.

        Its parameters are the ones the optimizer trained, as the single run's
        model is; for schedule-free AdamW that is the sequence ``y`` the
        gradients were taken at, while the evaluations in ``histories`` used
        the average ``x`` (:func:`.optimizers.evaluation_params`, which needs the
        optimizer state this result does not keep).
        """
        state = jax.tree.map(lambda x: x[index], self.model_state)
        model = nnx.merge(self.graphdef, state)
        model.eval()
        return model


class Population:
    """Runs of one configuration that differ in seed and hyperparameters, as
    :func:`.lifecycle.train` drives them.

    Built on the host (states stacked along a leading run axis); :meth:`place`
    puts them on the devices; :meth:`train_step` then steps every run on the
    batches of one step. The constructor makes the runs ``(p, seed)`` of
    :func:`train_population`; :meth:`of_trials` the runs of any list of
    configurations that differ only in ``learning_rate``, ``seed`` and (nsf with
    a constant p) ``p_value``. The class is public for benchmarks and tests.

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
        trials = [
            dataclasses.replace(config, seed=s, p_value=p) for s in seeds for p in ps
        ]
        self._setup(config, trials, data, map_batch_size, inject_learning_rate=False)
        self.runs = [(float(p), s) for s in seeds for p in ps]

    @classmethod
    def of_trials(
        cls,
        configs: Sequence[Config],
        data: input_pipeline.Dataset,
        map_batch_size: int,
    ) -> Population:
        """The runs of ``configs``, each with its own traced peak learning rate
        (and p, for nsf with a constant p); see :func:`.grouping.group_key`.

        Args:
          configs: at least one, all with the same
            :func:`.grouping.group_key`.
          data: the training set they share.
          map_batch_size: as the constructor's.

        Returns:
          The population, run ``k`` the single run of ``configs[k]``.
        """
        if len({group_key(c) for c in configs}) != 1:
            raise ValueError("The configs differ in more than lr, seed and p.")
        population = cls.__new__(cls)
        population._setup(
            configs[0], list(configs), data, map_batch_size, inject_learning_rate=True
        )
        return population

    def _setup(
        self,
        config: Config,
        trials: list[Config],
        data: input_pipeline.Dataset,
        map_batch_size: int,
        inject_learning_rate: bool,
    ) -> None:
        self.config, self.data, self.trials = config, data, trials
        self.seeds = list(dict.fromkeys(c.seed for c in trials))
        self.runs = [(p_of(c), c.seed) for c in trials]
        self.count = len(trials)
        self.steps_per_epoch = input_pipeline.steps_per_epoch(
            len(data.y_train), config.batch_size
        )
        self.mesh = Mesh(np.asarray(jax.devices()), (AXIS,))
        self.sharded = NamedSharding(self.mesh, P(AXIS))
        self.replicated = NamedSharding(self.mesh, P())
        padded = -(-self.count // self.mesh.size) * self.mesh.size
        self.order = list(range(self.count)) + [0] * (padded - self.count)
        step_config = step_fields(config, inject_learning_rate)
        tx = optimizer(step_config, injects_p(config), inject_learning_rate)
        graphdefs, per_seed = split_models(config, data, tx, self.seeds)
        self.graphdef, self.eval_graphdef, self.metrics_graphdef = graphdefs
        self.state: Any = self._stacked_state(per_seed, inject_learning_rate)
        self.rng = np.stack(
            [
                jax.random.key_data(jax.random.fold_in(jax.random.key(s), 1))
                for s in (trials[k].seed for k in self.order)
            ]
        )
        self.seed_index = np.asarray(
            [self.seeds.index(trials[k].seed) for k in self.order], np.int32
        )
        self.schedules = [
            (
                optimizers.create_learning_rate_schedule(c),
                optimizers.create_p_schedule(c),
            )
            for c in trials
        ]
        self._programs(step_config, map_batch_size)

    def _stacked_state(
        self, per_seed: dict[int, nnx.State], inject_learning_rate: bool
    ) -> Any:
        # The runs' states stacked in self.order, their hyperparameters set.
        trials = [self.trials[k] for k in self.order]
        state = jax.tree.map(
            lambda *xs: np.stack(xs), *[per_seed[c.seed] for c in trials]
        )
        if injects_p(self.config):
            p = [c.p_params["p_value"] for c in trials]
            state = with_leaf(state, P_LEAF, np.asarray(p, np.float32))
        if inject_learning_rate:
            lr = [c.peak_learning_rate for c in trials]
            state = with_leaf(state, LR_LEAF, np.asarray(lr, np.float32))
        return state

    def _programs(self, step_config: Config, map_batch_size: int) -> None:
        # The compiled programs: separate runs on one device with
        # map_batch_size 1, else the stacked runs' programs.
        local = len(self.order) // self.mesh.size
        self.map_batch_size = local if map_batch_size in (0, None) else map_batch_size
        self.separate: population_programs.SeparateRuns | None = None
        self.one_by_one = self.map_batch_size == 1 and self.mesh.size == 1
        if self.one_by_one:
            self.programs = population_programs.run_programs(step_config, self.graphdef)
            self._step, self._eval = self.programs.step, self.programs.evaluate
            return
        # Populations of the same shape (e.g. the label-noise levels of a sweep)
        # share these compiled functions.
        self._step, self._eval, self._gather, self._reset = (
            population_programs.programs(
                step_config,
                self.graphdef,
                self.mesh,
                self.count,
                local,
                self.map_batch_size,
            )
        )

    # The Runs protocol ----------------------------------------------------------

    def place(self) -> None:
        """Puts the runs on the devices and the test set (replicated)."""
        if self.one_by_one:
            self.separate = population_programs.SeparateRuns(
                self.programs, self.state, self.rng, self.count
            )
            self.state = None  # the runs' state lives in self.separate from here
            self.eval_batches = [
                tuple(jax.device_put(a) for a in batch)
                for batch in evaluation.eval_batches(
                    self.data, self.config.eval_batch_size
                )
            ]
            return
        self.state = put_global(self.state, self.sharded)
        self.rng = put_global(self.rng, self.sharded)
        self.seed_index = put_global(self.seed_index, self.sharded)
        self.eval_batches = [
            put_global(batch, self.replicated)
            for batch in evaluation.eval_batches(self.data, self.config.eval_batch_size)
        ]

    def _host_batches(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        size = self.config.batch_size
        idx = [
            input_pipeline.batch_indices(s, step, len(self.data.y_train), size)
            for s in self.seeds
        ]
        xs = np.stack([self.data.x_train[i] for i in idx])
        ys = np.stack([self.data.y_train[i] for i in idx])
        return xs, ys

    def _batches(self, step: int) -> tuple[jax.Array, jax.Array]:
        xs, ys = self._host_batches(step)
        return put_global(xs, self.replicated), put_global(ys, self.replicated)

    def train_step(self, step: int) -> jax.Array:
        if self.separate is not None:  # one batch per seed, built once
            xs, ys = self._host_batches(step)
            batches = [
                (jax.device_put(x), jax.device_put(y))
                for x, y in zip(xs, ys, strict=True)
            ]
            return self.separate.step(batches, self.seed_index)
        xs, ys = self._batches(step)
        self.state, self.rng, loss = self._step(
            self.state, self.rng, self.seed_index, xs, ys
        )
        return loss

    def _train_metrics(self) -> dict[str, np.ndarray]:
        # Every run's running metrics (a leading run axis), then reset.
        if self.separate is not None:
            rows = [
                nnx.merge(self.metrics_graphdef, m).compute()
                for m in self.separate.take_metrics()
            ]
            return {k: np.asarray([r[k] for r in rows]) for k in rows[0]}
        metrics = nnx.merge(self.metrics_graphdef, self._gather(self.state[2]))
        self.state = self._reset(self.state)
        return {k: np.asarray(v) for k, v in metrics.compute().items()}

    def _test_sums(self) -> tuple[np.ndarray, np.ndarray]:
        if self.separate is not None:
            return self.separate.evaluate(self.eval_batches)
        loss_sum = np.zeros(len(self.order))
        correct = np.zeros(len(self.order))
        for x, y, w in self.eval_batches:
            batch_loss, batch_correct = self._eval(self.state, x, y, w)
            loss_sum = loss_sum + np.asarray(batch_loss, np.float64)
            correct = correct + np.asarray(batch_correct, np.float64)
        return loss_sum, correct

    def evaluate(self, step: int) -> list[dict[str, float]]:
        train_metrics = self._train_metrics()
        loss_sum, correct = self._test_sums()
        return [
            evaluation.evaluation_row(
                lr=float(np.asarray(lr_fn(step - 1))),
                p=float(np.asarray(p_fn(step - 1))),
                train_metrics={k: v[i] for k, v in train_metrics.items()},
                loss_sum=loss_sum[i],
                correct=correct[i],
                count=len(self.data.y_test),
            )
            for i, (lr_fn, p_fn) in enumerate(self.schedules)
        ]

    def items(self) -> dict[str, Any]:
        if self.separate is not None:
            state, rng = self.separate.stacked()
            items = {name: state[i] for i, name in enumerate(_ITEMS)}
            return {**items, "rng": {"key": rng}}
        items = {name: self._gather(self.state[i]) for i, name in enumerate(_ITEMS)}
        return {**items, "rng": {"key": self._gather(self.rng)}}

    def restore(self, loaded: checkpointing.Loaded) -> None:
        self.state, self.rng = restore_stacked(
            loaded, self.state, self.rng, self.order, _ITEMS
        )

    def postfix(self, step: int, loss: jax.Array) -> dict[str, str]:
        losses = np.asarray(loss if self.separate is not None else self._gather(loss))
        lrs = [float(np.asarray(lr_fn(step - 1))) for lr_fn, _ in self.schedules]
        return {
            "loss": f"{float(np.mean(losses)):.3f}",
            "lr": f"{min(lrs):.3g}"
            + (f"..{max(lrs):.3g}" if max(lrs) > min(lrs) else ""),
            "runs": str(self.count),
        }


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
    check_values(ps, seeds)
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
