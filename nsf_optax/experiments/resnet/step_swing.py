"""How much a tidal p swings the step size: the measurement behind the default
amplitude of the cyclic baselines (``sgd-cyclic``, ``adam-cyclic``).

The cyclic baselines ask whether NSF's effect is only a cyclic learning rate:
their learning rate follows the period and shape of the p schedule
(:func:`.optimizers.create_lr_cycle`), ``A`` times larger at the highest p and
``A`` times smaller at the lowest. ``A`` should be the swing in step size that the
tidal p itself causes. :func:`step_size_ratios` trains an ``nsf`` run and, at
every step, compares the update it takes with the update the same state and
gradient give at the reference exponent (0 for the SGD flavour, 1/2 for the Adam
flavour: the optimizer the cyclic baseline cycles), in two ways:

* ``rms``: the RMS of the update over the reference update's (the step's length);
* ``descent``: the update's projection on the gradient over the reference
  update's (the first-order loss decrease, the step's length along the gradient).

:func:`swing_amplitude` fits ``log ratio = a + log(A) * s(t)`` with ``s(t)`` the
p schedule scaled to [-1, 1]
(:func:`.optimizers.create_cycle_position`, the exponent of the cycle),
so ``A`` is the factor between the step at mid p and at the highest p.

    >>> from nsf_optax.experiments.resnet import configs, step_swing
    >>> import dataclasses
    >>> config = dataclasses.replace(configs.get_config("mnist1d"),
    ...     num_filters=16, normalize="none")                       # doctest: +SKIP
    >>> m = step_swing.step_size_ratios(config, steps=1000)          # doctest: +SKIP
    >>> step_swing.swing_amplitude(m["rms"], m["s"], skip=200)       # doctest: +SKIP

The runs behind the default, and the numbers, are in docs/compare.md (methods).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from nsf_optax.experiments.resnet import evaluation, input_pipeline, models, optimizers
from nsf_optax.experiments.resnet.configs.default import Config


def _rms(tree: Any) -> jax.Array:
    leaves = jax.tree.leaves(tree)
    total = jnp.sum(jnp.stack([jnp.sum(jnp.square(x)) for x in leaves]))
    return jnp.sqrt(total / sum(x.size for x in leaves))


def _dot(a: Any, b: Any) -> jax.Array:
    pairs = zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    return jnp.sum(jnp.stack([jnp.vdot(x, y) for x, y in pairs]))


def _make_step(tx: optax.GradientTransformation, reference_p: float):
    """The jitted step: trains at p_t and compares with the update at reference_p."""

    def loss_fn(model, x, y):
        logits = model(x)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    @nnx.jit
    def step(model, opt_state, p_t, x, y):
        loss, grads = nnx.value_and_grad(loss_fn)(model, x, y)
        grads = evaluation.array_values(grads)
        params = evaluation.array_values(nnx.state(model, nnx.Param))
        at = opt_state.hyperparams
        state = opt_state._replace(hyperparams={**at, "p": p_t})
        updates, new_state = tx.update(grads, state, params)
        reference = opt_state._replace(hyperparams={**at, "p": reference_p})
        ref_updates, _ = tx.update(grads, reference, params)
        ratios = jnp.stack(
            [
                _rms(updates) / _rms(ref_updates),
                _dot(updates, grads) / _dot(ref_updates, grads),
            ]
        )
        new_params: Any = optax.apply_updates(params, updates)  # a State of arrays
        target = nnx.state(model, nnx.Param)
        nnx.replace_by_pure_dict(target, nnx.to_pure_dict(new_params))
        nnx.update(model, target)
        return new_state, loss, ratios

    return step


def step_size_ratios(
    config: Config, *, steps: int, reference_p: float | None = None
) -> dict[str, np.ndarray]:
    """Trains ``config`` (an ``nsf`` run) and measures its step against the reference.

    The run is ``config``'s (model, data order, learning-rate and p schedules,
    weight decay) without augmentation, for its first ``steps`` steps.

    Args:
      config: an ``nsf`` config (any flavour, ``normalize``, p schedule).
      steps: how many steps to train and measure (``<= config.num_steps``).
      reference_p: the exponent compared with; None: 0 for the SGD flavour, 1/2
        for the Adam flavour.

    Returns:
      ``step``, ``p`` (the exponent of each step), ``s`` (it scaled to [-1, 1] as
      :func:`.optimizers.create_lr_cycle` scales it), ``rms`` and ``descent``
      (the two ratios, see the module docstring) and ``loss``, one per step.

    Raises:
      ValueError: for another optimizer than ``nsf`` or a bad ``steps``.
    """
    if config.optimizer != "nsf":
        raise ValueError(
            f"step_size_ratios needs optimizer 'nsf', got {config.optimizer!r}."
        )
    if not 0 < steps <= config.num_steps:
        raise ValueError(
            f"steps must be in 1..num_steps ({config.num_steps}), got {steps}."
        )
    if reference_p is None:
        reference_p = 0.5 if config.nsf_flavour == "adam" else 0.0
    data = input_pipeline.training_set(
        input_pipeline.load_dataset(config.dataset, config.data_dir),
        train_size=config.train_size,
        label_noise=config.label_noise,
        seed=config.data_seed,
    )
    model = models.create_model(
        config.model,
        num_classes=data.num_classes,
        in_features=data.in_features,
        ndim=data.ndim,
        seed=config.seed,
        num_filters=config.num_filters,
    )
    model.train()
    lr = optimizers.create_learning_rate_schedule(config)
    build = optimizers.BUILDERS["nsf"]
    # An array p keeps the second moment, so both exponents read the same state.
    tx = optax.inject_hyperparams(lambda p: build(config, lr, p))(p=0.0)
    opt_state = tx.init(evaluation.array_values(nnx.state(model, nnx.Param)))
    step = _make_step(tx, reference_p)
    p_fn = optimizers.create_p_schedule(config)
    p = np.asarray(jax.vmap(p_fn)(jnp.arange(steps)), np.float64)
    position = optimizers.create_cycle_position(config)
    s = np.asarray(jax.vmap(position)(jnp.arange(steps)), np.float64)
    ratios, losses = [], []
    for t in range(steps):
        idx = input_pipeline.batch_indices(
            config.seed, t, len(data.y_train), config.batch_size
        )
        opt_state, loss, r = step(
            model,
            opt_state,
            jnp.float32(p[t]),
            data.x_train[idx],
            data.y_train[idx],
        )
        ratios.append(r)
        losses.append(loss)
    ratios_np = np.asarray(jnp.stack(ratios), np.float64)
    return {
        "step": np.arange(steps),
        "p": p,
        "s": s,
        "rms": ratios_np[:, 0],
        "descent": ratios_np[:, 1],
        "loss": np.asarray(jnp.stack(losses), np.float64),
    }


def swing_amplitude(ratios: np.ndarray, s: np.ndarray, *, skip: int = 0) -> float:
    """The amplitude ``A`` of ``log ratio = a + log(A) * s``, least squares.

    Args:
      ratios: the per-step ratios (:func:`step_size_ratios`'s ``rms`` or
        ``descent``); the non-finite and non-positive ones are left out.
      s: the p schedule scaled to [-1, 1], per step.
      skip: leave out the first ``skip`` steps (the warmup, where the second
        moment is still settling).

    Returns:
      ``exp`` of the fitted slope: the factor by which the step at the highest p
      exceeds the step at mid p (below 1: the highest p takes smaller steps);
      1 when ``s`` does not vary.

    Examples:
      >>> s = np.array([1.0, -1.0, 1.0, -1.0])
      >>> round(swing_amplitude(np.array([2.0, 0.5, 2.0, 0.5]), s), 6)
      2.0
    """
    r = np.asarray(ratios, np.float64)[skip:]
    x = np.asarray(s, np.float64)[skip:]
    # A step of length 0 (lr 0 at step 0) or a step against the gradient has no
    # log ratio: left out.
    keep = np.isfinite(r) & (r > 0)
    x, y = x[keep], np.log(r[keep])
    if np.ptp(x) == 0:
        return 1.0
    slope = np.polyfit(x, y, 1)[0]
    return float(np.exp(slope))
