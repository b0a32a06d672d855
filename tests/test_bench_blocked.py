"""``benchmarks/bench_blocked.py``: the blocked steps compute optax's Adam step.

No timings are asserted; the blocked steps are checked against ``optax.adam``
on a small vector over a few steps, so that what the script times is the same
update.
"""

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from tests._benchmarks import BENCH_DIR, benchmark_module


@pytest.fixture(scope="module")
def bench():
    with benchmark_module("bench_blocked") as module:
        yield module


@pytest.mark.parametrize("mode", ("scan", "fori"))
def test_blocked_steps_are_optax_adam(bench, mode):
    blocks, block = 4, 256
    tx = optax.adam(bench.LR, b1=bench.B1, b2=bench.B2, eps=bench.EPS)
    params = jnp.zeros(blocks * block)
    opt_state = tx.init(params)
    state = [jnp.zeros((blocks, block)) for _ in range(3)]
    state.append(jnp.zeros([], jnp.int32))
    step = bench.blocked_step(mode, blocks)
    for k in range(3):
        g = jax.random.normal(jax.random.key(k), (blocks * block,))
        updates, opt_state = tx.update(g, opt_state, params)
        params = optax.apply_updates(params, updates)
        state = list(step(*state, g.reshape(blocks, block)))
    np.testing.assert_allclose(
        np.asarray(state[0]).reshape(-1), np.asarray(params), rtol=1e-6, atol=1e-9
    )
    assert int(state[3]) == 3


def test_bad_flag_exits_2():
    out = subprocess.run(
        [sys.executable, str(BENCH_DIR / "bench_blocked.py"), "--block", "0"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 2
    assert "must be positive" in out.stderr
