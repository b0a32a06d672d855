"""Trains a tiny population on all visible devices and saves its final state.

Run as ``python -m tests.experiments._sharded_sweep OUT.npz`` with ``XLA_FLAGS`` set
before JAX starts (see test_sweep.py).
"""

import dataclasses
import sys
import tempfile

import jax
import numpy as np

from nsf_optax.experiments.resnet import population
from nsf_optax.experiments.resnet.configs import get_config

# 2 p x 2 seeds = 4 runs: on 3 devices the population is padded to 6.
PS, SEEDS = (-0.25, 0.5), (0, 1)


def main(out: str) -> None:
    config = dataclasses.replace(
        get_config("tiny"),
        optimizer="nsf",
        p_schedule="constant",
        num_steps=4,
        eval_every_steps=2,
        checkpoint_every_steps=0,
    )
    with tempfile.TemporaryDirectory() as workdir:
        result = population.train_population(config, PS, SEEDS, workdir)
    np.savez(
        out,
        *[np.asarray(x) for x in jax.tree.leaves(result.model_state)],
        devices=jax.device_count(),
        test_loss=[[r["test_loss"] for r in h] for h in result.histories],
        runs=np.asarray(result.runs),
    )


if __name__ == "__main__":
    main(sys.argv[1])
