"""What the float32 polynomial power costs in C, against XLA's traced-p step.

Times, on one flat float32 vector of the ResNet-18's size, interleaved
round-robin like ``bench_update.py``:

- ``adam 1-pass C`` / ``pexp 1-pass C``: one loop reading g, m, v and the
  params once (``benchmarks/_floor.c``), with a square root or with
  ``nsf_optax._power.power_f32``'s arithmetic for a traced p, step for step;
- ``adam 3-pass C`` / ``pexp 3-pass C``: XLA's structure (one loop for m, one
  for v, one for the params), everything else fused;
- ``adam XLA`` / ``pexp XLA``: ``optax.scale_by_adam`` and ``scale_by_pexp``
  with a cosine tide, jitted and donated as in ``bench_update.py``.

The ``pexp`` / ``adam`` ratio of each pair is the cost of the power's
arithmetic with the memory traffic held fixed: the C pairs measure it with
nothing but the loop around it (GCC, ``-O3 -march=native``). Usage::

    python benchmarks/bench_floor_power.py [--rounds 40] [--p 0.3] \\
        [--vector-width 256]
"""

import argparse
import ctypes
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

# Flags are checked before jax loads (a bad flag exits at once).
_PARSER = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
_PARSER.add_argument("--rounds", type=int, default=40, help="timed rounds")
_PARSER.add_argument("--p", type=float, default=0.3, help="the C loops' exponent")
_PARSER.add_argument("--n", type=int, default=11_173_962, help="vector size")
_PARSER.add_argument(
    "--vector-width",
    type=int,
    choices=(256, 512),
    help="the C loops' vector width (default: the compiler's choice)",
)

_C_NAMES = ("adam 1-pass C", "pexp 1-pass C", "adam 3-pass C", "pexp 3-pass C")
_C_FUNCS = ("adam_single_pass", "pexp_single_pass", "adam_three_pass")
_C_FUNCS += ("pexp_three_pass",)
B1, B2, EPS = 0.9, 0.999, 1e-8


def _bench_update():
    # bench_update (it imports jax: only once the flags are parsed), importable
    # from this directory; the path is added once.
    here = str(Path(__file__).resolve().parent)
    if here not in sys.path:
        sys.path.insert(0, here)
    import bench_update

    return bench_update


def load_floor(extra_flags: Sequence[str] = ()) -> ctypes.CDLL | None:
    """``_floor.c`` built by ``bench_update.build_floor`` (with ``extra_flags``),
    its four loops typed. Returns ``None`` when there is no C compiler."""
    lib = _bench_update().build_floor(extra_flags)
    if lib is None:
        return None
    f32p = np.ctypeslib.ndpointer(np.float32, flags="C_CONTIGUOUS")
    for name in _C_FUNCS:
        func = getattr(lib, name)
        extra = 1 if name.startswith("pexp") else 0
        func.argtypes = [f32p] * 4 + [ctypes.c_long] + [ctypes.c_float] * (5 + extra)
        func.restype = None
    return lib


def inv_bias_corrections(count: int) -> tuple[np.float32, np.float32]:
    """``1 / (1 - b**count)`` for both decays, in float32."""
    one = np.float32(1)
    return one / (one - np.float32(B1) ** count), one / (one - np.float32(B2) ** count)


def c_step(lib: ctypes.CDLL, name: str, p: float, arrays: list[np.ndarray]):
    """One C step of candidate ``name`` on ``arrays`` = [g, m, v, params]."""
    func = getattr(lib, _C_FUNCS[_C_NAMES.index(name)])
    pexp = (np.float32(p),) if name.startswith("pexp") else ()
    count = [0]

    def call() -> float:
        count[0] += 1
        c1, c2 = inv_bias_corrections(count[0])
        t = time.perf_counter()
        func(*arrays, arrays[0].size, B1, B2, c1, c2, EPS, *pexp)
        return time.perf_counter() - t

    return call


def xla_step(tx: Any, g: Any):
    """``tx.update`` then ``apply_updates`` on a flat ``g``, jitted, donated."""
    import jax
    import jax.numpy as jnp
    import optax

    def step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    params = jnp.zeros_like(g)
    box = [params, tx.init(params)]
    step = jax.jit(step, donate_argnums=(0, 1))

    def call() -> float:
        t = time.perf_counter()
        box[0], box[1] = step(box[0], box[1], g)
        jax.block_until_ready(box)
        return time.perf_counter() - t

    return call


def check_against_nsf(lib: ctypes.CDLL, p: float, n: int = 1 << 16) -> float:
    """Max relative difference of one C pexp step from ``scale_by_pexp``'s.

    Both from zero state, one step, float32; the C loops add the update to the
    params (the sign does not matter for the timing).
    """
    import jax.numpy as jnp

    import nsf_optax

    g = (np.random.default_rng(0).standard_normal(n) * 1e-3).astype(np.float32)
    tx = nsf_optax.scale_by_pexp(b1=B1, b2=B2, eps=EPS, p=p)
    want = np.asarray(tx.update(jnp.asarray(g), tx.init(jnp.asarray(g)))[0])
    worst = 0.0
    for name in ("pexp 1-pass C", "pexp 3-pass C"):
        arrays = [g.copy(), *(np.zeros(n, np.float32) for _ in range(3))]
        c_step(lib, name, p, arrays)()
        worst = max(worst, float(np.max(np.abs(arrays[3] - want) / np.abs(want))))
    return worst


def main() -> None:
    args = _PARSER.parse_args()
    bench_update = _bench_update()
    import jax.numpy as jnp
    import optax

    import nsf_optax

    width = args.vector_width
    lib = load_floor([f"-mprefer-vector-width={width}"] if width else [])
    if lib is None:
        sys.exit("no C compiler")
    bench_update.keep_freed_memory()
    rng = np.random.default_rng(0)
    g_np = (rng.standard_normal(args.n) * 1e-3).astype(np.float32)
    calls: dict[str, Any] = {}
    for name in _C_NAMES:
        arrays = [g_np, *(np.zeros(args.n, np.float32) for _ in range(3))]
        calls[name] = c_step(lib, name, args.p, arrays)
    g = jnp.asarray(g_np)
    for name, tx in (
        ("adam XLA", optax.scale_by_adam(b1=B1, b2=B2, eps=EPS)),
        (
            "pexp XLA",
            nsf_optax.scale_by_pexp(b1=B1, b2=B2, eps=EPS, p=bench_update.TIDAL),
        ),
    ):
        calls[name] = xla_step(tx, g)
    times = bench_update.interleave(calls, args.rounds)
    print(
        f"flat vector, {args.n} float32, {args.rounds} rounds, C p = {args.p}, "
        f"C vector width {width or 'default'}"
    )
    for ref, names in (
        ("adam 1-pass C", _C_NAMES[:2]),
        ("adam 3-pass C", _C_NAMES[2:]),
        ("adam XLA", ("adam XLA", "pexp XLA")),
    ):
        rows = bench_update.summarise({k: times[k] for k in names}, ref)
        for name in names:
            r = rows[name]
            print(
                f"  {name:14s} {r['median_ms']:8.2f} ms  {r['ratio']:.3f}x {ref}"
                f"  [IQR {r['ratio_iqr'][0]:.2f}-{r['ratio_iqr'][1]:.2f}]"
            )
    xla = np.median(times["adam XLA"])
    for name in _C_NAMES:
        print(f"  {name:14s} {np.median(times[name]) / xla:.3f}x adam XLA")
    print(
        f"  C pexp vs scale_by_pexp: max rel. diff {check_against_nsf(lib, args.p):.2g}"
    )


if __name__ == "__main__":
    main()
