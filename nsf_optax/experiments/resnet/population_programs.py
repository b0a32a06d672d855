"""The compiled programs of a population (:mod:`.population`): its step, its test
batch, the gather of its real runs and the reset of their running metrics.

``map_batch_size`` says how each device steps its block of runs: ``1``, one run
at a time, each a call of a compiled single-run program whose run index is a
traced argument (:class:`RunLoop`, :class:`EvalLoop`); ``b > 1``,
``jax.lax.map`` over the runs inside one compiled program, ``b`` runs vmapped at
a time; ``0`` or the block size, one ``vmap`` over all of them.

On one device with ``map_batch_size`` 1 the runs are not stacked at all
(:class:`SeparateRuns`): each run's state is its own pytree and one compiled
single-run program (:func:`run_programs`, its hyperparameters traced leaves of
the state) is called per run, so a run's step costs what a single run's does.

A run's model is evaluated with :func:`.optimizers.evaluation_params` of its
parameters and optimizer state, in eval mode (:func:`eval_model`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
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

from nsf_optax.experiments.resnet import evaluation, train
from nsf_optax.experiments.resnet.configs.default import Config

AXIS = "pop"
_POP, _REP = P(AXIS), P()


@functools.lru_cache(maxsize=8)
def programs(
    config: Config,
    graphdef: nnx.GraphDef,
    mesh: Mesh,
    count: int,
    local: int,
    map_batch_size: int,
) -> tuple[Any, Any, Any, Any]:
    """The step, evaluation, gather and metrics reset of a population.

    Populations of the same shape (e.g. the label-noise levels of a sweep) share
    them (the cache).

    Args:
      config: the step's configuration (augmentation, optimizer).
      graphdef: of one run's ``(model, optimizer, metrics)``.
      mesh: the one-axis mesh ``"pop"``.
      count: the number of real runs (the rest is padding).
      local: the number of runs on each device.
      map_batch_size: see the module doc.

    Returns:
      ``(step, evaluate, gather, reset)``: the step and the evaluation are jitted
      programs, or with ``map_batch_size`` 1 a :class:`RunLoop` and an
      :class:`EvalLoop` of single-run programs.
    """
    step_one = functools.partial(
        train.train_step, crop_padding=config.crop_padding, flip=config.flip
    )
    replicated = NamedSharding(mesh, _REP)

    def gather(tree):  # the real runs, replicated: readable on every host
        return jax.tree.map(lambda x: x[:count], tree)

    return (
        _step_program(step_one, graphdef, mesh, local, map_batch_size),
        _eval_program(config, graphdef, mesh, local, map_batch_size),
        jax.jit(gather, out_shardings=replicated),
        jax.jit(_zero_metrics, donate_argnums=0),
    )


def _at(x: jax.Array, k: jax.Array) -> jax.Array:
    return jax.lax.dynamic_index_in_dim(x, k, keepdims=False)


def _step_program(
    step_one: Callable[..., Any],
    graphdef: nnx.GraphDef,
    mesh: Mesh,
    local: int,
    map_batch_size: int,
) -> Any:
    def local_step(state, rng, seed_index, xs, ys):
        def one(args):
            run_state, key, i = args
            model, optimizer, metrics = nnx.merge(graphdef, run_state)
            key = jax.random.wrap_key_data(key)
            loss, key = step_one(model, optimizer, metrics, xs[i], ys[i], key)
            new = nnx.state((model, optimizer, metrics))
            return new, jax.random.key_data(key), loss

        # b runs vmapped at a time.
        return jax.lax.map(one, (state, rng, seed_index), batch_size=map_batch_size)

    def local_run_step(state, rng, seed_index, xs, ys, losses, k):
        # Run k of this device's block, stepped and written back in place.
        def put(buffer, value):
            return jax.lax.dynamic_update_index_in_dim(buffer, value, k, 0)

        run_state = jax.tree.map(lambda x: _at(x, k), state)
        model, optimizer, metrics = nnx.merge(graphdef, run_state)
        i = _at(seed_index, k)
        key = jax.random.wrap_key_data(_at(rng, k))
        loss, key = step_one(model, optimizer, metrics, xs[i], ys[i], key)
        new = nnx.state((model, optimizer, metrics))
        return (
            jax.tree.map(put, state, new),
            put(rng, jax.random.key_data(key)),
            put(losses, loss),
        )

    if map_batch_size != 1:
        return jax.jit(
            shard_map(
                local_step,
                mesh=mesh,
                in_specs=(_POP, _POP, _POP, _REP, _REP),
                out_specs=(_POP, _POP, _POP),
            ),
            donate_argnums=(0, 1),
        )
    run_step = shard_map(
        local_run_step,
        mesh=mesh,
        in_specs=(_POP, _POP, _POP, _REP, _REP, _POP, _REP),
        out_specs=(_POP, _POP, _POP),
    )
    zeros = jax.jit(
        lambda: jnp.zeros(local * mesh.size, jnp.float32),
        out_shardings=NamedSharding(mesh, _POP),
    )
    return RunLoop(jax.jit(run_step, donate_argnums=(0, 1, 5)), zeros, local)


def eval_model(config: Config, graphdef: nnx.GraphDef, run_state: Any) -> Any:
    """One run's model as it is evaluated: its parameters replaced by
    :func:`.optimizers.evaluation_params`, in eval mode.

    Args:
      config: the run's configuration (its optimizer).
      graphdef: of one run's ``(model, optimizer, metrics)``.
      run_state: that run's state.

    Returns:
      The model (an ``nnx`` module, inside whatever trace the caller is in).
    """
    model, optimizer, _ = nnx.merge(graphdef, run_state)
    evaluated = evaluation.evaluated_params(config, model, optimizer)
    if evaluated is not None:
        evaluation.set_params(model, evaluated)
    model.eval()
    return model


def _eval_program(
    config: Config, graphdef: nnx.GraphDef, mesh: Mesh, local: int, map_batch_size: int
) -> Any:
    def local_eval(state, x, y, w):
        def one(run_state):
            model = eval_model(config, graphdef, run_state)
            return evaluation.eval_step(model, x, y, w)

        return jax.lax.map(one, state, batch_size=map_batch_size)

    def local_eval_one(state, x, y, w, k):
        run_state = jax.tree.map(lambda a: _at(a, k), state)
        model = eval_model(config, graphdef, run_state)
        loss, correct = evaluation.eval_step(model, x, y, w)
        return loss[None], correct[None]

    replicated = NamedSharding(mesh, _REP)
    if map_batch_size != 1:
        program = shard_map(
            local_eval,
            mesh=mesh,
            in_specs=(_POP, _REP, _REP, _REP),
            out_specs=(_POP, _POP),
        )
        return jax.jit(program, out_shardings=(replicated, replicated))
    program = shard_map(
        local_eval_one,
        mesh=mesh,
        in_specs=(_POP, _REP, _REP, _REP, _REP),
        out_specs=(_POP, _POP),
    )
    return EvalLoop(jax.jit(program, out_shardings=(replicated, replicated)), local)


class RunLoop:
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


class EvalLoop:
    """A population's test batch as one compiled single-run program called per run.

    ``run_eval(state, x, y, w, k)`` evaluates run ``k`` of every device's
    block (one value per device); calling this evaluates them all and returns,
    as the one-program evaluation does, one value per run in the population's
    order (device-major blocks).
    """

    def __init__(self, run_eval, local: int):
        self.run_eval, self.local = run_eval, local

    def __call__(self, state, x, y, w):
        outs = [self.run_eval(state, x, y, w, np.int32(k)) for k in range(self.local)]
        loss = np.stack([np.asarray(o[0]) for o in outs], axis=1).reshape(-1)
        correct = np.stack([np.asarray(o[1]) for o in outs], axis=1).reshape(-1)
        return loss, correct


def _zero_metrics(state: nnx.State) -> nnx.State:
    # Resets every run's running metrics (the third part of a run's state).
    def zero(path, leaf):
        return jnp.zeros_like(leaf) if path[0].key == 2 else leaf

    return jax.tree_util.tree_map_with_path(zero, state)


class RunPrograms(NamedTuple):
    """The compiled single-run programs of :class:`SeparateRuns`."""

    step: Any  # (run_state, key_data, x, y) -> (run_state, key_data, loss), donated
    evaluate: Any  # (run_state, x, y, w) -> (loss_sum, correct) of one test batch
    reset: Any  # run_state -> run_state with zero running metrics, donated


@functools.lru_cache(maxsize=8)
def run_programs(config: Config, graphdef: nnx.GraphDef) -> RunPrograms:
    """One run's step, test batch and metrics reset, each compiled once for all
    the runs of every population of this shape (the cache).

    Args:
      config: the step's configuration (augmentation, optimizer).
      graphdef: of one run's ``(model, optimizer, metrics)``.

    Returns:
      A :class:`RunPrograms`.
    """
    step_one = functools.partial(
        train.train_step, crop_padding=config.crop_padding, flip=config.flip
    )

    def step(run_state, key, x, y):
        model, optimizer, metrics = nnx.merge(graphdef, run_state)
        loss, key = step_one(
            model, optimizer, metrics, x, y, jax.random.wrap_key_data(key)
        )
        return nnx.state((model, optimizer, metrics)), jax.random.key_data(key), loss

    def evaluate(run_state, x, y, w):
        return evaluation.eval_step(eval_model(config, graphdef, run_state), x, y, w)

    return RunPrograms(
        jax.jit(step, donate_argnums=(0, 1)),
        jax.jit(evaluate),
        jax.jit(_zero_metrics, donate_argnums=0),
    )


class SeparateRuns:
    """The runs of a population on one device, each its own pytree.

    Args:
      programs: from :func:`run_programs`.
      state: the stacked state (leading run axis) on the host.
      rng: the stacked augmentation key data on the host.
      count: the real runs (the first ``count`` along the run axis).
    """

    def __init__(self, programs: RunPrograms, state: Any, rng: np.ndarray, count: int):
        self.programs = programs
        device = jax.devices()[0]
        self.states = [
            jax.device_put(jax.tree.map(lambda x, k=k: np.asarray(x)[k], state), device)
            for k in range(count)
        ]
        self.keys = [jax.device_put(np.asarray(rng)[k], device) for k in range(count)]

    def step(self, batches: list[tuple[Any, Any]], seed_index: np.ndarray) -> Any:
        """Steps run ``k`` on ``batches[seed_index[k]]``; returns the losses."""
        losses = []
        for k, state in enumerate(self.states):
            x, y = batches[seed_index[k]]
            self.states[k], self.keys[k], loss = self.programs.step(
                state, self.keys[k], x, y
            )
            losses.append(loss)
        return jnp.stack(losses)

    def take_metrics(self) -> list[Any]:
        """Every run's running-metrics state, then reset to zero."""
        metrics = [jax.tree.map(jnp.copy, state[2]) for state in self.states]
        self.states = [self.programs.reset(state) for state in self.states]
        return metrics

    def evaluate(self, batches: list[tuple[Any, ...]]) -> tuple[np.ndarray, np.ndarray]:
        """Every run's summed test loss and correct count over ``batches``."""
        loss_sum = np.zeros(len(self.states))
        correct = np.zeros(len(self.states))
        for k, state in enumerate(self.states):
            for x, y, w in batches:
                batch_loss, batch_correct = self.programs.evaluate(state, x, y, w)
                loss_sum[k] += float(batch_loss)
                correct[k] += float(batch_correct)
        return loss_sum, correct

    def stacked(self) -> tuple[Any, np.ndarray]:
        """The state and key data with a leading run axis, on the host."""
        state = jax.tree.map(lambda *xs: np.stack(xs), *self.states)
        return state, np.stack([np.asarray(k) for k in self.keys])
