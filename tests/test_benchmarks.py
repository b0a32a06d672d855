"""The benchmark script's machinery, on tiny inputs (no timings asserted).

``benchmarks/bench_update.py`` is outside the test run; these tests keep its
pieces working and check the facts it reports that do not depend on the
machine: state bytes, the reference grouping, the ratio arithmetic, the C
floor computing what optax computes, and the compiler-options path.
"""

import platform
import shutil
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import nsf_optax
from tests._benchmarks import benchmark_module


@pytest.fixture(scope="module")
def bench():
    with benchmark_module("bench_update") as module:
        yield module


def _grads():
    return {"w": jnp.full((3, 5), 1e-3), "b": jnp.full((5,), -2e-3)}


def test_summarise_is_median_of_per_round_ratio_and_difference(bench):
    times = {"ref": np.array([1.0, 2.0, 4.0]), "x": np.array([1.5, 2.0, 6.0])}
    rows = bench.summarise(times, "ref")
    assert rows["ref"]["ratio"] == 1.0 and rows["ref"]["overhead_ms"] == 0.0
    assert rows["x"]["ratio"] == 1.5  # per-round ratios 1.5, 1.0, 1.5
    assert rows["x"]["overhead_ms"] == pytest.approx(500.0)  # 0.5, 0, 2 s
    assert rows["x"]["median_ms"] == pytest.approx(2000.0)


def test_state_bytes_and_reference_groups(bench):
    cands = {
        "adam": ("adam", optax.scale_by_adam()),
        "pexp tidal": ("adam", nsf_optax.scale_by_pexp(p=bench.TIDAL)),
        "pexp mu bf16": ("adam", nsf_optax.scale_by_pexp(mu_dtype=jnp.bfloat16)),
        "sgd": ("sgd", optax.sgd(0.1, momentum=0.9)),
        "nsf_sgd": ("sgd", nsf_optax.nsf_sgd(0.1, 0.9, p=bench.SQUARE)),
    }
    rows = bench.bench_updates(_grads(), rounds=1, cands=cands)
    assert list(rows) == list(cands)
    assert {n: r["reference"] for n, r in rows.items()} == {
        n: ref for n, (ref, _) in cands.items()
    }
    # NSF's states hold Adam's count, mu and nu, plus p, b2, eps and eps_root.
    n_params, count_bytes, gain_bytes = 20, 4, 4 * 4
    adam_bytes = 2 * 4 * n_params + count_bytes
    assert rows["adam"]["state_bytes"] == adam_bytes
    assert rows["pexp tidal"]["state_bytes"] == adam_bytes + gain_bytes
    assert rows["pexp mu bf16"]["state_bytes"] == (2 + 4) * n_params + 20
    assert rows["sgd"]["state_bytes"] == 4 * n_params
    assert rows["nsf_sgd"]["state_bytes"] == 2 * 4 * n_params + 20
    for row in rows.values():
        assert np.isfinite(row["ratio"]) and row["ratio"] > 0


@pytest.mark.skipif(jax.devices()[0].platform != "cpu", reason="XLA CPU option")
def test_vector_width_candidates_compile_with_the_option(bench):
    rows = bench.bench_vector_width(_grads(), rounds=1)
    assert "pexp cosine tidal, 512-bit" in rows
    assert all(r["reference"] == "adam" for r in rows.values())


@pytest.mark.skipif(
    shutil.which("cc") is None and shutil.which("gcc") is None,
    reason="no C compiler",
)
def test_single_pass_floor_matches_optax(bench):
    if bench.build_floor() is None:
        pytest.skip("the C floor did not build (no OpenMP?)")
    # bench_floor asserts the C step equals optax's Adam step (rtol 1e-5).
    rows = bench.bench_floor(4096, rounds=1)
    assert rows is not None and set(rows) == {"adam", "single-pass C"}


def test_eager_rows_group_by_reference(bench):
    cands = {
        "adam": ("adam", optax.adam(1e-3)),
        "nsf pulse": ("adam", nsf_optax.nsf(1e-3, p=bench.PULSE)),
        "sgd": ("sgd", optax.sgd(0.1, momentum=0.9)),
        "nsf_sgd": ("sgd", nsf_optax.nsf_sgd(0.1, 0.9)),
    }
    rows = bench.bench_eager(_grads(), rounds=2, cands=cands)
    assert {n: r["reference"] for n, r in rows.items()} == {
        n: ref for n, (ref, _) in cands.items()
    }
    for row in rows.values():
        assert np.isfinite(row["ratio"]) and row["ratio"] > 0
    assert rows["adam"]["ratio"] == 1.0 and rows["sgd"]["ratio"] == 1.0


def test_small_tree_and_candidate_lists(bench):
    small = bench.small_tree()
    assert sum(x.size for x in small.values()) == 64 * 128 + 128 + 128 * 10 + 10
    assert all(x.dtype == jnp.float32 for x in small.values())
    eager = bench.eager_candidates()
    assert {ref for ref, _ in eager.values()} == {"adam", "sgd"}
    # The paper's schedule is measured in every section that has tides.
    assert "pexp pulse tidal" in bench.update_candidates()
    assert "nsf pulse tidal" in eager
    assert bench.PULSE.values == (0.5, 0.25, -0.25)


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or not platform.libc_ver()[0] == "glibc",
    reason="glibc's mallopt",
)
def test_keep_freed_memory_sets_every_mallopt_option(bench):
    # One arena, no mmap below 1 GiB, no trimming: each mallopt returned 1.
    assert bench.keep_freed_memory() is True


def test_select_candidates_keeps_the_named_and_their_references(bench):
    cands = {name: (ref, None) for name, ref in [
        ("adam", "adam"), ("pexp p=0.3", "adam"), ("pexp p=0.25", "adam"),
        ("sgd", "sgd"), ("nsf_sgd square tidal", "sgd"),
    ]}  # fmt: skip
    assert bench.select_candidates(cands, None) is cands
    kept = bench.select_candidates(cands, ["nsf_sgd square tidal", "pexp p=0.3"])
    assert list(kept) == ["adam", "pexp p=0.3", "sgd", "nsf_sgd square tidal"]
    # Another section's names select nothing here.
    assert bench.select_candidates(cands, ["nsf p=0.5"]) == {}


@pytest.mark.parametrize("complex_sums", [True, False])
def test_rms_floor_is_adam_scaled_by_the_moments_sums(bench, complex_sums):
    grads = _grads()
    floor, adam = bench.adam_then_sums(complex_sums), optax.scale_by_adam()
    state, adam_state = floor.init(grads), adam.init(grads)
    for _ in range(2):
        u, state = jax.jit(floor.update)(grads, state)
        want, adam_state = adam.update(grads, adam_state)
    for name, leaf in u.items():
        mu, nu = adam_state.mu[name], adam_state.nu[name]
        scale = float(jnp.sum(nu**2) / jnp.sum(mu**2))
        np.testing.assert_allclose(leaf, want[name] * scale, rtol=1e-5)
