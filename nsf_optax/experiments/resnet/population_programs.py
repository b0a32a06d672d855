"""The compiled programs of a population (:mod:`.population`): its step, its test
batch, the gather of its real runs and the reset of their running metrics.

``map_batch_size`` says how each device steps its block of runs: ``1``, one run
at a time, each a call of a compiled single-run program whose run index is a
traced argument (:class:`RunLoop`, :class:`EvalLoop`); ``b > 1``,
``jax.lax.map`` over the runs inside one compiled program, ``b`` runs vmapped at
a time; ``0`` or the block size, one ``vmap`` over all of them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

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

AXIS = "pop"
_POP, _REP = P(AXIS), P()


@functools.lru_cache(maxsize=8)
def programs(
    crop_padding: int,
    flip: bool,
    graphdef: nnx.GraphDef,
    eval_graphdef: nnx.GraphDef,
    mesh: Mesh,
    count: int,
    local: int,
    map_batch_size: int,
) -> tuple[Any, Any, Any, Any]:
    """The step, evaluation, gather and metrics reset of a population.

    Populations of the same shape (e.g. the label-noise levels of a sweep) share
    them (the cache).

    Args:
      crop_padding: the augmentation's crop padding.
      flip: the augmentation's flips.
      graphdef: of one run's ``(model, optimizer, metrics)``.
      eval_graphdef: of one run's model in eval mode.
      mesh: the one-axis mesh ``"pop"``.
      count: the number of real runs (the rest is padding).
      local: the number of runs on each device.
      map_batch_size: see the module doc.

    Returns:
      ``(step, evaluate, gather, reset)``: the step and the evaluation are jitted
      programs, or with ``map_batch_size`` 1 a :class:`RunLoop` and an
      :class:`EvalLoop` of single-run programs.
    """
    step_one = functools.partial(train.train_step, crop_padding=crop_padding, flip=flip)
    replicated = NamedSharding(mesh, _REP)

    def gather(tree):  # the real runs, replicated: readable on every host
        return jax.tree.map(lambda x: x[:count], tree)

    return (
        _step_program(step_one, graphdef, mesh, local, map_batch_size),
        _eval_program(eval_graphdef, mesh, local, map_batch_size),
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


def _eval_program(
    eval_graphdef: nnx.GraphDef, mesh: Mesh, local: int, map_batch_size: int
) -> Any:
    def local_eval(model_state, x, y, w):
        def one(run_state):
            return evaluation.eval_step(nnx.merge(eval_graphdef, run_state), x, y, w)

        return jax.lax.map(one, model_state, batch_size=map_batch_size)

    def local_eval_one(model_state, x, y, w, k):
        run_state = jax.tree.map(lambda a: _at(a, k), model_state)
        model = nnx.merge(eval_graphdef, run_state)
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


def _zero_metrics(state: nnx.State) -> nnx.State:
    # Resets every run's running metrics (the third part of a run's state).
    def zero(path, leaf):
        return jnp.zeros_like(leaf) if path[0].key == 2 else leaf

    return jax.tree_util.tree_map_with_path(zero, state)
