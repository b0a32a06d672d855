"""Does ``p`` steer a network's spectral bias? The paper's thesis on a ReLU MLP.

Rahaman et al.'s spectral-bias experiment (a ReLU MLP fitting a sum of
sinusoids, full batch) trained with :func:`nsf_optax.nsf` at constant ``p``,
a cosine-tidal and a pulse-tidal ``p``, each with and without
``normalize="rms"``, and scored against three readings of the paper's
Sec. 3.2-3.3 thesis (see :func:`bias_verdicts`).

Usage::

  python -m nsf_optax.experiments.bias            # table and verdicts
  python -m nsf_optax.experiments.bias --json     # one JSON object
  python -m nsf_optax.experiments.bias --quick    # a small size (CI)

The model, target and the batched training program are in
:mod:`nsf_optax.experiments.bias.model`, the verdicts in
:mod:`nsf_optax.experiments.bias.verdicts`; their public names are re-exported
here.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
import sys
from collections.abc import Sequence
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from nsf_optax import p_schedule
from nsf_optax.experiments.bias.model import (
    BiasTrace,
    init_relu_mlp,
    make_sine_target,
    make_train_program,
    relu_mlp_apply,
)
from nsf_optax.experiments.bias.verdicts import _row_key, bias_verdicts
from nsf_optax.spectral._frequency import time_to_learn

__all__ = [
    "BiasResult",
    "BiasRow",
    "BiasSettings",
    "BiasTrace",
    "bias_experiment",
    "bias_verdicts",
    "format_table",
    "init_relu_mlp",
    "main",
    "make_sine_target",
    "relu_mlp_apply",
    "result_json",
]

Normalize = Literal["rms"] | None


@dataclasses.dataclass(frozen=True)
class BiasSettings:
    r"""Settings of the spectral-bias experiment (defaults: the published run).

    Attributes:
      freqs: the target's frequencies :math:`k` (cycles on ``[0, 1]``), equal
        amplitudes, random phases per seed.
      num_points: the uniform training grid :math:`x_n = n / N` (full batch).
      amplitude: every sinusoid's amplitude; ``None``: :math:`\sqrt{2 / K}`, a
        target of unit RMS (larger targets make full-batch training of the
        ReLU MLP spike and lose units at the learning rates that learn the
        high band within ``num_steps``).
      width: hidden units per layer.
      depth: hidden layers.
      num_steps: full-batch steps ``T``.
      seeds: evaluation seeds; a seed draws the init and the target's phases,
        shared by every setting (comparisons are paired over seeds).
      tune_seeds: seeds of the learning-rate search, apart from ``seeds``.
      lr_grid: the learning rates tried for every setting; each setting takes
        the one with the lowest mean log10 training loss over the run (the
        area under its log-loss curve), averaged over ``tune_seeds``.
      b1, b2, eps: :func:`nsf_optax.nsf`'s moment decays and epsilon.
      ps: the constant exponents.
      cosine: ``(min_value, max_value, period_steps)`` of the cosine tide
        (starts at ``max_value``).
      pulse: ``(pulse_value, pulse_steps, first_value, second_value,
        every_steps)``: ``pulse_value`` for ``pulse_steps``, then a square tide
        starting at ``first_value``.
      normalizes: ``None`` and/or ``"rms"``; every schedule runs with each.
      threshold: relative error below which a frequency counts as learned.
      sensitivity_thresholds: the verdicts are also reported at these.
      band_size: frequencies in the low band (the lowest) and the high band
        (the highest).
      probe_every: steps between the probes of the paper's Eq. 4 bridge.
      min_spearman: rank correlation that counts as an order (claims a, b).
      low_band_tolerance: claim (c) allows the low band this relative delay.

    Examples:
      >>> from nsf_optax.experiments.bias.experiment import BiasSettings
      >>> list(BiasSettings().schedules())[-3:]
      ['p=0.5', 'cosine[-0.5,0.5]', 'pulse[-0.5,0.5]']
    """

    freqs: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
    num_points: int = 64
    amplitude: float | None = None
    width: int = 64
    depth: int = 3
    num_steps: int = 4000
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    tune_seeds: tuple[int, ...] = (100, 101)
    lr_grid: tuple[float, ...] = tuple(
        10.0**e for e in (-2.5, -2, -1.5, -1, -0.5, 0, 0.5)
    )
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8
    ps: tuple[float, ...] = (-0.5, -0.25, 0.0, 0.25, 0.5)
    cosine: tuple[float, float, int] = (-0.5, 0.5, 1000)
    pulse: tuple[float, int, float, float, int] = (0.5, 400, -0.5, 0.5, 400)
    normalizes: tuple[Normalize, ...] = (None, "rms")
    threshold: float = 0.2
    sensitivity_thresholds: tuple[float, ...] = (0.1, 0.3)
    band_size: int = 3
    probe_every: int = 400
    min_spearman: float = 0.8
    low_band_tolerance: float = 0.1

    @classmethod
    def quick(cls) -> BiasSettings:
        """A small size that runs in well under a minute (CI, notebooks)."""
        return cls(
            freqs=(1, 2, 3, 4, 5, 6),
            num_points=32,
            width=16,
            depth=2,
            num_steps=400,
            seeds=(0, 1),
            tune_seeds=(100,),
            lr_grid=(1e-2, 1e-1, 1.0),
            cosine=(-0.5, 0.5, 200),
            pulse=(0.5, 40, -0.5, 0.5, 40),
            band_size=2,
            probe_every=100,
        )

    def schedules(self) -> dict[str, tuple[optax.Schedule, dict[str, Any]]]:
        """``{label: (p schedule, description)}``: constant p, cosine, pulse."""
        out = {
            f"p={p:g}": (p_schedule.constant(p), {"kind": "constant", "p": p})
            for p in self.ps
        }
        lo, hi, period = self.cosine
        out[f"cosine[{lo:g},{hi:g}]"] = (
            p_schedule.cosine_tidal(lo, hi, period),
            {
                "kind": "cosine_tidal",
                "min_value": lo,
                "max_value": hi,
                "period_steps": period,
            },
        )
        value, steps, first, second, every = self.pulse
        out[f"pulse[{first:g},{second:g}]"] = (
            p_schedule.pulse_tidal(
                value, steps, p_schedule.square_tidal(first, second, every)
            ),
            {
                "kind": "pulse_tidal",
                "pulse_value": value,
                "pulse_steps": steps,
                "square_first": first,
                "square_second": second,
                "every_steps": every,
            },
        )
        return out


class BiasRow(NamedTuple):
    """One setting: a p schedule with one ``normalize``, its tuned learning rate."""

    key: str  # e.g. "p=0.5", "cosine[-0.5,0.5] rms"
    schedule: str  # the schedule's label
    normalize: Normalize
    description: dict[str, Any]
    mean_p: float  # time average of p over the run
    tune_score: tuple[float, ...]  # mean log10 loss over the run, per lr_grid
    lr: float  # the chosen one (lowest score)
    lr_at_edge: bool  # the chosen lr is the grid's first or last


class BiasResult(NamedTuple):
    """Everything :func:`bias_experiment` measured (``S`` seeds, ``K`` freqs)."""

    settings: BiasSettings
    rows: list[BiasRow]
    errors: dict[str, np.ndarray]  # [S, T + 1, K] relative error after t updates
    loss: dict[str, np.ndarray]  # [S, T + 1]
    time_to_learn: dict[str, np.ndarray]  # [S, K] first step below threshold (nan)
    probe_steps: np.ndarray  # [P]
    kernel_gain: dict[str, np.ndarray]  # [S, P, K] (see BiasTrace)
    kernel: dict[str, np.ndarray]  # [S, P, K]
    log_nu: dict[str, np.ndarray]  # [S, P, K]
    summary: dict[str, dict[str, Any]]
    verdicts: dict[str, Any]


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


def _data(settings: BiasSettings, seeds: Sequence[int]):
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
def _p_values(settings: BiasSettings) -> dict[str, np.ndarray]:
    """Every schedule's exponent at steps ``0 .. T - 1`` (one compilation)."""
    schedules = settings.schedules()
    every_p = jax.jit(
        lambda c: jnp.stack(
            [jnp.broadcast_to(fn(c), c.shape) for fn, _ in schedules.values()]
        )
    )(jnp.arange(settings.num_steps))
    return dict(zip(schedules, np.asarray(every_p, np.float32), strict=True))


def _take(tree, idx):
    return jax.tree.map(lambda a: a[idx], tree)


def _run_batched(program, chunk: int, params, target, lr, p_values) -> BiasTrace:
    """Runs ``program`` over the leading axis in fixed-size chunks (one compile)."""
    n = lr.shape[0]
    pad = (-n) % chunk

    def padded(a):
        a = np.asarray(a)
        return np.concatenate([a, np.repeat(a[-1:], pad, axis=0)]) if pad else a

    params, target, lr, p_values = jax.tree.map(padded, (params, target, lr, p_values))
    out = []
    for i in range(0, n + pad, chunk):
        sl = slice(i, i + chunk)
        trace = program(_take(params, sl), target[sl], lr[sl], p_values[sl])
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


def bias_experiment(settings: BiasSettings = BiasSettings()) -> BiasResult:
    r"""Tunes, trains and measures every setting; scores the claims.

    Every setting (a p schedule with one ``normalize``) gets its own learning
    rate from ``lr_grid``: the one with the lowest mean over the run of
    :math:`\log_{10}` training loss, averaged over ``tune_seeds`` (a diverged
    run scores :math:`+\infty`). It is then trained on ``seeds`` (the same inits
    and targets for every setting) and the per-frequency relative error
    :math:`|\hat f_\theta(k) - \hat f(k)| / |\hat f(k)|` is logged after every
    step; every ``probe_every`` steps the paper's Eq. 4 bridge is probed (see
    :class:`BiasTrace`). All runs of one ``normalize`` share one compiled
    program (``jit`` of a ``vmap`` over runs of a ``lax.scan`` over steps).

    Args:
      settings: :class:`BiasSettings`.

    Returns:
      A :class:`BiasResult`.

    Examples:
      >>> from nsf_optax.experiments.bias.experiment import (
      ...     BiasSettings,
      ...     bias_experiment,
      ... )
      >>> res = bias_experiment(BiasSettings.quick())  # about 15 s on a CPU
      >>> sorted(res.time_to_learn)[:4]
      ['cosine[-0.5,0.5]', 'cosine[-0.5,0.5] rms', 'p=-0.25', 'p=-0.25 rms']
      >>> res.time_to_learn["p=0.5"].shape  # [seeds, freqs]
      (2, 6)
      >>> sorted(result_json(res)["verdicts"])[:4]
      ['a', 'b', 'c', 'eq4']
      >>> bias_verdicts(res)[1]["b"]["holds"] == res.verdicts["b"]["holds"]
      True
      >>> print(format_table(res).splitlines()[1].split()[0])
      p=-0.5

    References:
      Rahaman et al., `On the Spectral Bias of Neural Networks
      <https://arxiv.org/abs/1806.08734>`_, ICML 2019.

      Zhang & Liu, arXiv:2509.04713, 2025, Sec. 3.2-3.3.
    """
    s = settings
    if s.num_steps % s.probe_every:
        raise ValueError("num_steps must be a multiple of probe_every.")
    if len(s.seeds) < 2:
        raise ValueError("seeds needs at least two seeds (confidence intervals).")
    if not 1 <= s.band_size <= len(s.freqs) // 2:
        raise ValueError("band_size must be in [1, len(freqs) // 2].")
    schedules = s.schedules()
    p_values = _p_values(s)
    labels = list(schedules)
    # One draw for all seeds: one compilation.
    params, target = _data(s, s.tune_seeds + s.seeds)
    n_tune = len(s.tune_seeds)
    tune_params, tune_target = _take(params, slice(n_tune)), target[:n_tune]
    eval_params, eval_target = _take(params, slice(n_tune, None)), target[n_tune:]
    n_seeds, n_lr = len(s.seeds), len(s.lr_grid)
    rows, traces = [], {}
    for normalize in s.normalizes:
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
        chunk = len(labels) * n_seeds
        # Tuning: rows x grid x tune seeds, one batch.
        idx = [
            (i, j, t)
            for i in range(len(labels))
            for j in range(n_lr)
            for t in range(n_tune)
        ]
        take = np.asarray([t for _, _, t in idx])
        trace = _run_batched(
            program,
            chunk,
            _take(tune_params, take),
            tune_target[take],
            np.asarray([s.lr_grid[j] for _, j, _ in idx], np.float32),
            np.stack([p_values[labels[i]] for i, _, _ in idx]),
        )
        score = _run_score(trace.loss).reshape(len(labels), n_lr, n_tune).mean(-1)
        chosen = {}
        for i, lb in enumerate(labels):
            j = int(np.argmin(score[i]))
            chosen[lb] = s.lr_grid[j]
            rows.append(
                BiasRow(
                    key=_row_key(lb, normalize),
                    schedule=lb,
                    normalize=normalize,
                    description=schedules[lb][1],
                    mean_p=float(np.mean(p_values[lb], dtype=np.float64)),
                    tune_score=tuple(float(v) for v in score[i]),
                    lr=s.lr_grid[j],
                    lr_at_edge=n_lr > 1 and j in (0, n_lr - 1),
                )
            )
        # Evaluation: rows x seeds at the chosen learning rates.
        take = np.tile(np.arange(n_seeds), len(labels))
        trace = _run_batched(
            program,
            chunk,
            _take(eval_params, take),
            eval_target[take],
            np.repeat(np.asarray([chosen[lb] for lb in labels], np.float32), n_seeds),
            np.repeat(np.stack([p_values[lb] for lb in labels]), n_seeds, axis=0),
        )
        for i, lb in enumerate(labels):
            sl = slice(i * n_seeds, (i + 1) * n_seeds)
            traces[_row_key(lb, normalize)] = BiasTrace(*(f[sl] for f in trace))
    steps = np.arange(s.num_steps + 1)
    ttl = {
        key: np.asarray(time_to_learn(t.errors, steps, s.threshold), np.float64)
        for key, t in traces.items()
    }
    result = BiasResult(
        settings=s,
        rows=rows,
        errors={k: t.errors for k, t in traces.items()},
        loss={k: t.loss for k, t in traces.items()},
        time_to_learn=ttl,
        probe_steps=np.arange(1, s.num_steps // s.probe_every + 1) * s.probe_every,
        kernel_gain={k: t.kernel_gain for k, t in traces.items()},
        kernel={k: t.kernel for k, t in traces.items()},
        log_nu={k: t.log_nu for k, t in traces.items()},
        summary={},
        verdicts={},
    )
    summary, verdicts = bias_verdicts(result)
    verdicts["threshold_sensitivity"] = {
        f"{t:g}": {
            c: v["holds"]
            for c, v in bias_verdicts(result, t)[1].items()
            if c in ("a", "b", "c")
        }
        for t in s.sensitivity_thresholds
    }
    return result._replace(summary=summary, verdicts=verdicts)


def result_json(result: BiasResult) -> dict[str, Any]:
    """The JSON object of the command line: settings, time to learn, verdicts.

    Returns:
      ``{"settings", "time_to_learn", "summary", "verdicts"}`` (the settings
      with a ``rows`` list: each setting's schedule, ``normalize``, mean p and
      tuned learning rate); ``time_to_learn[row][k]`` lists one step per seed
      (``None``: never). Non-finite numbers are ``None`` (strict JSON).

    Examples:
      See :func:`bias_experiment`.
    """
    s = result.settings
    return {
        "settings": {
            **dataclasses.asdict(s),
            "rows": [
                {
                    "key": r.key,
                    "schedule": r.schedule,
                    "normalize": r.normalize,
                    **r.description,
                    "mean_p": r.mean_p,
                    "lr": r.lr,
                    "tune_mean_log10_loss": list(r.tune_score),
                    "lr_at_edge": r.lr_at_edge,
                }
                for r in result.rows
            ],
        },
        "time_to_learn": {
            key: {
                str(k): [None if np.isnan(v) else int(v) for v in t[:, j]]
                for j, k in enumerate(s.freqs)
            }
            for key, t in result.time_to_learn.items()
        },
        "summary": _finite(result.summary),
        "verdicts": _finite(result.verdicts),
    }


def _finite(obj: Any) -> Any:
    """Replaces non-finite floats with None (strict JSON)."""
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def format_table(result: BiasResult) -> str:
    """The per-setting table as text (bands: log10 steps, mean +- 95 % CI).

    Examples:
      See :func:`bias_experiment`.
    """
    lines = [
        f"{'setting':<24}{'lr':>9}  {'low band':>11}  {'high band':>11}  "
        f"{'high - low':>11}  {'area H - L':>11}  learned  log10 loss"
    ]
    for row in result.rows:
        m = result.summary[row.key]

        def f(d):
            return f"{d['mean']:.2f}±{d['ci95']:.2f}"

        lines.append(
            f"{row.key:<24}{row.lr:>9.2e}{'*' if row.lr_at_edge else ' '} "
            f"{f(m['low_band_log10_steps']):>11}  {f(m['high_band_log10_steps']):>11}  "
            f"{f(m['log10_ratio_high_low']):>11}  "
            f"{f(m['log10_error_area_high_minus_low']):>11}  "
            f"{m['learned_fraction']:>6.0%}{' ' if m['complete'] else '+'}  "
            f"{m['final_log10_loss']['mean']:.2f}"
        )
    lines.append(
        "bands: log10 steps to learn, mean±95% CI over seeds; area: mean log10 "
        "error over the run"
    )
    lines.append(
        "* lr at the edge of its grid; + censored (a band frequency never learned "
        "in some seed)"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit status."""
    ap = argparse.ArgumentParser(
        prog="python -m nsf_optax.experiments.bias",
        description=(
            "Spectral bias of a ReLU MLP fitting a sum of sinusoids, trained with "
            "nsf_optax.nsf at constant p, a cosine-tidal and a pulse-tidal p, with "
            "and without normalize='rms'; time to learn each frequency over seeds "
            "and verdicts on the paper's claims (arXiv:2509.04713, Sec. 3.2)."
        ),
    )
    ap.add_argument("--quick", action="store_true", help="small size (CI)")
    ap.add_argument("--num-steps", type=int, help="override num_steps")
    ap.add_argument("--num-seeds", type=int, help="override the number of seeds")
    ap.add_argument(
        "--first-seed", type=int, default=0, help="evaluation seeds start here"
    )
    ap.add_argument("--threshold", type=float, help="override threshold")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--figures", metavar="DIR", help="save the figures (matplotlib)")
    args = ap.parse_args(argv)
    s = BiasSettings.quick() if args.quick else BiasSettings()
    if args.num_steps is not None:
        s = dataclasses.replace(s, num_steps=args.num_steps)
    if args.num_seeds is not None or args.first_seed:
        n = len(s.seeds) if args.num_seeds is None else args.num_seeds
        s = dataclasses.replace(
            s, seeds=tuple(range(args.first_seed, args.first_seed + n))
        )
    if args.threshold is not None:
        s = dataclasses.replace(s, threshold=args.threshold)
    result = bias_experiment(s)
    if args.figures:
        _save_figures(result, args.figures)
    if args.json:
        print(json.dumps(result_json(result), indent=2))
        return 0
    print(format_table(result))
    print(f"\nverdicts at relative error < {result.verdicts['threshold']:g}:")
    for name in ("a", "b", "c", "eq4"):
        v = result.verdicts[name]
        print(f"\n({name}) {v['claim']}: holds={v['holds']}")
        for case, c in v["cases"].items():
            print(f"  {case}: {json.dumps(_finite(c))}")
    print(
        "\nat other thresholds:", json.dumps(result.verdicts["threshold_sensitivity"])
    )
    return 0


def _save_figures(result: BiasResult, directory: str) -> None:
    import os

    from nsf_optax.experiments import spectral_plots as plots

    os.makedirs(directory, exist_ok=True)
    for name, fig in (
        ("bias_heatmaps.png", plots.plot_bias_heatmaps(result)),
        ("bias_time_to_learn.png", plots.plot_time_to_learn(result)),
        ("bias_eq4.png", plots.plot_eq4_bridge(result)),
    ):
        fig.savefig(os.path.join(directory, name), dpi=120)


if __name__ == "__main__":
    sys.exit(main())
