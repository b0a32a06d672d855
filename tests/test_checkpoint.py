"""Optimizer state survives an orbax checkpoint: resuming equals not stopping."""

import jax
import jax.numpy as jnp
import optax
import orbax.checkpoint as ocp
import pytest

import nsf_optax
from nsf_optax import p_schedule

_PULSE = p_schedule.pulse_tidal(
    0.5, 3, p_schedule.square_tidal(0.25, -0.25, every_steps=2)
)


def _loss(params, step):
    target = jnp.sin(jnp.arange(6.0) + step).reshape(2, 3)
    return jnp.sum((params["w"] - target) ** 2) + jnp.sum(params["b"] ** 4)


@pytest.mark.parametrize(
    "make_tx",
    [
        lambda: nsf_optax.nsfw(1e-2, p=_PULSE, weight_decay=1e-3),
        lambda: optax.chain(
            optax.add_decayed_weights(5e-4),
            nsf_optax.nsf_sgd(1e-2, 0.9, p=_PULSE, normalize="rms"),
        ),
        lambda: optax.inject_hyperparams(nsf_optax.nsf)(learning_rate=1e-2, p=_PULSE),
    ],
    ids=["nsfw", "nsf_sgd_rms", "inject_hyperparams"],
)
def test_resume_equals_uninterrupted(tmp_path, make_tx):
    tx = make_tx()

    @jax.jit
    def step(params, state, i):
        grads = jax.grad(_loss)(params, i)
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    params0 = {"w": jnp.zeros((2, 3)), "b": jnp.full((3,), 0.5, jnp.float32)}
    params, state = params0, tx.init(params0)
    for i in range(12):
        params, state = step(params, state, i)
    uninterrupted = (params, state)

    params, state = params0, tx.init(params0)
    for i in range(5):
        params, state = step(params, state, i)
    with ocp.StandardCheckpointer() as ckptr:
        ckptr.save(tmp_path / "ckpt", {"params": params, "opt_state": state})
    del params, state
    # Restore against an abstract target built from a fresh init, as a new
    # process would.
    abstract = jax.tree.map(
        ocp.utils.to_shape_dtype_struct,
        {"params": params0, "opt_state": tx.init(params0)},
    )
    with ocp.StandardCheckpointer() as ckptr:
        restored = ckptr.restore(tmp_path / "ckpt", abstract)
    params, state = restored["params"], restored["opt_state"]
    assert int(jax.tree.leaves(state)[0]) == 5  # the count came back
    for i in range(5, 12):
        params, state = step(params, state, i)
    # Bitwise on CPU: same arrays, same dtypes, same schedule position.
    for a, b in zip(
        jax.tree.leaves((params, state)), jax.tree.leaves(uninterrupted), strict=True
    ):
        assert a.dtype == b.dtype
        assert bool(jnp.array_equal(a, b)), (a, b)
