"""Training and evaluation: ``train_and_evaluate(config, workdir)``.

One run trains a ResNet (:mod:`.models`) on an offline dataset (:mod:`.input_pipeline`)
with an optimizer chosen by name, every one chained with the same optax learning-rate
schedule and weight decay (:func:`create_optimizer`). It writes to ``workdir``:

* ``metrics.csv`` / ``metrics.json``: one row per evaluation (step, lr, p, running
  train loss/accuracy from an ``nnx.MultiMetric``, test loss/accuracy);
* ``curves.png`` (train/test loss and accuracy) and ``schedules.png`` (lr and p);
* ``config.json`` and ``checkpoints/<step>/``: verified orbax checkpoints of the
  named pytrees ``model``, ``optimizer``, ``train_metrics`` and ``rng`` plus a JSON
  ``meta`` (config, step, data-order position, history); see :mod:`.checkpointing`.

One run per workdir: the run holds ``<workdir>/.lock`` (:mod:`.workdirs`) from its
checks to its end. The step itself is :func:`train_step`, plain NNX code that
``nnx.jit`` wraps here and that a population of runs can ``nnx.vmap``.

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
import logging
import math
import os
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P
from tqdm.auto import tqdm

import nsf_optax
from nsf_optax import p_schedule
from nsf_optax.examples import checkpointing, input_pipeline, models, plots, workdirs
from nsf_optax.examples.configs.default import PADAM_P, Config
from nsf_optax.examples.errors import CheckpointError, ConfigError

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


def create_learning_rate_schedule(config: Config) -> optax.Schedule:
    """The learning-rate schedule shared by every optimizer.

    Args:
      config: uses ``lr_schedule``, ``peak_learning_rate``, ``warmup_steps`` and
        ``num_steps``.

    Returns:
      ``warmup_cosine``: linear warmup from 0 to the peak, cosine decay to 0 at
      ``num_steps``; ``piecewise``: the peak, divided by 10 at 50 % and again at 75 %
      of ``num_steps``.
    """
    peak = config.peak_learning_rate
    if config.lr_schedule == "warmup_cosine":
        return optax.warmup_cosine_decay_schedule(
            init_value=0.0,
            peak_value=peak,
            warmup_steps=config.warmup_steps,
            decay_steps=config.num_steps,
            end_value=0.0,
        )
    boundaries = {int(0.5 * config.num_steps): 0.1, int(0.75 * config.num_steps): 0.1}
    return optax.piecewise_constant_schedule(peak, boundaries)


def create_p_schedule(config: Config) -> optax.Schedule:
    """The exponent p(t) of the chosen optimizer (for nsf) or its fixed value.

    Args:
      config: uses ``optimizer``, ``p_schedule`` and the p fields.

    Returns:
      An :class:`optax.Schedule`: 0 for sgd, 1/2 for adam, 1/8 for padam; for nsf a
      ``nsf_optax.p_schedule`` built from the config. Pulse-tidal is
      ``pulse_tidal(pulse_value, pulse_steps, square_tidal(high, low, every))``.
    """
    if config.optimizer == "sgd":
        return p_schedule.constant(0.0)
    if config.optimizer == "adam":
        return p_schedule.constant(0.5)
    if config.optimizer == "padam":
        return p_schedule.constant(PADAM_P)
    if config.p_schedule == "constant":
        return p_schedule.constant(config.p_value)
    if config.p_schedule == "cosine_tidal":
        return p_schedule.cosine_tidal(
            config.p_min, config.p_max, config.p_period_steps
        )
    return p_schedule.pulse_tidal(
        config.pulse_value,
        config.pulse_steps,
        p_schedule.square_tidal(
            config.tidal_high_value, config.tidal_low_value, config.tidal_every_steps
        ),
    )


def decay_mask(params: Any) -> Any:
    """Weight decay on kernels only: leaves with more than one dimension."""
    return jax.tree.map(lambda x: x.ndim > 1, params)


def create_optimizer(config: Config) -> optax.GradientTransformation:
    """The optimizer named by ``config.optimizer``, with the shared LR schedule.

    * ``sgd``: ``add_decayed_weights`` then ``optax.sgd(lr, momentum)`` (torch-style
      coupled weight decay): the paper's p = 0 baseline.
    * ``nsf`` (flavour "sgd"): the same chain with ``nsf_optax.nsf_sgd`` and the p
      schedule: the paper's ResNet setting; bit for bit the baseline at p = 0.
    * ``adam``: ``optax.adamw``; ``padam``: ``nsf_optax.nsfw`` with p = 1/8;
      ``nsf`` (flavour "adam"): ``nsf_optax.nsfw`` with the p schedule. These take
      decoupled weight decay.

    Args:
      config: the run configuration.

    Returns:
      An optax gradient transformation.
    """
    lr = create_learning_rate_schedule(config)
    p = create_p_schedule(config)
    normalize = None if config.normalize == "none" else config.normalize
    wd = config.weight_decay
    b1, b2, eps = config.momentum, config.b2, config.eps
    if config.optimizer == "adam":
        return optax.adamw(lr, b1=b1, b2=b2, eps=eps, weight_decay=wd, mask=decay_mask)
    padam = config.optimizer == "padam"
    if padam or (config.optimizer == "nsf" and config.nsf_flavour == "adam"):
        return nsf_optax.nsfw(
            lr,
            b1=b1,
            b2=b2,
            eps=eps,
            p=PADAM_P if padam else p,
            weight_decay=wd,
            mask=decay_mask,
            normalize=None if padam else normalize,
        )
    if config.optimizer == "sgd":
        inner = optax.sgd(lr, momentum=b1)
    else:
        inner = nsf_optax.nsf_sgd(
            lr, momentum=b1, b2=b2, eps=eps, p=p, normalize=normalize
        )
    return optax.chain(optax.add_decayed_weights(wd, mask=decay_mask), inner)


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


@nnx.jit
def _eval_step(model, x, y, weight):
    logits = model(x)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, y)
    correct = jnp.argmax(logits, -1) == y
    return jnp.sum(loss * weight), jnp.sum(correct * weight)


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


def _eval_batches(data: input_pipeline.Dataset, batch_size: int, sharder: _Sharder):
    n = len(data.y_test)
    total = math.ceil(n / batch_size) * batch_size
    pad = total - n
    x = np.concatenate(
        [data.x_test, np.zeros((pad, *data.x_test.shape[1:]), np.float32)]
    )
    y = np.concatenate([data.y_test, np.zeros((pad,), np.int32)])
    w = np.concatenate([np.ones((n,), np.float32), np.zeros((pad,), np.float32)])
    return [
        tuple(sharder.shard(a[i : i + batch_size]) for a in (x, y, w))
        for i in range(0, total, batch_size)
    ]


def evaluate(
    model: models.ResNet, batches: list[tuple[jax.Array, ...]], count: int
) -> dict[str, float]:
    """Mean test loss and accuracy in eval mode.

    Args:
      model: the model (left in training mode afterwards).
      batches: ``(x, y, weight)`` global batches; padding has weight 0.
      count: the number of real (weight-1) examples.

    Returns:
      ``{"test_loss": ..., "test_accuracy": ...}``.
    """
    model.eval()
    loss_sum, correct = 0.0, 0.0
    for x, y, w in batches:
        # The sums are replicated scalars, readable on every host.
        batch_loss, batch_correct = _eval_step(model, x, y, w)
        loss_sum += float(batch_loss)
        correct += float(batch_correct)
    model.train()
    return {"test_loss": loss_sum / count, "test_accuracy": correct / count}


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


def _check_data(config: Config, data: input_pipeline.Dataset) -> None:
    if config.batch_size > len(data.y_train):
        raise ConfigError(
            f"batch_size ({config.batch_size}) exceeds the {len(data.y_train)} "
            "training examples.",
            ("batch_size",),
        )


def _config_dict(config: Config) -> dict[str, Any]:
    return dataclasses.asdict(config)


# Fields that may differ between an interrupted run and its resumption.
_RESUMABLE_CHANGES = ("resume", "progress", "data_dir")


def _check_same_config(config: Config, loaded: checkpointing.Loaded, where: str):
    saved = loaded.meta.get("config", {})
    changed = [
        k
        for k, v in _config_dict(config).items()
        if k not in _RESUMABLE_CHANGES and saved.get(k) != v
    ]
    if changed:
        raise CheckpointError(
            f"The checkpoint of step {loaded.step} in {where!r} was written with a "
            f"different config ({', '.join(f'{k}={saved.get(k)!r}' for k in changed)})"
            "; resume with the same settings."
        )


def _write_text(path: str, text: str) -> None:
    # Write, then rename: a killed run never leaves a half-written file.
    tmp = f"{path}.tmp"
    with open(tmp, "w", newline="") as f:
        f.write(text)
    os.replace(tmp, path)


def _at(schedule: optax.Schedule, step: int) -> float:
    """A schedule's value at ``step`` as a Python float."""
    return float(np.asarray(schedule(step)))


def _write_metrics(workdir: str, history: list[dict[str, Any]]) -> None:
    _write_text(os.path.join(workdir, "metrics.json"), json.dumps(history, indent=1))
    table = io.StringIO()
    writer: csv.DictWriter[str] = csv.DictWriter(table, fieldnames=HISTORY_FIELDS)
    writer.writeheader()
    writer.writerows(history)
    _write_text(os.path.join(workdir, "metrics.csv"), table.getvalue())


def checkpoint_dir(workdir: str | os.PathLike) -> str:
    """``<workdir>/checkpoints`` as an absolute path."""
    return os.path.abspath(os.path.join(os.fspath(workdir), "checkpoints"))


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
    the workdir as it was.

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
      UsageError: (:mod:`~nsf_optax.examples.errors`) for a workdir that is a file
        or cannot be written (``WorkdirError``), is in use by another run
        (``WorkdirLockedError``), missing or malformed data (``DataError``), a
        batch size the devices or data do not allow (``ConfigError``), a workdir
        that holds checkpoints without ``config.resume`` or a missing, corrupt,
        non-finite or other-config checkpoint with it (``CheckpointError``).
    """
    if not isinstance(config, Config):
        raise TypeError(f"config must be a Config, got {type(config).__name__}.")
    if max_steps_this_run is not None and max_steps_this_run <= 0:
        raise ValueError(
            f"max_steps_this_run must be positive, got {max_steps_this_run}."
        )
    if resume_step is not None and not config.resume:
        raise ValueError("resume_step needs config.resume=True.")
    workdir = os.fspath(workdir)
    workdirs.check(workdir)
    input_pipeline.check_source(config.dataset, config.data_dir)
    _check_devices(config, jax.device_count())
    primary = jax.process_index() == 0
    with workdirs.Lock(workdir, enabled=primary):
        return _train_locked(config, workdir, max_steps_this_run, resume_step, primary)


def _train_locked(
    config: Config,
    workdir: str,
    max_steps_this_run: int | None,
    resume_step: int | None,
    primary: bool,
) -> TrainResult:
    ckpts = checkpointing.Checkpoints(checkpoint_dir(workdir), primary=primary)
    loaded = None
    if config.resume:
        # A finished run may be reloaded whatever it holds: nothing trains on it.
        loaded = ckpts.find_resume(resume_step, nonfinite_from=config.num_steps)
        _check_same_config(config, loaded, workdir)
    elif ckpts.steps():
        raise CheckpointError(
            f"{ckpts.directory!r} already holds checkpoints; pass --resume to "
            "continue that run or choose another --workdir (nothing is overwritten)."
        )
    data = input_pipeline.training_set(
        input_pipeline.load_dataset(config.dataset, config.data_dir),
        train_size=config.train_size,
        label_noise=config.label_noise,
        seed=config.data_seed,
    )
    _check_data(config, data)
    sharder = _Sharder()

    model = models.create_model(
        config.model,
        num_classes=data.num_classes,
        in_features=data.in_features,
        ndim=data.ndim,
        seed=config.seed,
        num_filters=config.num_filters,
    )
    optimizer = nnx.Optimizer(model, _cached_optimizer(_static(config)), wrt=nnx.Param)
    metrics = create_metrics()
    # Parameters come from key(seed); augmentation gets an independent stream.
    rng = jax.random.fold_in(jax.random.key(config.seed), 1)
    step, history = 0, []

    def items() -> dict[str, Any]:
        return {
            "model": nnx.state(model),
            "optimizer": nnx.state(optimizer),
            "train_metrics": nnx.state(metrics),
            "rng": {"key": jax.random.key_data(rng)},
        }

    if loaded is not None:
        restored = {
            name: checkpointing.restore_into(
                loaded.items.get(name, {}), tree, name=name
            )
            for name, tree in items().items()
        }
        nnx.update(model, restored["model"])
        nnx.update(optimizer, restored["optimizer"])
        nnx.update(metrics, restored["train_metrics"])
        rng = jax.random.wrap_key_data(restored["rng"]["key"])
        step, history = loaded.step, list(loaded.meta.get("history", []))

    # Every check passed: from here on the run writes to its workdir.
    if loaded is not None and loaded.newer:
        moved = ckpts.set_aside(
            loaded.newer, os.path.join(workdir, "checkpoints_set_aside")
        )
        logging.warning(
            "resuming from step %d; the newer checkpoints were moved to %s",
            loaded.step,
            ", ".join(moved),
        )
    # Replicate parameters, optimizer state and metrics over the mesh.
    state = jax.device_put(nnx.state((model, optimizer, metrics)), sharder.replicated)
    nnx.update((model, optimizer, metrics), state)
    rng = jax.device_put(rng, sharder.replicated)
    if primary:
        _write_text(
            os.path.join(workdir, "config.json"),
            json.dumps(_config_dict(config), indent=1),
        )
    eval_batches = _eval_batches(data, config.eval_batch_size, sharder)
    train_step = _cached_train_step(_static(config))
    lr_fn, p_fn = create_learning_rate_schedule(config), create_p_schedule(config)
    per_epoch = input_pipeline.steps_per_epoch(len(data.y_train), config.batch_size)
    last = config.num_steps
    if max_steps_this_run is not None:
        last = min(last, step + max_steps_this_run)

    def save_checkpoint() -> None:
        epoch, position = divmod(step, per_epoch)
        meta = {
            "config": _config_dict(config),
            "step": step,
            "data_order": {"seed": config.seed, "epoch": epoch, "position": position},
            "history": history,
        }
        ckpts.save(step, items(), meta)

    model.train()
    # elapsed_s counts training wall time across resumptions.
    start = time.perf_counter() - (history[-1]["elapsed_s"] if history else 0.0)
    try:
        with tqdm(
            total=config.num_steps,
            initial=step,
            disable=not config.progress or not primary,
            desc=config.method,
            dynamic_ncols=True,
        ) as bar:
            while step < last:
                idx = input_pipeline.batch_indices(
                    config.seed, step, len(data.y_train), config.batch_size
                )
                x = sharder.shard(data.x_train[idx])
                y = sharder.shard(data.y_train[idx])
                loss, rng = train_step(model, optimizer, metrics, x, y, rng)
                step += 1
                bar.update(1)
                if step % 10 == 0 or step == last:
                    bar.set_postfix(
                        loss=f"{float(loss):.3f}",
                        lr=f"{_at(lr_fn, step - 1):.3g}",
                        p=f"{_at(p_fn, step - 1):+.3f}",
                        refresh=False,
                    )
                if step % config.eval_every_steps == 0 or step == config.num_steps:
                    train = metrics.compute()
                    metrics.reset()
                    nnx.update(
                        metrics, jax.device_put(nnx.state(metrics), sharder.replicated)
                    )
                    history.append(
                        {
                            "step": step,
                            "epoch": step / per_epoch,
                            "lr": _at(lr_fn, step - 1),
                            "p": _at(p_fn, step - 1),
                            "train_loss": float(train["loss"]),
                            "train_accuracy": float(train["accuracy"]),
                            **evaluate(model, eval_batches, len(data.y_test)),
                            "elapsed_s": time.perf_counter() - start,
                        }
                    )
                    if primary:
                        _write_metrics(workdir, history)
                every = config.checkpoint_every_steps
                if (every and step % every == 0) or step == last:
                    save_checkpoint()
    finally:
        ckpts.close()
    if primary and history:
        steps = np.arange(config.num_steps)
        plots.plot_run(
            history,
            workdir,
            title=f"{config.method} on {config.dataset}",
            schedules=(
                steps,
                np.asarray(jax.vmap(lr_fn)(steps)),
                np.asarray(jax.vmap(p_fn)(steps)),
            ),
        )
    model.eval()
    return TrainResult(model, optimizer, history)
