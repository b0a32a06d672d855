"""``benchmarks/bench_floor_power.py``: the C loops compute what NSF computes.

No timings are asserted; the C loops are checked against ``scale_by_pexp``
and ``optax.scale_by_adam`` on small vectors, so that the floor they time is
the floor of the same formula.
"""

import shutil
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import optax
import pytest

from tests._benchmarks import BENCH_DIR, benchmark_module

pytestmark = pytest.mark.skipif(
    shutil.which("cc") is None and shutil.which("gcc") is None,
    reason="no C compiler",
)


@pytest.fixture(scope="module")
def bench():
    with benchmark_module("bench_floor_power") as module:
        yield module


@pytest.fixture(scope="module")
def lib(bench):
    out = bench.load_floor()
    assert out is not None
    return out


@pytest.mark.parametrize("p", (0.3, -0.45, 0.0))
def test_c_pexp_loops_match_scale_by_pexp(bench, lib, p):
    # float32 bias corrections are rounded differently in numpy and XLA.
    assert bench.check_against_nsf(lib, p, n=4096) < 1e-5


@pytest.mark.parametrize("name", ("adam 1-pass C", "adam 3-pass C"))
def test_c_adam_loops_match_optax(bench, lib, name):
    g = (np.random.default_rng(3).standard_normal(4096) * 1e-3).astype(np.float32)
    tx = optax.scale_by_adam(b1=bench.B1, b2=bench.B2, eps=bench.EPS)
    want = np.asarray(tx.update(jnp.asarray(g), tx.init(jnp.asarray(g)))[0])
    arrays = [g, *(np.zeros(g.size, np.float32) for _ in range(3))]
    bench.c_step(lib, name, 0.5, arrays)()
    np.testing.assert_allclose(arrays[3], want, rtol=1e-5)


def test_c_pexp_at_one_half_is_adam(bench, lib):
    g = (np.random.default_rng(4).standard_normal(4096) * 1e-3).astype(np.float32)
    outs = []
    for name in ("adam 3-pass C", "pexp 3-pass C"):
        arrays = [g, *(np.zeros(g.size, np.float32) for _ in range(3))]
        bench.c_step(lib, name, 0.5, arrays)()
        outs.append(arrays[3])
    # The C power has no exact p = 1/2 path: equal to its error bound.
    np.testing.assert_allclose(outs[1], outs[0], rtol=2e-6)


def test_bad_flag_exits_before_jax_loads():
    script = str(BENCH_DIR / "bench_floor_power.py")
    out = subprocess.run(
        [sys.executable, script, "--vector-width", "3"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 2
    assert "invalid choice" in out.stderr
