"""Training and evaluation: ``train_and_evaluate(config, workdir)``.

One run trains a ResNet (:mod:`.models`) on an offline dataset (:mod:`.input_pipeline`)
with an optimizer chosen by name, every one chained with the same optax learning-rate
schedule and weight decay (:func:`create_optimizer`). It writes to ``workdir``:

* ``metrics.csv`` / ``metrics.json``: one row per evaluation (step, lr, p, running
  train loss/accuracy from an ``nnx.MultiMetric``, test loss/accuracy); ``p`` is
  NaN (null in the JSON) for an optimizer without an exponent (lion,
  schedule-free-adamw), and the evaluation uses
  :func:`.optimizers.evaluation_params` (schedule-free AdamW's average);
* ``curves.png`` (train/test loss and accuracy) and ``schedules.png`` (lr and p);
* ``config.json`` and ``checkpoints/<step>/``: verified orbax checkpoints of the
  named pytrees ``model``, ``optimizer``, ``train_metrics`` and ``rng`` plus a JSON
  ``meta`` (config, step, data-order position, history); see :mod:`.checkpointing`.

One run per workdir: the run holds ``<workdir>/.lock`` (:mod:`.workdirs`) from its
checks to its end. The step itself is :func:`train_step` (and the test batch
:func:`.evaluation.eval_step`), plain NNX code that ``nnx.jit`` wraps here and that
a population of runs (:mod:`.population`) maps over its runs; both live the same
life, :func:`.lifecycle.train` (the cadence as :mod:`.hooks`).

Data parallel: the global batch is sharded over a one-axis ``Mesh`` of all devices
(``"data"``) while parameters and optimizer state are replicated; ``jax.jit`` inserts
the gradient all-reduce. On several hosts, call ``jax.distributed.initialize()``
before :func:`train_and_evaluate`: every host computes the same global batch order,
feeds its own slice through ``jax.make_array_from_process_local_data``, and the code
path is otherwise the same (only host 0 locks the workdir and writes metrics,
plots and digests).

Resume: with ``config.resume`` the newest verified checkpoint is read, checked
against its digest and for finiteness, and restored (model, optimizer state with its
schedule counts, running metrics, PRNG key, step, history); the data order is a pure
function of ``(seed, step)``, so the resumed run continues exactly where the
interrupted one stopped, bit for bit on CPU.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import io
import json
import os
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from nsf_optax.experiments.resnet import (
    evaluation,
    input_pipeline,
    models,
    plots,
)
from nsf_optax.experiments.resnet.configs.default import Config
from nsf_optax.experiments.resnet.optimizers import (
    create_learning_rate_schedule,
    create_optimizer,
    create_p_schedule,
)
from nsf_optax.experiments.runner import (
    checkpointing,
    lifecycle,
    preflight,
    summary,
    workdirs,
)
from nsf_optax.experiments.runner.errors import ConfigError

History = list[dict[str, float]]
HISTORY_FIELDS = (
    "step",
    "epoch",
    "lr",
    "p",
    "train_loss",
    "train_accuracy",
    "test_loss",
    "test_accuracy",
    "elapsed_s",
)


class TrainResult(NamedTuple):
    """What :func:`train_and_evaluate` returns."""

    model: models.ResNet  # the trained model (eval mode)
    optimizer: nnx.Optimizer  # its optimizer, state included
    history: list[dict[str, float]]  # one row per evaluation, HISTORY_FIELDS keys


def create_metrics() -> nnx.MultiMetric:
    """The running training metrics: mean loss and accuracy since the last reset."""
    return nnx.MultiMetric(
        loss=nnx.metrics.Average("loss"), accuracy=nnx.metrics.Accuracy()
    )


def train_step(
    model: models.ResNet,
    optimizer: nnx.Optimizer,
    metrics: nnx.MultiMetric,
    x: jax.Array,
    y: jax.Array,
    rng: jax.Array,
    *,
    crop_padding: int,
    flip: bool,
) -> tuple[jax.Array, jax.Array]:
    """One training step, updating ``model``, ``optimizer`` and ``metrics`` in place.

    Augments the batch with a fresh split of ``rng``, computes the mean
    cross-entropy and its gradient, applies the optimizer and adds the batch to the
    running metrics. Not jitted: wrap it in ``nnx.jit`` (:func:`make_train_step`),
    or ``nnx.vmap`` it over a population of models and optimizers first.

    Args:
      model: the network, in training mode.
      optimizer: its ``nnx.Optimizer``.
      metrics: from :func:`create_metrics`.
      x: the batch ``[B, *spatial, C]``.
      y: its integer labels ``[B]``.
      rng: the augmentation key of this step.
      crop_padding: see :func:`.input_pipeline.augment`.
      flip: see :func:`.input_pipeline.augment`.

    Returns:
      ``(loss, rng)``: the batch loss and the key for the next step.
    """
    rng, aug_key = jax.random.split(rng)
    x = input_pipeline.augment(aug_key, x, crop_padding=crop_padding, flip=flip)

    def loss_fn(model):
        logits = model(x)
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
        return loss, logits

    (loss, logits), grads = nnx.value_and_grad(loss_fn, has_aux=True)(model)
    optimizer.update(model, grads)
    metrics.update(loss=loss, logits=logits, labels=y)
    return loss, rng


def make_train_step(config: Config) -> Callable[..., tuple[jax.Array, jax.Array]]:
    """:func:`train_step` with the config's augmentation, under ``nnx.jit``."""
    return nnx.jit(
        functools.partial(
            train_step, crop_padding=config.crop_padding, flip=config.flip
        )
    )


class _Sharder:
    """Turns this host's slice of a global batch into a batch-sharded jax.Array."""

    def __init__(self):
        self.mesh = Mesh(np.asarray(jax.devices()), ("data",))
        self.batch = NamedSharding(self.mesh, P("data"))
        self.replicated = NamedSharding(self.mesh, P())

    def shard(self, global_batch: np.ndarray) -> jax.Array:
        local = global_batch[input_pipeline.process_slice(len(global_batch))]
        return jax.make_array_from_process_local_data(
            self.batch, local, global_batch.shape
        )


def _static(config: Config) -> Config:
    # The fields the compiled step depends on; runs that differ only in the seed (or
    # bookkeeping) share one optimizer object and one compiled step.
    return dataclasses.replace(config, seed=0, resume=False, progress=False)


# Caches keyed on the (hashable, frozen) config: see _static.
_cached_optimizer = functools.lru_cache(maxsize=16)(create_optimizer)
_cached_train_step = functools.lru_cache(maxsize=16)(make_train_step)


def _check_devices(config: Config, devices: int) -> None:
    for name in ("batch_size", "eval_batch_size"):
        if getattr(config, name) % devices:
            raise ConfigError(
                f"{name} ({getattr(config, name)}) must be a multiple of the "
                f"{devices} devices.",
                (name,),
            )


def load_training_set(config: Config) -> input_pipeline.Dataset:
    """The dataset a run trains on: its subset, label noise and held-out part
    applied (see :func:`.input_pipeline.training_set`; with ``val_fraction`` > 0
    its test arrays are the held-out examples), checked against the batch sizes.

    Raises:
      DataError: for data that cannot be read or a ``train_size`` above its size.
      ConfigError: for a batch larger than the training set, or a held-out part
        with no example (see :func:`.input_pipeline.check_split`).
    """
    full = input_pipeline.load_dataset(config.dataset, config.data_dir)
    data = input_pipeline.training_set(
        full,
        train_size=config.train_size,
        label_noise=config.label_noise,
        seed=config.data_seed,
        val_fraction=config.val_fraction,
    )
    input_pipeline.check_split(
        config.train_size or len(full.y_train), config.val_fraction, config.batch_size
    )
    return data


def config_dict(config: Config) -> dict[str, Any]:
    """The config as the JSON of ``config.json`` and of checkpoint metas (flat:
    each p-schedule parameter under its own name, as before ``p_params``)."""
    return config.asdict()


def _at(schedule: optax.Schedule, step: int) -> float:
    """A schedule's value at ``step`` as a Python float."""
    return float(np.asarray(schedule(step)))


def _write_metrics(workdir: str, history: list[dict[str, Any]]) -> None:
    workdirs.write_text(
        os.path.join(workdir, "metrics.json"),
        # Standard JSON: a NaN (the p of an optimizer without one) is null.
        json.dumps(summary.strict_json(history), indent=1, allow_nan=False),
    )
    table = io.StringIO()
    writer: csv.DictWriter[str] = csv.DictWriter(table, fieldnames=HISTORY_FIELDS)
    writer.writeheader()
    writer.writerows(history)
    workdirs.write_text(os.path.join(workdir, "metrics.csv"), table.getvalue())


def checkpoint_dir(workdir: str | os.PathLike) -> str:
    """``<workdir>/checkpoints`` as an absolute path."""
    return preflight.checkpoint_dir(workdir)


class _SingleRun:
    """One run as :func:`.lifecycle.train` drives it: data parallel over the
    devices (the batch sharded, parameters and optimizer state replicated)."""

    count = 1  # runs

    def __init__(self, config: Config, data: input_pipeline.Dataset):
        self.config = config
        self.data = data
        self.steps_per_epoch = input_pipeline.steps_per_epoch(
            len(data.y_train), config.batch_size
        )
        self.sharder = _Sharder()
        self.model = models.create_model(
            config.model,
            num_classes=data.num_classes,
            in_features=data.in_features,
            ndim=data.ndim,
            seed=config.seed,
            num_filters=config.num_filters,
        )
        self.optimizer = nnx.Optimizer(
            self.model, _cached_optimizer(_static(config)), wrt=nnx.Param
        )
        self.metrics = create_metrics()
        # Parameters come from key(seed); augmentation gets an independent stream.
        self.rng = jax.random.fold_in(jax.random.key(config.seed), 1)
        self.step_fn = _cached_train_step(_static(config))
        self.lr_fn = create_learning_rate_schedule(config)
        self.p_fn = create_p_schedule(config)
        self.eval_batches: list[tuple[jax.Array, ...]] = []

    def items(self) -> dict[str, Any]:
        return {
            "model": nnx.state(self.model),
            "optimizer": nnx.state(self.optimizer),
            "train_metrics": nnx.state(self.metrics),
            "rng": {"key": jax.random.key_data(self.rng)},
        }

    def restore(self, loaded: checkpointing.Loaded) -> None:
        restored = {
            name: checkpointing.restore_into(
                loaded.items.get(name, {}), tree, name=name
            )
            for name, tree in self.items().items()
        }
        nnx.update(self.model, restored["model"])
        nnx.update(self.optimizer, restored["optimizer"])
        nnx.update(self.metrics, restored["train_metrics"])
        self.rng = jax.random.wrap_key_data(restored["rng"]["key"])

    def place(self) -> None:
        """Replicates the state over the mesh, shards the test set, and puts the
        model in training mode."""
        parts = (self.model, self.optimizer, self.metrics)
        nnx.update(parts, jax.device_put(nnx.state(parts), self.sharder.replicated))
        # A key array: placed as its key data (a multi-process device_put takes
        # plain arrays only).
        key_data = jax.device_put(
            jax.random.key_data(self.rng), self.sharder.replicated
        )
        self.rng = jax.random.wrap_key_data(key_data)
        self.eval_batches = [
            tuple(self.sharder.shard(a) for a in batch)
            for batch in evaluation.eval_batches(self.data, self.config.eval_batch_size)
        ]
        self.model.train()

    def train_step(self, step: int) -> jax.Array:
        idx = input_pipeline.batch_indices(
            self.config.seed, step, len(self.data.y_train), self.config.batch_size
        )
        x = self.sharder.shard(self.data.x_train[idx])
        y = self.sharder.shard(self.data.y_train[idx])
        loss, self.rng = self.step_fn(
            self.model, self.optimizer, self.metrics, x, y, self.rng
        )
        return loss

    def evaluate(self, step: int) -> list[dict[str, float]]:
        train = self.metrics.compute()
        self.metrics.reset()
        nnx.update(
            self.metrics,
            jax.device_put(nnx.state(self.metrics), self.sharder.replicated),
        )
        evaluated = evaluation.evaluated_params(self.config, self.model, self.optimizer)
        # A snapshot of the trained values (nnx.state holds the model's own
        # variables), put back after the evaluation.
        trained = nnx.to_pure_dict(nnx.state(self.model, nnx.Param))
        if evaluated is not None:
            evaluation.set_params(self.model, evaluated)
        loss_sum, correct = evaluation.sum_test_batches(self.model, self.eval_batches)
        if evaluated is not None:
            evaluation.set_params(self.model, trained)
        row = evaluation.evaluation_row(
            lr=_at(self.lr_fn, step - 1),
            p=_at(self.p_fn, step - 1),
            train_metrics=train,
            loss_sum=loss_sum,
            correct=correct,
            count=len(self.data.y_test),
        )
        return [row]

    def postfix(self, step: int, loss: jax.Array) -> dict[str, str]:
        return {
            "loss": f"{float(loss):.3f}",
            "lr": f"{_at(self.lr_fn, step - 1):.3g}",
            "p": f"{_at(self.p_fn, step - 1):+.3f}",
        }


class _SingleKind:
    """One run, as :func:`.lifecycle.train` trains it (a
    :class:`~nsf_optax.experiments.runner.lifecycle.Kind`)."""

    config_file = "config.json"

    def __init__(self, config: Config):
        self.config = config

    def check(self) -> None:
        input_pipeline.check_source(self.config.dataset, self.config.data_dir)
        _check_devices(self.config, jax.device_count())

    def describe(self) -> dict[str, Any]:
        return config_dict(self.config)

    def data_order(self) -> dict[str, Any]:
        return {"seed": self.config.seed}

    def build(self) -> _SingleRun:
        return _SingleRun(self.config, load_training_set(self.config))

    def pack(self, histories: list[History]) -> dict[str, Any]:
        return {"history": histories[0]}

    def unpack(self, meta: Mapping[str, Any]) -> list[History]:
        return [list(meta.get("history", []))]

    def write_metrics(self, workdir: str, histories: list[History]) -> None:
        _write_metrics(workdir, histories[0])

    def label(self, runs: _SingleRun) -> str:
        return self.config.method

    def finish(
        self, runs: _SingleRun, histories: list[History], workdir: str, primary: bool
    ) -> TrainResult:
        (history,) = histories
        config = self.config
        if primary and history:
            steps = np.arange(config.num_steps)
            plots.plot_run(
                history,
                workdir,
                title=f"{config.method} on {config.dataset}",
                schedules=(
                    steps,
                    np.asarray(jax.vmap(runs.lr_fn)(steps)),
                    np.asarray(jax.vmap(runs.p_fn)(steps)),
                ),
            )
        runs.model.eval()
        return TrainResult(runs.model, runs.optimizer, history)


def train_and_evaluate(
    config: Config,
    workdir: str | os.PathLike,
    *,
    max_steps_this_run: int | None = None,
    resume_step: int | None = None,
) -> TrainResult:
    """Trains and evaluates one configuration, checkpointing into ``workdir``.

    Everything that can be checked is checked before anything is written and
    before the data loads: the workdir (see :func:`.workdirs.check`), the data
    source, the workdir's lock (one run per workdir), and with ``config.resume``
    the checkpoint (its digest, its finiteness, its config). A refused run leaves
    the workdir as it was. The life of the run is :func:`.lifecycle.train`.

    Args:
      config: the run configuration (see :class:`~.configs.default.Config`).
      workdir: directory for metrics, plots, config and checkpoints.
      max_steps_this_run: stop after this many steps of this call (a checkpoint is
        written), e.g. to fit a job's time limit; resume later with
        ``config.resume``. None trains to ``config.num_steps``.
      resume_step: with ``config.resume``, continue from this verified checkpoint
        instead of the newest (e.g. when the newest fails verification); the newer
        step directories are moved to ``<workdir>/checkpoints_set_aside/``.

    Returns:
      A :class:`TrainResult` with the model, the optimizer and the metric history.

    Raises:
      UsageError: (:mod:`~nsf_optax.experiments.runner.errors`) for a workdir that
        is a file or cannot be written (``WorkdirError``), is in use by another run
        (``WorkdirLockedError``), missing or malformed data (``DataError``), a
        batch size the devices or data do not allow (``ConfigError``), a workdir
        that holds checkpoints without ``config.resume`` or a missing, corrupt,
        non-finite or other-config checkpoint with it (``CheckpointError``).
    """
    if not isinstance(config, Config):
        raise TypeError(f"config must be a Config, got {type(config).__name__}.")
    if resume_step is not None and not config.resume:
        raise ValueError("resume_step needs config.resume=True.")
    return lifecycle.train(
        _SingleKind(config),
        workdir,
        max_steps_this_run=max_steps_this_run,
        resume_step=resume_step,
    )
