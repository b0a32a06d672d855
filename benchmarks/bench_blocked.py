"""Can a blocked loop lead XLA:CPU's Adam step toward the single-pass floor?

XLA's CPU backend compiles an Adam step on one large leaf to three
elementwise loops (m, v, then the parameter write reading the new m and v):
40 bytes per parameter against the 28 of one pass (``benchmarks/_floor.c``).
Cut into blocks that fit the cache, the three loops of one block would read
what the previous loop just wrote from the cache instead of from memory. This
script times that idea against ``optax.adam`` on one flat float32 vector of the
ResNet-18's size, jitted and donated as in ``bench_update.py``, interleaved
round-robin in one process:

- ``scan``: the state as ``[blocks, block]`` arrays, one ``jax.lax.scan`` over
  the blocks, each step the whole Adam arithmetic of one block;
- ``fori``: the same with ``jax.lax.fori_loop``, each block written back with
  ``jax.lax.dynamic_update_index_in_dim`` into the donated carry.

Both give optax's parameters to float32 rounding (checked before timing).
Usage::

    python benchmarks/bench_blocked.py [--block 65536] [--rounds 20]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import jax
import jax.numpy as jnp
import optax

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_update import interleave, machine, summarise

SIZE = 11_173_962  # the ResNet-18 tree's float32 count
B1, B2, EPS, LR = 0.9, 0.999, 1e-8, 1e-3


def _adam_block(p, m, v, g, c1, c2):
    # optax.adam's arithmetic on one block; c1, c2 the bias corrections.
    m = B1 * m + (1 - B1) * g
    v = B2 * v + (1 - B2) * g * g
    return p - LR * (m / c1) / (jnp.sqrt(v / c2) + EPS), m, v


def blocked_step(mode: str, blocks: int):
    """A jitted, donated Adam step over ``[blocks, block]`` state arrays."""

    def step(p, m, v, count, g):
        count = count + 1
        c1 = 1 - B1 ** count.astype(jnp.float32)
        c2 = 1 - B2 ** count.astype(jnp.float32)
        if mode == "scan":

            def scan_body(carry, xs):
                bp, bm, bv, bg = xs
                return carry, _adam_block(bp, bm, bv, bg, c1, c2)

            _, (p, m, v) = jax.lax.scan(scan_body, None, (p, m, v, g))
        else:

            def fori_body(i, carry):
                p, m, v = carry
                new = _adam_block(p[i], m[i], v[i], g[i], c1, c2)
                return tuple(
                    jax.lax.dynamic_update_index_in_dim(x, y, i, 0)
                    for x, y in zip(carry, new, strict=True)
                )

            p, m, v = jax.lax.fori_loop(0, blocks, fori_body, (p, m, v))
        return p, m, v, count

    return jax.jit(step, donate_argnums=(0, 1, 2))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--block", type=int, default=1 << 16, help="floats per block")
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args(argv)
    if args.block <= 0 or args.rounds <= 0:
        parser.error("--block and --rounds must be positive")
    blocks = SIZE // args.block
    n = blocks * args.block
    grads = jax.random.normal(jax.random.key(0), (n,))
    tx = optax.adam(LR)

    def adam_step(params, state, g):
        updates, state = tx.update(g, state, params)
        return optax.apply_updates(params, updates), state

    adam = jax.jit(adam_step, donate_argnums=(0, 1))
    reference, _ = adam(jnp.zeros(n), tx.init(jnp.zeros(n)), grads)
    boxes = {"adam": [jnp.zeros(n), tx.init(jnp.zeros(n))]}
    steps = {"adam": adam}
    for mode in ("scan", "fori"):
        step = blocked_step(mode, blocks)
        shape = (blocks, args.block)
        state = [jnp.zeros(shape), jnp.zeros(shape), jnp.zeros(shape)]
        got = step(*state, jnp.zeros([], jnp.int32), grads.reshape(shape))[0]
        diff = float(jnp.max(jnp.abs(got.reshape(-1) - reference)))
        print(f"{mode}: max |params - optax's| after one step = {diff:.2e}")
        boxes[mode] = [jnp.zeros(shape), jnp.zeros(shape), jnp.zeros(shape)]
        boxes[mode].append(jnp.zeros([], jnp.int32))
        steps[mode] = step
    blocked_grads = grads.reshape(blocks, args.block)

    def caller(name):
        def call() -> float:
            box = boxes[name]
            t = time.perf_counter()
            if name == "adam":
                box[:] = steps[name](*box, grads)
            else:
                box[:] = steps[name](*box, blocked_grads)
            jax.block_until_ready(box)
            return time.perf_counter() - t

        return call

    times = interleave({name: caller(name) for name in steps}, args.rounds)
    for name, row in summarise(times, "adam").items():
        print(
            f"  {name:6} {row['median_ms']:9.2f} ms  {row['ratio']:7.2f}x adam  "
            f"[IQR {row['ratio_iqr'][0]:.2f}-{row['ratio_iqr'][1]:.2f}]"
        )
    info = machine()
    print(f"{info['cpu_model']}, {args.block} floats per block, {blocks} blocks")


if __name__ == "__main__":
    main()
