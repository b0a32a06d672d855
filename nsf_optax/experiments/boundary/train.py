"""The decision-boundary demo's training program: jitted, batched over seeds.

:func:`make_train` builds, once per (hashable) settings, the functions
:func:`~nsf_optax.experiments.boundary.experiment.boundary_demo` calls: the
training of every seed at one p schedule (curves at each evaluation), and the
step-by-step advance and probe of the boundary snapshots.
"""

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

import nsf_optax
from nsf_optax.experiments.boundary.model import (
    _loss,
    _per_example_loss,
    init_mlp,
    make_angle_data,
    mlp_apply,
    update_norms,
)
from nsf_optax.experiments.boundary.settings import BoundarySettings

__all__ = ["TrainProgram", "make_train"]


class TrainProgram(NamedTuple):
    """The jitted functions of one :class:`BoundarySettings`."""

    train_all: Callable[..., Any]  # (seeds, p_values) -> 4 curves [S, E]
    data_for: Callable[..., Any]  # seed -> (train, test, params)
    tx_for: Callable[..., Any]  # p_values -> the optimizer
    advance: Callable[..., Any]  # n steps of one run
    probe: Callable[..., Any]  # boundary probabilities and update norms


def _tx(s: BoundarySettings, p_values):
    return nsf_optax.nsf(
        s.lr,
        b1=s.b1,
        b2=s.b2,
        eps=s.eps,
        p=lambda count: p_values[jnp.minimum(count, p_values.shape[0] - 1)],
        normalize=s.normalize,
    )


def _data(s: BoundarySettings, seed):
    key = jax.random.key(seed)
    k_train, k_test, k_init = jax.random.split(key, 3)
    train = make_angle_data(
        k_train, s.n_train, noise=s.noise, near_fraction=s.near_fraction
    )
    test = make_angle_data(
        k_test, s.n_test, noise=s.noise, near_fraction=s.near_fraction
    )
    return train, test, init_mlp(k_init, s.hidden)


def _metrics(params, train, test):
    logits = mlp_apply(params, test[0])
    correct = jnp.argmax(logits, -1) == test[1]
    near = test[2]
    return (
        jnp.mean(correct),
        jnp.sum(correct & near) / jnp.maximum(jnp.sum(near), 1),
        jnp.mean(_per_example_loss(params, *train[:2])),
        jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, test[1])),
    )


def _curves(s: BoundarySettings, data, p_values):
    """One run: the metrics at step 0 and after every ``eval_every`` steps."""
    train, test, params = data
    tx = _tx(s, p_values)
    grad_fn = jax.grad(_loss)

    def step(carry, _):
        params, opt_state = carry
        grads = grad_fn(params, train[0], train[1], s.loss_reduction)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), None

    def evaluate(carry, _):
        carry, _ = jax.lax.scan(step, carry, None, length=s.eval_every)
        return carry, _metrics(carry[0], train, test)

    init = (params, tx.init(params))
    num_evals = s.num_steps // s.eval_every
    _, curves = jax.lax.scan(evaluate, init, None, length=num_evals)
    first = _metrics(params, train, test)
    return tuple(
        jnp.concatenate([f[None], c]) for f, c in zip(first, curves, strict=True)
    )


def _advance(s: BoundarySettings, params, opt_state, n, p_values, x, y):
    tx = _tx(s, p_values)
    grad_fn = jax.grad(_loss)

    def body(_, carry):
        params, opt_state = carry
        grads = grad_fn(params, x, y, s.loss_reduction)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    return jax.lax.fori_loop(0, n, body, (params, opt_state))


def _probe(s: BoundarySettings, params, opt_state, step, p_values, x, y, pts):
    # The exponent the next step will use.
    p_t = p_values[jnp.minimum(step, p_values.shape[0] - 1)]
    prob = jax.nn.softmax(mlp_apply(params, pts))[:, 1]
    norms = update_norms(params, opt_state, x, y, p_t, b2=s.b2, eps=s.eps)
    return prob, norms


@functools.lru_cache(maxsize=8)
def make_train(settings: BoundarySettings) -> TrainProgram:
    """The jitted training functions of ``settings`` (cached per settings).

    Args:
      settings: :class:`BoundarySettings` (hashable: frozen).

    Returns:
      A :class:`TrainProgram`.
    """
    s = settings
    data_for = jax.jit(functools.partial(_data, s))
    # Data and init are drawn outside the training program: compiling the PRNG
    # into it would make its compilation several times slower on CPU.
    batched_data = jax.jit(jax.vmap(data_for))
    train_jit = jax.jit(jax.vmap(functools.partial(_curves, s), in_axes=(0, None)))

    def train_all(seeds, p_values):
        return train_jit(batched_data(seeds), p_values)

    return TrainProgram(
        train_all=train_all,
        data_for=data_for,
        tx_for=functools.partial(_tx, s),
        advance=jax.jit(functools.partial(_advance, s)),
        probe=jax.jit(functools.partial(_probe, s)),
    )
