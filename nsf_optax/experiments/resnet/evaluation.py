"""What one evaluation computes, for one run and for each run of a population.

:func:`eval_step` is the test batch (plain NNX code: ``nnx.jit`` wraps it for one
run, a population maps it over its runs); :func:`eval_batches` pads the test set
into weighted batches; :func:`evaluation_row` is the history row both record.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from nsf_optax.experiments.resnet import input_pipeline, models, optimizers
from nsf_optax.experiments.resnet.configs.default import Config


def eval_step(
    model: models.ResNet, x: jax.Array, y: jax.Array, weight: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Summed cross-entropy and correct count of one weighted test batch.

    Plain NNX code, like :func:`.train.train_step`: ``nnx.jit`` wraps it for one
    run and a population maps it over its runs. The model must be in eval mode.

    Args:
      model: the network.
      x: the batch ``[B, *spatial, C]``.
      y: its integer labels ``[B]``.
      weight: ``[B]``, 1 for real examples and 0 for padding.

    Returns:
      ``(loss_sum, correct_sum)``, weighted.
    """
    logits = model(x)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, y)
    correct = jnp.argmax(logits, -1) == y
    return jnp.sum(loss * weight), jnp.sum(correct * weight)


_jit_eval_step = nnx.jit(eval_step)


def eval_batches(
    data: input_pipeline.Dataset, batch_size: int
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The test set as ``(x, y, weight)`` batches, the last padded with weight 0."""
    n = len(data.y_test)
    total = math.ceil(n / batch_size) * batch_size
    pad = total - n
    x = np.concatenate(
        [data.x_test, np.zeros((pad, *data.x_test.shape[1:]), np.float32)]
    )
    y = np.concatenate([data.y_test, np.zeros((pad,), np.int32)])
    w = np.concatenate([np.ones((n,), np.float32), np.zeros((pad,), np.float32)])
    return [
        (x[i : i + batch_size], y[i : i + batch_size], w[i : i + batch_size])
        for i in range(0, total, batch_size)
    ]


def sum_test_batches(
    model: models.ResNet, batches: list[tuple[jax.Array, ...]]
) -> tuple[float, float]:
    """Summed test loss and correct count over weighted batches, in eval mode.

    Args:
      model: the model (left in training mode afterwards).
      batches: ``(x, y, weight)`` global batches; padding has weight 0.

    Returns:
      ``(loss_sum, correct_sum)``.
    """
    model.eval()
    loss_sum, correct = 0.0, 0.0
    for x, y, w in batches:
        # The sums are replicated scalars, readable on every host.
        batch_loss, batch_correct = _jit_eval_step(model, x, y, w)
        loss_sum += float(batch_loss)
        correct += float(batch_correct)
    model.train()
    return loss_sum, correct


def evaluation_row(
    *,
    lr: float,
    p: float,
    train_metrics: dict[str, Any],
    loss_sum: Any,
    correct: Any,
    count: int,
) -> dict[str, float]:
    """One run's evaluation row (the keys of ``HISTORY_FIELDS`` but step, epoch
    and elapsed_s), for one run and for each run of a population.

    Args:
      lr: the learning rate of the last step.
      p: the exponent of the last step.
      train_metrics: the running ``loss`` and ``accuracy`` since the last
        evaluation.
      loss_sum: the summed test loss.
      correct: the number of correct test predictions.
      count: the number of test examples.

    Returns:
      ``lr``, ``p``, ``train_loss``, ``train_accuracy``, ``test_loss`` and
      ``test_accuracy`` as Python floats.
    """
    return {
        "lr": lr,
        "p": p,
        "train_loss": float(train_metrics["loss"]),
        "train_accuracy": float(train_metrics["accuracy"]),
        "test_loss": float(loss_sum / count),
        "test_accuracy": float(correct / count),
    }


def set_params(model: models.ResNet, values: Any) -> None:
    """Sets the model's parameters from a pure dict of arrays."""
    state = nnx.state(model, nnx.Param)
    nnx.replace_by_pure_dict(state, values)
    nnx.update(model, state)


def array_values(tree: Any) -> Any:
    """``tree`` with each nnx Variable replaced by its array."""
    return jax.tree.map(
        lambda v: v[...], tree, is_leaf=lambda x: isinstance(x, nnx.Variable)
    )


def evaluated_params(
    config: Config, model: nnx.Module, optimizer: nnx.Optimizer
) -> Any:
    """The parameters ``model`` is evaluated with
    (:func:`.optimizers.evaluation_params`) as a pure dict, or None when they are
    its trained ones. BatchNorm statistics stay those of training.

    Args:
      config: the run's configuration (its optimizer).
      model: the trained model.
      optimizer: its ``nnx.Optimizer``.

    Returns:
      A pure dict of the ``nnx.Param`` values to evaluate with, or None.
    """
    values = array_values(nnx.state(model, nnx.Param))
    evaluated = optimizers.evaluation_params(
        config, values, array_values(optimizer.opt_state)
    )
    return None if evaluated is values else nnx.to_pure_dict(evaluated)
