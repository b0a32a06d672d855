"""The spectral-bias experiment's runs: data, tuning and evaluation batches.

:func:`train_normalize` tunes every schedule's learning rate and trains it on the
evaluation seeds, all runs of one ``normalize`` through one compiled program
(:func:`~nsf_optax.experiments.bias.model.make_train_program`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from nsf_optax.experiments.bias.model import (
    BiasTrace,
    init_relu_mlp,
    make_sine_target,
    make_train_program,
)
from nsf_optax.experiments.bias.settings import (
    BiasRow,
    BiasSettings,
    Normalize,
    row_key,
)

__all__ = ["draw_data", "p_values", "take", "train_normalize"]


@functools.lru_cache(maxsize=4)
def _draw(
    width: int, depth: int, freqs: tuple[int, ...], num_points: int, amplitude: float
):
    """Jitted init and target draw of one seed (cached: one compilation)."""

    @jax.jit
    def draw(seed):
        k_init, k_target = jax.random.split(jax.random.key(seed))
        params = init_relu_mlp(k_init, width, depth)
        f, _ = make_sine_target(k_target, freqs, num_points, amplitude)
        return params, f

    return draw


def draw_data(settings: BiasSettings, seeds: Sequence[int]):
    """Init and target of each seed, stacked, as NumPy arrays.

    One seed per call: a vmapped draw rounds ``sin`` differently with the batch
    size, and the training is chaotic enough to amplify one ulp; this way a seed's
    data do not depend on which other seeds are drawn.
    """
    s = settings
    amplitude = (
        math.sqrt(2 / len(s.freqs)) if s.amplitude is None else float(s.amplitude)
    )
    draw = _draw(s.width, s.depth, tuple(s.freqs), s.num_points, amplitude)
    # NumPy from here: slicing and padding jax arrays eagerly compiles each op.
    drawn = [jax.tree.map(np.asarray, draw(seed)) for seed in seeds]
    return jax.tree.map(lambda *a: np.stack(a), *drawn)


@functools.lru_cache(maxsize=4)
def p_values(settings: BiasSettings) -> dict[str, np.ndarray]:
    """Every schedule's exponent at steps ``0 .. T - 1`` (one compilation)."""
    schedules = settings.schedules()
    every_p = jax.jit(
        lambda c: jnp.stack(
            [jnp.broadcast_to(fn(c), c.shape) for fn, _ in schedules.values()]
        )
    )(jnp.arange(settings.num_steps))
    return dict(zip(schedules, np.asarray(every_p, np.float32), strict=True))


def take(tree, idx):
    return jax.tree.map(lambda a: a[idx], tree)


def _run_batched(program, chunk: int, params, target, lr, p_steps) -> BiasTrace:
    """Runs ``program`` over the leading axis in fixed-size chunks (one compile)."""
    n = lr.shape[0]
    pad = (-n) % chunk

    def padded(a):
        a = np.asarray(a)
        return np.concatenate([a, np.repeat(a[-1:], pad, axis=0)]) if pad else a

    params, target, lr, p_steps = jax.tree.map(padded, (params, target, lr, p_steps))
    out = []
    for i in range(0, n + pad, chunk):
        sl = slice(i, i + chunk)
        trace = program(take(params, sl), target[sl], lr[sl], p_steps[sl])
        out.append(jax.tree.map(np.asarray, trace))
    return BiasTrace(*(np.concatenate(f)[:n] for f in zip(*out, strict=True)))


def _run_score(loss: jax.Array | np.ndarray) -> np.ndarray:
    """Mean of log10 training loss over the run; inf if any step is not finite.

    The area under the log-loss curve rewards learning early as well as a
    low final loss, and is smoother in the learning rate than the final loss
    (full-batch runs near the edge of stability end up chaotic).
    """
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        score = np.mean(np.log10(loss), axis=-1)
    return np.where(np.isfinite(score), score, np.inf)


def _tune(
    s: BiasSettings, program, labels: Sequence[str], pv, tune_params, tune_target
) -> np.ndarray:
    """Mean over ``tune_seeds`` of each run's score, ``[rows, lr_grid]``."""
    n_tune, n_lr = len(s.tune_seeds), len(s.lr_grid)
    # Tuning: rows x grid x tune seeds, one batch.
    idx = [
        (i, j, t)
        for i in range(len(labels))
        for j in range(n_lr)
        for t in range(n_tune)
    ]
    which = np.asarray([t for _, _, t in idx])
    trace = _run_batched(
        program,
        len(labels) * len(s.seeds),
        take(tune_params, which),
        tune_target[which],
        np.asarray([s.lr_grid[j] for _, j, _ in idx], np.float32),
        np.stack([pv[labels[i]] for i, _, _ in idx]),
    )
    return _run_score(trace.loss).reshape(len(labels), n_lr, n_tune).mean(-1)


def _rows(
    s: BiasSettings, normalize: Normalize, labels: Sequence[str], pv, score
) -> list[BiasRow]:
    """One :class:`BiasRow` per schedule: its lowest-scoring learning rate."""
    schedules, n_lr, rows = s.schedules(), len(s.lr_grid), []
    for i, lb in enumerate(labels):
        j = int(np.argmin(score[i]))
        rows.append(
            BiasRow(
                key=row_key(lb, normalize),
                schedule=lb,
                normalize=normalize,
                description=schedules[lb][1],
                mean_p=float(np.mean(pv[lb], dtype=np.float64)),
                tune_score=tuple(float(v) for v in score[i]),
                lr=s.lr_grid[j],
                lr_at_edge=n_lr > 1 and j in (0, n_lr - 1),
            )
        )
    return rows


def train_normalize(
    s: BiasSettings, normalize: Normalize, data
) -> tuple[list[BiasRow], dict[str, BiasTrace]]:
    """Tunes and trains every schedule with one ``normalize``.

    Args:
      s: the settings.
      normalize: ``None`` or ``"rms"``.
      data: :func:`draw_data` of ``tune_seeds + seeds``.

    Returns:
      ``(rows, traces)``: a :class:`BiasRow` per schedule and its traces on
      ``seeds``, keyed by the row key.
    """
    pv = p_values(s)
    labels = list(pv)
    params, target = data
    n_tune, n_seeds = len(s.tune_seeds), len(s.seeds)
    program = make_train_program(
        freqs=s.freqs,
        num_points=s.num_points,
        num_steps=s.num_steps,
        probe_every=s.probe_every,
        b1=s.b1,
        b2=s.b2,
        eps=s.eps,
        normalize=normalize,
    )
    tune = (take(params, slice(n_tune)), target[:n_tune])
    score = _tune(s, program, labels, pv, *tune)
    rows = _rows(s, normalize, labels, pv, score)
    # Evaluation: rows x seeds at the chosen learning rates.
    which = np.tile(np.arange(n_seeds), len(labels))
    trace = _run_batched(
        program,
        len(labels) * n_seeds,
        take(take(params, slice(n_tune, None)), which),
        target[n_tune:][which],
        np.repeat(np.asarray([r.lr for r in rows], np.float32), n_seeds),
        np.repeat(np.stack([pv[lb] for lb in labels]), n_seeds, axis=0),
    )
    traces = {}
    for i, row in enumerate(rows):
        sl = slice(i * n_seeds, (i + 1) * n_seeds)
        traces[row.key] = BiasTrace(*(f[sl] for f in trace))
    return rows, traces
