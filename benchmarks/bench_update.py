"""Overhead of the NSF transforms against optax, measured in one process.

Usage::

    python benchmarks/bench_update.py [--quick] [--out results.json]
        [--sections update,...] [--only NAME ...]

Four measurements, each interleaved (candidates called round-robin, one call
each per round, so that a slow spell of a shared machine hits all of them) and
summarised by medians over rounds, compile and warm-up excluded, every call
ended with ``block_until_ready``:

1. ``update``: one optimizer step of each transform, ``update`` then
   ``optax.apply_updates`` (params and state donated, as in a train step), on
   a ResNet-18-shaped tree (62 leaves, 11.17 M float32, the real conv /
   batch-norm / dense shapes) and on one flat vector of the same size; with
   each candidate's optimizer-state bytes. The "injected" rows wrap both sides
   in ``optax.inject_hyperparams`` (every hyperparameter traced), against
   injected Adam, with and without ``static_args="p"``.
2. ``floor``: a single-pass C kernel (reads g, m, v, params once, writes m, v,
   params once) against the same step with ``optax.scale_by_adam`` on the flat
   vector: the memory-bandwidth floor of XLA's three loops per leaf.
3. ``train_step``: a full ResNet-18 step (forward, backward, update, apply) at a
   small batch, NSF against the optax optimizer it generalises.
4. ``eager``: ``tx.update`` called without :func:`jax.jit` (after a warm-up
   step), as a notebook or an eager loop calls it, against eager
   ``optax.adam``, on a small tree and on the ResNet-18 tree.
5. ``vector_width`` (CPU only): the update on the ResNet-18 tree compiled with
   XLA's ``xla_cpu_prefer_vector_width=512`` (the default is 256), against
   default-compiled Adam: what a user with an AVX-512 CPU can set
   (``XLA_FLAGS=--xla_cpu_prefer_vector_width=512``) when a general or
   scheduled p makes the update compute-bound.

``--only`` keeps the named candidates of the update, eager and vector-width
sections (with the references they are measured against), so that a few
candidates can be timed in a couple of minutes.

The ratio of a candidate is the median over rounds of its time divided by the
reference's time in the same round (robust to drift in the machine's load);
``overhead_ms`` is the median over rounds of the difference.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

import nsf_optax
from nsf_optax import _power, p_schedule
from nsf_optax.experiments.resnet.models import ResNet18

TIDAL = p_schedule.cosine_tidal(-0.5, 0.5, period_steps=100)
SQUARE = p_schedule.square_tidal(0.25, -0.25, every_steps=5)
# The paper's schedule: a pulse of Adam (p = 1/2), then a square tide. Short
# phases, so that every value is taken within the rounds of one run.
PULSE = p_schedule.pulse_tidal(
    0.5, 3, p_schedule.square_tidal(0.25, -0.25, every_steps=5)
)
# XLA CPU compiler option (default 256); "512-bit" candidates are built with it.
WIDE_VECTORS = {"xla_cpu_prefer_vector_width": 512}


def resnet18() -> nnx.Module:
    """The examples' CIFAR ResNet-18: 62 parameter leaves, 11.17 M float32."""
    return ResNet18(num_classes=10, in_features=3, rngs=nnx.Rngs(0))


def wide_vector_options(names: Any) -> dict[str, dict[str, Any]]:
    """Compiler options for the candidates whose name ends in "512-bit"."""
    return {n: dict(WIDE_VECTORS) for n in names if n.endswith("512-bit")}


def machine() -> dict[str, Any]:
    """The device and host the figures belong to."""
    cpu = "unknown"
    if Path("/proc/cpuinfo").exists():
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "devices": [str(d) for d in jax.devices()],
        "platform": jax.devices()[0].platform,
        "cpu_model": cpu,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "optax": optax.__version__,
        "flax": flax.__version__,
        "loadavg_start": list(os.getloadavg()),
    }


def keep_freed_memory() -> bool:
    """Stops glibc from returning large freed buffers to the OS.

    Buffers above glibc's mmap threshold (32 MiB at most, here: the flat
    vector, the 45 MB update) are otherwise unmapped when freed and the next
    step page-faults fresh zeroed pages, a cost of the allocator, not of the
    optimizer, that swamps the flat-vector figures. A train loop that donates
    its buffers does not pay it either. XLA's worker threads allocate the
    temporaries of a step (the update and the reference of
    ``normalize="rms"``, say) from glibc's per-thread arenas, whose heaps are
    at most 64 MiB, so a larger request is mmapped whatever the threshold:
    one arena for the process (``M_ARENA_MAX = 1``, set before XLA's threads
    start) keeps those on the main heap too. Without it, 22 k page faults
    per step (89 MB) made ``normalize="rms"`` cost 3.7-5x Adam instead of
    about 2x. Returns whether it took effect.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_arena_max, m_trim_threshold, m_mmap_threshold = -8, -1, -3
    ok = libc.mallopt(m_arena_max, 1) == 1
    ok = ok and libc.mallopt(m_mmap_threshold, 1 << 30) == 1
    return ok and libc.mallopt(m_trim_threshold, 1 << 31 - 1) == 1


def tree_bytes(tree: Any) -> int:
    return int(sum(x.nbytes for x in jax.tree.leaves(tree)))


def interleave(
    calls: dict[str, Callable[[], float]], rounds: int, warmup: int = 2
) -> dict[str, np.ndarray]:
    """Seconds per call for each candidate, calling them round-robin."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    for r in range(warmup + rounds):
        for name, call in calls.items():
            dt = call()
            if r >= warmup:
                times[name].append(dt)
    return {name: np.asarray(t) for name, t in times.items()}


def summarise(times: dict[str, np.ndarray], reference: str) -> dict[str, Any]:
    """Medians of time, of the per-round ratio and of the per-round difference."""
    ref = times[reference]
    return {
        name: {
            "median_ms": float(np.median(t) * 1e3),
            "ratio": float(np.median(t / ref)),
            "ratio_iqr": [float(q) for q in np.percentile(t / ref, [25, 75])],
            "overhead_ms": float(np.median(t - ref) * 1e3),
        }
        for name, t in times.items()
    }


def summarise_by_reference(
    times: dict[str, np.ndarray], cands: dict[str, tuple[str, Any]]
) -> dict[str, dict[str, Any]]:
    """:func:`summarise` per group of candidates sharing a reference."""
    out: dict[str, dict[str, Any]] = {}
    for ref in dict.fromkeys(r for r, _ in cands.values()):
        names = [n for n, (r, _) in cands.items() if r == ref]
        rows = summarise({n: times[n] for n in names}, ref)
        out.update({n: {**rows[n], "reference": ref} for n in names})
    return {n: out[n] for n in cands}


def select_candidates(
    cands: dict[str, tuple[str, Any]], only: list[str] | None
) -> dict[str, tuple[str, Any]]:
    """The candidates named in ``only`` and their references, in table order.

    ``None`` keeps them all; names of other sections' candidates are ignored,
    so a section none of whose candidates is named gets none.
    """
    if only is None:
        return cands
    named = [name for name in only if name in cands]
    keep = set(named) | {cands[name][0] for name in named}
    return {name: c for name, c in cands.items() if name in keep}


def vector_width_candidates() -> dict[str, tuple[str, optax.GradientTransformation]]:
    """name -> (reference, transform); names ending in "512-bit" get the option."""
    txs = {
        "adam": optax.scale_by_adam(),
        "pexp p=0.3": nsf_optax.scale_by_pexp(p=0.3),
        "pexp cosine tidal": nsf_optax.scale_by_pexp(p=TIDAL),
    }
    cands = {name: ("adam", tx) for name, tx in txs.items()}
    cands.update({f"{name}, 512-bit": ("adam", tx) for name, tx in txs.items()})
    return cands


# ----------------------------------------------------------------------------
# 1. Update time and state bytes.


def per_leaf_scalars() -> optax.GradientTransformation:
    """A state of one 0-d float32 per parameter leaf, passed through unchanged.

    What ``nsf_sgd`` keeps as the second moment of a static p = 0 (placeholders
    that keep the params' structure for the gain readers), on its own: chained
    after ``optax.sgd`` it times what those leaves cost a step (arguments and
    results of the compiled call), with no arithmetic.
    """

    def init(params):
        return jax.tree.map(lambda _: jnp.zeros([], jnp.float32), params)

    def update(updates, state, params=None):
        del params
        return updates, state

    return optax.GradientTransformation(init, update)


def adam_then_sums(complex_sums: bool) -> optax.GradientTransformation:
    """``optax.scale_by_adam``, each leaf scaled by ``sum(nu**2) / sum(mu**2)``.

    The floor of ``normalize="rms"``'s form on XLA's CPU backend: the sums of
    squares need the new moments, which a reduction can only read after the
    loops that write them (no multi-output fusion), so Adam's step plus one
    reduction over both moments and a scalar in the parameter write, with no
    other arithmetic. ``complex_sums``: both sums in the one loop of
    :func:`nsf_optax._power.sums_of_squares` (the form ``normalize="rms"``
    uses); otherwise two real ``jnp.sum`` calls (library reductions, which
    take arrays: given the update's expression they materialise what the two
    sums share).
    """
    adam = optax.scale_by_adam()

    def update(updates, state, params=None):
        updates, state = adam.update(updates, state, params)

        def leaf(u, m, v):
            if complex_sums:
                sum_m, sum_v = _power.sums_of_squares(lambda a, b: (a, b), (m, v))
            else:
                sum_m, sum_v = jnp.sum(jnp.square(m)), jnp.sum(jnp.square(v))
            return u * (sum_v / sum_m)

        return jax.tree.map(leaf, updates, state.mu, state.nu), state

    return optax.GradientTransformation(adam.init, update)


def update_candidates() -> dict[str, tuple[str, optax.GradientTransformation]]:
    """name -> (reference name, transform)."""
    bf16 = jnp.bfloat16
    inject = optax.inject_hyperparams
    return {
        "adam": ("adam", optax.scale_by_adam()),
        "pexp p=0.5": ("adam", nsf_optax.scale_by_pexp(p=0.5)),
        "pexp p=0.25": ("adam", nsf_optax.scale_by_pexp(p=0.25)),
        "pexp p=-0.5": ("adam", nsf_optax.scale_by_pexp(p=-0.5)),
        "pexp p=0": ("adam", nsf_optax.scale_by_pexp(p=0.0)),
        "pexp p=0.3": ("adam", nsf_optax.scale_by_pexp(p=0.3)),
        "pexp cosine tidal": ("adam", nsf_optax.scale_by_pexp(p=TIDAL)),
        "pexp square tidal": ("adam", nsf_optax.scale_by_pexp(p=SQUARE)),
        "pexp pulse tidal": ("adam", nsf_optax.scale_by_pexp(p=PULSE)),
        "pexp p=0.25 rms": (
            "adam",
            nsf_optax.scale_by_pexp(p=0.25, normalize="rms"),
        ),
        "pexp cosine tidal rms": (
            "adam",
            nsf_optax.scale_by_pexp(p=TIDAL, normalize="rms"),
        ),
        "adam + sums (floor of rms)": ("adam", adam_then_sums(complex_sums=True)),
        "adam + two jnp.sum": ("adam", adam_then_sums(complex_sums=False)),
        "adam mu bf16": ("adam", optax.scale_by_adam(mu_dtype=bf16)),
        "pexp cosine tidal mu bf16": (
            "adam",
            nsf_optax.scale_by_pexp(p=TIDAL, mu_dtype=bf16),
        ),
        "sgd": ("sgd", optax.sgd(0.1, momentum=0.9)),
        "nsf_sgd p=0": ("sgd", nsf_optax.nsf_sgd(0.1, 0.9, p=0.0)),
        "sgd + per-leaf scalars": (
            "sgd",
            optax.chain(optax.sgd(0.1, momentum=0.9), per_leaf_scalars()),
        ),
        "nsf_sgd cosine tidal": ("sgd", nsf_optax.nsf_sgd(0.1, 0.9, p=TIDAL)),
        "nsf_sgd square tidal": ("sgd", nsf_optax.nsf_sgd(0.1, 0.9, p=SQUARE)),
        "nsf_sgd pulse tidal": ("sgd", nsf_optax.nsf_sgd(0.1, 0.9, p=PULSE)),
        # Hyperparameters traced by inject_hyperparams, against injected Adam.
        "adam injected": ("adam injected", inject(optax.scale_by_adam)()),
        "pexp p=0.5 injected": ("adam injected", inject(nsf_optax.scale_by_pexp)()),
        "pexp p=0.5 injected, static p": (
            "adam injected",
            inject(nsf_optax.scale_by_pexp, static_args="p")(),
        ),
        "pexp p=0.3 injected": (
            "adam injected",
            inject(nsf_optax.scale_by_pexp)(p=0.3),
        ),
        "pexp pulse tidal injected, static p": (
            "adam injected",
            inject(nsf_optax.scale_by_pexp, static_args="p")(p=PULSE),
        ),
    }


def bench_updates(
    grads: Any,
    rounds: int,
    cands: dict[str, tuple[str, optax.GradientTransformation]] | None = None,
    compiler_options: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Median time of one optimizer step: ``update`` then ``apply_updates``.

    Params and state are donated, as in a train step, so XLA fuses the update
    into the in-place parameter write (``u`` is never materialised) and no
    step allocates; the gradients are an input, like the backward pass's.
    ``compiler_options`` maps a candidate name to the XLA options its step is
    compiled with (others use the defaults).
    """
    cands = update_candidates() if cands is None else cands
    compiler_options = compiler_options or {}
    calls, bytes_ = {}, {}
    for name, (_, tx) in cands.items():
        params = jax.tree.map(jnp.zeros_like, grads)
        state = tx.init(params)
        bytes_[name] = tree_bytes(state)

        def step(params, state, grads, tx=tx):
            updates, state = tx.update(grads, state, params)
            return optax.apply_updates(params, updates), state

        step = jax.jit(step, donate_argnums=(0, 1)).lower(params, state, grads)
        step = step.compile(compiler_options=compiler_options.get(name))
        box = [params, state]

        def call(step=step, box=box) -> float:
            t = time.perf_counter()
            box[0], box[1] = step(box[0], box[1], grads)
            jax.block_until_ready(box)
            return time.perf_counter() - t

        calls[name] = call
    out = summarise_by_reference(interleave(calls, rounds), cands)
    for name, row in out.items():
        row["state_bytes"] = bytes_[name]
        row["state_bytes_ratio"] = bytes_[name] / bytes_[row["reference"]]
    return out


def bench_vector_width(
    grads: Any, rounds: int, only: list[str] | None = None
) -> dict[str, Any]:
    """Updates compiled for 512-bit vectors against default-compiled Adam."""
    cands = select_candidates(vector_width_candidates(), only)
    return bench_updates(grads, rounds, cands, wide_vector_options(cands))


def small_tree() -> dict[str, jax.Array]:
    """A small MLP's parameters (4 leaves, 8.5 k float32): dispatch-bound."""
    key = jax.random.PRNGKey(2)
    shapes = {"w1": (64, 128), "b1": (128,), "w2": (128, 10), "b2": (10,)}
    return {
        name: 1e-3 * jax.random.normal(jax.random.fold_in(key, i), shape)
        for i, (name, shape) in enumerate(shapes.items())
    }


def eager_candidates() -> dict[str, tuple[str, optax.GradientTransformation]]:
    """name -> (reference name, transform), for eager updates."""
    return {
        "adam": ("adam", optax.adam(1e-3)),
        "nsf p=0.5": ("adam", nsf_optax.nsf(1e-3)),
        "nsf p=0.3": ("adam", nsf_optax.nsf(1e-3, p=0.3)),
        "nsf cosine tidal": ("adam", nsf_optax.nsf(1e-3, p=TIDAL)),
        "nsf pulse tidal": ("adam", nsf_optax.nsf(1e-3, p=PULSE)),
        "nsf pulse tidal rms": (
            "adam",
            nsf_optax.nsf(1e-3, p=PULSE, normalize="rms"),
        ),
        "sgd": ("sgd", optax.sgd(0.1, momentum=0.9)),
        "nsf_sgd p=0": ("sgd", nsf_optax.nsf_sgd(0.1, 0.9)),
        "nsf_sgd pulse tidal": ("sgd", nsf_optax.nsf_sgd(0.1, 0.9, p=PULSE)),
    }


def bench_eager(
    grads: Any,
    rounds: int,
    cands: dict[str, tuple[str, optax.GradientTransformation]] | None = None,
) -> dict[str, Any]:
    """Median time of one eager ``tx.update`` (no :func:`jax.jit` around it).

    Each candidate takes one warm-up step before the rounds (the NSF update
    compiles there, once); optax's eager update dispatches its operations one
    by one, as it always does. The state is carried from step to step, as in
    an eager training loop.
    """
    cands = eager_candidates() if cands is None else cands
    calls = {}
    for name, (_, tx) in cands.items():
        params = jax.tree.map(jnp.zeros_like, grads)
        box = [tx.init(params)]
        _, box[0] = tx.update(grads, box[0], params)
        jax.block_until_ready(box)

        def call(tx=tx, box=box, params=params) -> float:
            t = time.perf_counter()
            updates, box[0] = tx.update(grads, box[0], params)
            jax.block_until_ready((updates, box[0]))
            return time.perf_counter() - t

        calls[name] = call
    return summarise_by_reference(interleave(calls, rounds), cands)


# ----------------------------------------------------------------------------
# 2. The single-pass floor.


def build_floor(extra_flags: Sequence[str] = ()) -> ctypes.CDLL | None:
    """Compiles _floor.c (with ``extra_flags``); ``None`` when there is no C
    compiler. ``adam_single_pass`` gets its argument types; the other loops'
    are set by ``bench_floor_power``."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return None
    out = Path(tempfile.mkdtemp()) / "floor.so"
    src = Path(__file__).resolve().parent / "_floor.c"
    flags = ["-O3", "-march=native", "-fno-math-errno", "-fopenmp", "-shared", "-fPIC"]
    flags += list(extra_flags)
    try:
        subprocess.run([cc, *flags, str(src), "-o", str(out), "-lm"], check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    # OpenMP threads must not spin between calls: XLA's threads run then.
    os.environ.setdefault("OMP_WAIT_POLICY", "passive")
    lib = ctypes.CDLL(str(out))
    f32p = np.ctypeslib.ndpointer(np.float32, flags="C_CONTIGUOUS")
    f32 = ctypes.c_float
    lib.adam_single_pass.argtypes = [f32p, f32p, f32p, f32p, ctypes.c_long]
    lib.adam_single_pass.argtypes += [f32] * 5
    lib.adam_single_pass.restype = None
    return lib


def bench_floor(n: int, rounds: int) -> dict[str, Any] | None:
    """The single-pass C Adam step against ``optax.scale_by_adam`` + apply."""
    lib = build_floor()
    if lib is None:
        return None
    rng = np.random.default_rng(0)
    g_np = (rng.standard_normal(n) * 1e-3).astype(np.float32)
    m_np, v_np = np.zeros(n, np.float32), np.zeros(n, np.float32)
    p_np = np.zeros(n, np.float32)
    g = jnp.asarray(g_np)
    tx = optax.scale_by_adam()

    def adam_step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    step = jax.jit(adam_step, donate_argnums=(0, 1))
    box = [jnp.zeros(n), tx.init(g)]
    count = [0]

    def inv_bias_corrections(count: int) -> tuple[np.float32, np.float32]:
        one = np.float32(1)
        return (
            one / (one - np.float32(0.9) ** count),
            one / (one - np.float32(0.999) ** count),
        )

    def adam() -> float:
        t = time.perf_counter()
        box[0], box[1] = step(box[0], box[1], g)
        jax.block_until_ready(box)
        return time.perf_counter() - t

    def floor() -> float:
        count[0] += 1
        c1, c2 = inv_bias_corrections(count[0])
        t = time.perf_counter()
        lib.adam_single_pass(g_np, m_np, v_np, p_np, n, 0.9, 0.999, c1, c2, 1e-8)
        return time.perf_counter() - t

    times = interleave({"adam": adam, "single-pass C": floor}, rounds)
    # Same maths as optax (checked once, from zero state, after the timing).
    params, _ = adam_step(jnp.zeros(n), tx.init(g), g)
    m_np[:], v_np[:], p_np[:] = 0, 0, 0
    c1, c2 = inv_bias_corrections(1)
    lib.adam_single_pass(g_np, m_np, v_np, p_np, n, 0.9, 0.999, c1, c2, 1e-8)
    np.testing.assert_allclose(p_np, np.asarray(params), rtol=1e-5)
    return summarise(times, "adam")


# ----------------------------------------------------------------------------
# 3. Full train step.


def bench_train_step(batch: int, rounds: int) -> dict[str, Any]:
    model = resnet18()
    graphdef, params, batch_stats = nnx.split(model, nnx.Param, nnx.BatchStat)
    key = jax.random.PRNGKey(0)
    x = jax.random.normal(key, (batch, 32, 32, 3))
    y = jax.random.randint(key, (batch,), 0, 10)
    cands = {
        "sgd": ("sgd", optax.sgd(0.05, momentum=0.9)),
        "nsf_sgd cosine tidal": ("sgd", nsf_optax.nsf_sgd(0.05, 0.9, p=TIDAL)),
        "nsf_sgd square tidal": ("sgd", nsf_optax.nsf_sgd(0.05, 0.9, p=SQUARE)),
        "adam": ("adam", optax.adam(1e-3)),
        "nsf cosine tidal": ("adam", nsf_optax.nsf(1e-3, p=TIDAL)),
    }
    options: dict[str, dict[str, Any]] = {}
    if jax.devices()[0].platform == "cpu":
        # Both compiled for 512-bit vectors (see bench_vector_width).
        cands["sgd, 512-bit"] = ("sgd, 512-bit", optax.sgd(0.05, momentum=0.9))
        cands["nsf_sgd cosine tidal, 512-bit"] = (
            "sgd, 512-bit",
            nsf_optax.nsf_sgd(0.05, 0.9, p=TIDAL),
        )
        options = wide_vector_options(cands)

    def make_step(tx: optax.GradientTransformation) -> Callable:
        def loss_fn(params, batch_stats):
            model = nnx.merge(graphdef, params, batch_stats, copy=True)
            logits = model(x)
            loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
            return loss, nnx.state(model, nnx.BatchStat)

        def step(params, batch_stats, opt_state):
            grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
            (loss, batch_stats), grads = grad_fn(params, batch_stats)
            updates, opt_state = tx.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), batch_stats, opt_state, loss

        return jax.jit(step, donate_argnums=(0, 1, 2))

    calls = {}
    for name, (_, tx) in cands.items():
        box = [jax.tree.map(jnp.copy, (params, batch_stats)), None]
        box[1] = tx.init(box[0][0])
        step = make_step(tx).lower(box[0][0], box[0][1], box[1])
        step = step.compile(compiler_options=options.get(name))

        def call(step=step, box=box) -> float:
            t = time.perf_counter()
            p, b, o, loss = step(box[0][0], box[0][1], box[1])
            jax.block_until_ready((p, b, o, loss))
            box[0], box[1] = (p, b), o
            return time.perf_counter() - t

        calls[name] = call
    return summarise_by_reference(interleave(calls, rounds), cands)


# ----------------------------------------------------------------------------


def print_table(title: str, rows: dict[str, Any]) -> None:
    print(f"\n{title}")
    for name, r in rows.items():
        extra = ""
        if "state_bytes" in r:
            extra = f"  state {r['state_bytes'] / 2**20:7.1f} MiB"
            extra += f" ({r['state_bytes_ratio']:.2f}x)"
        ref = r.get("reference", "adam")
        print(
            f"  {name:30s} {r['median_ms']:8.2f} ms  {r['ratio']:.3f}x {ref:12s}"
            f"  [IQR {r['ratio_iqr'][0]:.2f}-{r['ratio_iqr'][1]:.2f}]"
            f"  {r['overhead_ms']:+7.2f} ms{extra}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    parser.add_argument("--out", default="bench_results.json", help="JSON path")
    parser.add_argument("--batch", type=int, default=16, help="train-step batch")
    parser.add_argument(
        "--sections",
        default="update,floor,train_step,eager,vector_width",
        help="comma-separated subset of update,floor,train_step,eager,vector_width",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="NAME",
        help="time only these candidates (and their references) in the update, "
        "eager and vector_width sections",
    )
    args = parser.parse_args()
    sections = set(args.sections.split(","))
    if args.only is not None:
        known = {*update_candidates(), *eager_candidates(), *vector_width_candidates()}
        unknown = sorted(set(args.only) - known)
        if unknown:  # a typo would otherwise time nothing
            parser.error(f"no such candidate: {', '.join(unknown)}")
    rounds = 15 if args.quick else 60
    step_rounds = 6 if args.quick else 40
    t0 = time.perf_counter()
    malloc_kept = keep_freed_memory()
    results: dict[str, Any] = {
        "glibc_keeps_freed_memory": malloc_kept,
        "command": " ".join(["python", *sys.argv]),
        "machine": machine(),
        "rounds": {"update": rounds, "train_step": step_rounds},
        "train_batch": args.batch,
    }

    params = nnx.state(resnet18(), nnx.Param).to_pure_dict()
    key = jax.random.PRNGKey(1)
    leaves, treedef = jax.tree.flatten(params)
    grads = jax.tree.unflatten(
        treedef,
        [
            1e-3 * jax.random.normal(jax.random.fold_in(key, i), x.shape)
            for i, x in enumerate(leaves)
        ],
    )
    n = sum(x.size for x in leaves)
    results["tree"] = {"leaves": len(leaves), "params": int(n)}

    update_cands = select_candidates(update_candidates(), args.only)
    if "update" in sections and update_cands:
        results["update_resnet18_tree"] = bench_updates(grads, rounds, update_cands)
        print_table(
            f"update, ResNet-18 tree ({len(leaves)} leaves, {n} f32)",
            results["update_resnet18_tree"],
        )
        flat = jax.random.normal(key, (n,)) * 1e-3
        results["update_flat_vector"] = bench_updates(flat, rounds, update_cands)
        print_table(f"update, flat vector ({n} f32)", results["update_flat_vector"])
    if "floor" in sections:
        results["floor_flat_vector"] = bench_floor(n, rounds)
        if results["floor_flat_vector"] is not None:
            print_table("single-pass floor, flat vector", results["floor_flat_vector"])
    if "train_step" in sections:
        results["train_step"] = bench_train_step(args.batch, step_rounds)
        print_table(
            f"train step, ResNet-18, batch {args.batch}x32x32x3",
            results["train_step"],
        )
    eager_cands = select_candidates(eager_candidates(), args.only)
    if "eager" in sections and eager_cands:
        small = small_tree()
        results["eager_small_tree"] = bench_eager(small, rounds, eager_cands)
        print_table(
            f"eager update, small tree ({sum(x.size for x in small.values())} f32)",
            results["eager_small_tree"],
        )
        results["eager_resnet18_tree"] = bench_eager(grads, rounds, eager_cands)
        print_table("eager update, ResNet-18 tree", results["eager_resnet18_tree"])
    vw_only = select_candidates(vector_width_candidates(), args.only)
    if "vector_width" in sections and vw_only and jax.devices()[0].platform == "cpu":
        results["vector_width"] = bench_vector_width(grads, rounds, args.only)
        print_table(
            "update, ResNet-18 tree, compiled for 512-bit vectors",
            results["vector_width"],
        )
    results["machine"]["loadavg_end"] = list(os.getloadavg())
    results["seconds"] = time.perf_counter() - t0
    Path(args.out).write_text(json.dumps(results, indent=1))
    print(f"\n{results['machine']['cpu_model']}, {results['machine']['devices']}")
    print(f"load average {results['machine']['loadavg_start']} -> ", end="")
    print(f"{results['machine']['loadavg_end']}; {results['seconds']:.0f} s")


if __name__ == "__main__":
    main()
