"""Trains the tiny config on all visible devices and saves the final state.

Run as ``python -m tests.experiments._sharded_run OUT.npz`` with ``XLA_FLAGS`` set
before JAX starts (see test_sharding.py).
"""

import dataclasses
import sys
import tempfile

import jax
import numpy as np
from flax import nnx

from nsf_optax.experiments.resnet import train
from nsf_optax.experiments.resnet.configs import get_config


def main(out: str) -> None:
    config = dataclasses.replace(
        get_config("tiny"), num_steps=4, checkpoint_every_steps=0, eval_every_steps=2
    )
    with tempfile.TemporaryDirectory() as workdir:
        result = train.train_and_evaluate(config, workdir)
    leaves = jax.tree.leaves(nnx.state((result.model, result.optimizer)))
    params = jax.tree.leaves(nnx.state(result.model, nnx.Param))
    np.savez(
        out,
        *[np.asarray(x) for x in leaves],
        devices=len(params[0].sharding.device_set),
        replicated=all(x.sharding.is_fully_replicated for x in leaves),
        test_loss=[r["test_loss"] for r in result.history],
    )


if __name__ == "__main__":
    main(sys.argv[1])
