"""The paper's 1-D spectral decay table (Sec. 4.1.2) and its command line.

Usage::

  python -m nsf_optax.spectral.decay            # the table as text
  python -m nsf_optax.spectral.decay --json     # the table, verdicts and diffs
  python -m nsf_optax.spectral.decay --json --search --robustness

The model (the error ODE and the early-window fit) is in
:mod:`nsf_optax.spectral._decay_model`; its public names are re-exported here.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import math
import sys
from collections.abc import Iterable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from nsf_optax import p_schedule
from nsf_optax.spectral._decay_model import (
    PAPER_MODES,
    DecayFit,
    DecaySettings,
    DecayTable,
    DecayTrace,
    PScheduleLike,
    _linfit,
    _simulate_jit,
    fit_decay,
    simulate_decay,
)

__all__ = [
    "PAPER_MODES",
    "PAPER_TABLE",
    "SEARCH_GRID",
    "DecayFit",
    "DecaySettings",
    "DecayTable",
    "DecayTrace",
    "compare_with_paper",
    "decay_table",
    "default_rows",
    "fit_decay",
    "format_table",
    "main",
    "parse_settings",
    "robustness",
    "search_settings",
    "simulate_decay",
    "spectral_trend",
    "verdicts",
]

# The paper's Sec. 4.1.2 table (lambda_k for k = 1, 2, 4, ..., 32). The row labels
# and the tidal ranges were lost in the text extraction; they are reconstructed
# from the prose (see ``default_rows``): five constant p in increasing order, then
# the widest tidal swing, the low-pass swing and the high-pass swing.
PAPER_TABLE: dict[str, tuple[float, ...]] = {
    "p=-0.5": (0.312, 0.283, 0.366, 0.398, 0.352, 0.285),
    "p=-0.25": (0.389, 0.374, 0.391, 0.421, 0.421, 0.544),
    "p=0": (0.400, 0.400, 0.400, 0.400, 0.400, 0.400),
    "p=0.25": (0.369, 0.378, 0.393, 0.349, 0.336, 0.313),
    "p=0.5": (0.358, 0.377, 0.417, 0.323, 0.295, 0.263),
    "tidal[-0.5,0.5]": (0.634, 0.619, 0.592, 0.672, 0.703, 0.762),
    "tidal[0,0.5]": (0.406, 0.413, 0.424, 0.387, 0.377, 0.356),
    "tidal[-0.5,0]": (0.446, 0.426, 0.449, 0.502, 0.502, 0.707),
}


def default_rows(settings: DecaySettings) -> dict[str, PScheduleLike]:
    """The paper's eight rows: five constant p and three cosine-tidal ranges.

    The tidal ranges (lost in extraction) are reconstructed from the prose: the
    widest swing ``[-0.5, 0.5]`` (mean 0), a low-pass swing ``[0, 0.5]`` (compared
    with constant 0.25) and a high-pass swing ``[-0.5, 0]`` (compared with -0.25).
    Phase 0: each tidal schedule starts at its maximum.

    References:
      Zhang & Liu, arXiv:2509.04713, 2025, Sec. 4.1.2.
    """
    period = settings.tidal_period_steps
    rows: dict[str, PScheduleLike] = {
        f"p={v:g}": float(v) for v in (-0.5, -0.25, 0.0, 0.25, 0.5)
    }
    for lo, hi in ((-0.5, 0.5), (0.0, 0.5), (-0.5, 0.0)):
        rows[f"tidal[{lo:g},{hi:g}]"] = p_schedule.cosine_tidal(lo, hi, period)
    return rows


def decay_table(
    settings: DecaySettings = DecaySettings(),
    rows: Mapping[str, PScheduleLike] | None = None,
) -> DecayTable:
    """Runs the simulator for each row and fits the early window.

    Args:
      settings: the experiment's :class:`DecaySettings`.
      rows: ``{label: p}`` with ``p`` a float or a schedule; defaults to
        :func:`default_rows`.

    Returns:
      A :class:`DecayTable` (print it with :func:`format_table`).

    References:
      Zhang & Liu, arXiv:2509.04713, 2025, Sec. 4.1.2.
    """
    rows = default_rows(settings) if rows is None else rows
    amplitudes = jnp.asarray(settings.amplitudes(), jnp.float32)
    fits, traces = {}, {}
    counts = jnp.arange(settings.num_steps)
    for label, p in rows.items():
        # Schedules are evaluated ahead into per-step arrays, so every row (and
        # every setting of the same shape) shares one compilation.
        p_values = jax.vmap(p)(counts) if callable(p) else jnp.float32(p)
        p_values = jnp.broadcast_to(jnp.asarray(p_values, jnp.float32), counts.shape)
        trace = _simulate_jit(
            p_values,
            amplitudes,
            modes=tuple(settings.modes),
            eta=settings.eta,
            eps=settings.eps,
            dt=settings.dt,
            num_steps=settings.num_steps,
            num_points=settings.num_points,
            record_every=settings.record_every,
        )
        fits[label] = fit_decay(trace, settings.window)
        traces[label] = trace
    return DecayTable(
        modes=tuple(settings.modes), rows=fits, settings=settings, traces=traces
    )


def compare_with_paper(table: DecayTable) -> dict[str, float]:
    """Max and mean absolute difference of ``lam_t`` to :data:`PAPER_TABLE`.

    Only rows whose label appears in :data:`PAPER_TABLE` are compared, and only
    when the table's modes are :data:`PAPER_MODES`.

    Returns:
      ``{"max_abs_diff", "mean_abs_diff", "rows_compared"}``.

    References:
      Zhang & Liu, arXiv:2509.04713, 2025, Sec. 4.1.2.
    """
    if tuple(table.modes) != PAPER_MODES:
        raise ValueError(f"modes must be {PAPER_MODES} to compare with the paper.")
    diffs = [
        np.abs(fit.lam_t - np.asarray(PAPER_TABLE[label]))
        for label, fit in table.rows.items()
        if label in PAPER_TABLE
    ]
    if not diffs:
        raise ValueError("no row of the table is in PAPER_TABLE.")
    d = np.concatenate(diffs)
    return {
        "max_abs_diff": float(d.max()),
        "mean_abs_diff": float(d.mean()),
        "rows_compared": len(diffs),
    }


def format_table(table: DecayTable, *, paper: bool = True) -> str:
    """The table as text: lambda_k (R^2) against t and tau, paper rows beside."""
    head = "row".ljust(17) + "".join(f"k={k:<13d}" for k in table.modes)
    lines = [head]
    for label, fit in table.rows.items():
        pairs = zip(fit.lam_t, fit.r2_t, strict=True)
        cells = [f"{lt:.3f} ({r:.2f})  " for lt, r in pairs]
        lines.append(label.ljust(17) + "".join(c.ljust(15) for c in cells))
        pairs = zip(fit.lam_tau, fit.r2_tau, strict=True)
        cells = [f"{lt:.3f} ({r:.2f})  " for lt, r in pairs]
        lines.append("  vs tau".ljust(17) + "".join(c.ljust(15) for c in cells))
        if paper and label in PAPER_TABLE and tuple(table.modes) == PAPER_MODES:
            cells = [f"{v:.3f}" for v in PAPER_TABLE[label]]
            lines.append("  paper".ljust(17) + "".join(c.ljust(15) for c in cells))
    return "\n".join(lines)


SEARCH_GRID: dict[str, tuple[object, ...]] = {
    "eps": (1e-3, 1e-2, 1e-1, 1.0),
    "amplitude": (0.5, 1.0, 2.0, 4.0, 8.0),
    "amplitude_decay": (0.0, 0.5, 1.0),
    "tidal_period_steps": (100, 200, 400, 800),
    "window": ((0.0, 1.0), (0.0, 2.0), (0.0, 4.0)),
}

# The constant-p rows of ``default_rows`` and their p.
_CONSTANT_P = {f"p={v:g}": v for v in (-0.5, -0.25, 0.0, 0.25, 0.5)}

# Tidal rows and the constant row with the same mean p.
_TIDAL_BASELINES = {
    "tidal[-0.5,0.5]": "p=0",
    "tidal[0,0.5]": "p=0.25",
    "tidal[-0.5,0]": "p=-0.25",
}


def spectral_trend(fit: DecayFit, modes: Sequence[int]) -> float:
    """Least-squares slope of ``lam_t`` against ``log2 k`` (``< 0``: low-pass)."""
    slope, _ = _linfit(np.log2(np.asarray(modes, np.float64)), fit.lam_t)
    return slope


def verdicts(table: DecayTable) -> dict[str, object]:
    """Checks the paper's claims on a table with the :func:`default_rows` labels.

    * ``p0_flat``: at ``p = 0`` every ``lam_t`` equals ``eta`` within 1e-3.
    * ``sign_sets_filter``: the trend of ``lam_t`` against ``log2 k`` is negative
      (low-pass) for both positive constant p and positive for both negative ones.
    * ``tidal_faster``: each tidal row's mean ``lam_t`` exceeds that of the
      constant row with the same mean p.

    Returns:
      The three booleans, the per-row trends and mean ``lam_t``.

    References:
      Zhang & Liu, arXiv:2509.04713, 2025, Sec. 4.1.2.
    """
    trends = {k: spectral_trend(f, table.modes) for k, f in table.rows.items()}
    means = {k: float(np.mean(f.lam_t)) for k, f in table.rows.items()}
    eta = table.settings.eta
    return {
        "p0_flat": bool(np.all(np.abs(table.rows["p=0"].lam_t - eta) < 1e-3)),
        "sign_sets_filter": bool(
            trends["p=0.25"] < 0
            and trends["p=0.5"] < 0
            and trends["p=-0.25"] > 0
            and trends["p=-0.5"] > 0
        ),
        "tidal_faster": bool(
            all(means[t] > means[c] for t, c in _TIDAL_BASELINES.items())
        ),
        "trend": trends,
        "mean_lambda": means,
    }


def robustness(
    grid: Mapping[str, Iterable[object]],
    base: DecaySettings = DecaySettings(),
) -> dict[str, object]:
    """Fraction of the settings in ``grid`` for which each verdict holds.

    Args:
      grid: ``{field: values}`` over :class:`DecaySettings` fields.
      base: settings for the fields not in ``grid``.

    Returns:
      ``{"settings": n, "p0_flat": frac, "sign_sets_filter": frac,
      "tidal_faster": frac, "sign_by_row": {label: frac},
      "failures": [{field: value, ..., "failed": [...]}]}``; ``sign_by_row``
      is, per constant ``p != 0`` row, the fraction with the trend's sign
      opposite to p's (low-pass for p > 0, high-pass for p < 0).

    References:
      Zhang & Liu, arXiv:2509.04713, 2025, Sec. 4.1.2.
    """
    keys = list(grid)
    names = ("p0_flat", "sign_sets_filter", "tidal_faster")
    counts = dict.fromkeys(names, 0)
    failures = []
    sign_ok: dict[str, int] = {}
    n = 0
    for values in itertools.product(*(list(grid[k]) for k in keys)):
        changes = dict(zip(keys, values, strict=True))
        v = verdicts(decay_table(dataclasses.replace(base, **changes)))
        n += 1
        for key in names:
            counts[key] += int(v[key])
        for label, trend in v["trend"].items():
            p = _CONSTANT_P.get(label, 0.0)
            if p != 0.0:
                sign_ok[label] = sign_ok.get(label, 0) + int(trend * p < 0)
        failed = [key for key in names if not v[key]]
        if failed:
            failures.append({**changes, "failed": failed})
    return {
        "settings": n,
        **{k: c / n for k, c in counts.items()},
        "sign_by_row": {k: c / n for k, c in sign_ok.items()},
        "failures": failures,
    }


def search_settings(
    grid: Mapping[str, Iterable[object]],
    base: DecaySettings = DecaySettings(),
) -> list[tuple[DecaySettings, dict[str, float]]]:
    """Grid search of settings against :data:`PAPER_TABLE`, best mean diff first.

    Args:
      grid: ``{field: values}`` over :class:`DecaySettings` fields.
      base: settings for the fields not in ``grid``.

    Returns:
      ``[(settings, compare_with_paper(...)), ...]`` sorted by mean abs diff.

    References:
      Zhang & Liu, arXiv:2509.04713, 2025, Sec. 4.1.2.
    """
    keys = list(grid)
    results = []
    for values in itertools.product(*(list(grid[k]) for k in keys)):
        settings = dataclasses.replace(base, **dict(zip(keys, values, strict=True)))
        score = compare_with_paper(decay_table(settings))
        if math.isfinite(score["mean_abs_diff"]):
            results.append((settings, score))
    results.sort(key=lambda r: r[1]["mean_abs_diff"])
    return results


# Robustness is checked over eps and the amplitudes, the values the paper lost.
ROBUSTNESS_GRID: dict[str, tuple[object, ...]] = {
    "eps": SEARCH_GRID["eps"],
    "amplitude": SEARCH_GRID["amplitude"],
    "amplitude_decay": SEARCH_GRID["amplitude_decay"],
}


def _parser() -> argparse.ArgumentParser:
    d = DecaySettings()
    ap = argparse.ArgumentParser(
        prog="python -m nsf_optax.spectral.decay",
        description=(
            "Early-time decay constants lambda_k of the paper's 1-D model "
            "de/dt = -eta e / (E + eps)^p(t) (arXiv:2509.04713, Sec. 4.1), for "
            "constant p in {-0.5, -0.25, 0, 0.25, 0.5} and three cosine-tidal "
            "ranges, beside the paper's table."
        ),
    )
    ap.add_argument("--eta", type=float, default=d.eta, help="step constant")
    ap.add_argument("--eps", type=float, default=d.eps, help="energy floor")
    ap.add_argument("--amplitude", type=float, default=d.amplitude, help="A_0")
    ap.add_argument(
        "--amplitude-decay",
        type=float,
        default=d.amplitude_decay,
        help="alpha in A_k = A_0 k^-alpha",
    )
    ap.add_argument("--dt", type=float, default=d.dt, help="time step")
    ap.add_argument("--num-steps", type=int, default=d.num_steps)
    ap.add_argument("--num-points", type=int, default=d.num_points, help="grid M")
    ap.add_argument("--record-every", type=int, default=d.record_every)
    ap.add_argument(
        "--window",
        type=float,
        nargs=2,
        default=d.window,
        metavar=("T0", "T1"),
        help="early regression window in time units",
    )
    ap.add_argument("--tidal-period-steps", type=int, default=d.tidal_period_steps)
    ap.add_argument("--json", action="store_true", help="print JSON")
    ap.add_argument(
        "--search",
        action="store_true",
        help="grid-search settings against the paper's table (SEARCH_GRID)",
    )
    ap.add_argument("--top", type=int, default=5, help="search results to show")
    ap.add_argument(
        "--robustness",
        action="store_true",
        help="fraction of eps x amplitude settings where each verdict holds",
    )
    return ap


def parse_settings(args: argparse.Namespace) -> DecaySettings:
    """Builds :class:`DecaySettings` from parsed command-line arguments."""
    return DecaySettings(
        eta=args.eta,
        eps=args.eps,
        amplitude=args.amplitude,
        amplitude_decay=args.amplitude_decay,
        dt=args.dt,
        num_steps=args.num_steps,
        num_points=args.num_points,
        record_every=args.record_every,
        window=tuple(args.window),
        tidal_period_steps=args.tidal_period_steps,
    )


def _jsonable(settings: DecaySettings) -> dict[str, object]:
    out = dataclasses.asdict(settings)
    out["amplitudes"] = settings.amplitudes().tolist()
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    settings = parse_settings(args)
    table = decay_table(settings)
    result: dict[str, object] = {
        "settings": _jsonable(settings),
        "modes": list(table.modes),
        "rows": {
            label: {
                "lambda_t": fit.lam_t.tolist(),
                "r2_t": fit.r2_t.tolist(),
                "lambda_tau": fit.lam_tau.tolist(),
                "r2_tau": fit.r2_tau.tolist(),
                "paper": list(PAPER_TABLE[label]) if label in PAPER_TABLE else None,
            }
            for label, fit in table.rows.items()
        },
        "paper_comparison": compare_with_paper(table),
        "verdicts": verdicts(table),
    }
    if args.search:
        ranked = search_settings(SEARCH_GRID, settings)
        result["search"] = [
            {"settings": _jsonable(s), **score} for s, score in ranked[: args.top]
        ]
    if args.robustness:
        result["robustness"] = robustness(ROBUSTNESS_GRID, settings)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(format_table(table))
    cmp = result["paper_comparison"]
    print(
        f"\nvs paper: max |diff| {cmp['max_abs_diff']:.3f}, "
        f"mean |diff| {cmp['mean_abs_diff']:.3f} over {cmp['rows_compared']} rows"
    )
    v = result["verdicts"]
    for key in ("p0_flat", "sign_sets_filter", "tidal_faster"):
        print(f"{key}: {v[key]}")
    if args.search:
        print("\nsearch (best mean |diff| first):")
        for entry in result["search"]:
            st = entry["settings"]
            print(
                f"  eps={st['eps']:g} A0={st['amplitude']:g} "
                f"alpha={st['amplitude_decay']:g} "
                f"period={st['tidal_period_steps']} window={st['window']}: "
                f"mean {entry['mean_abs_diff']:.3f} max {entry['max_abs_diff']:.3f}"
            )
    if args.robustness:
        rob = result["robustness"]
        print(
            f"\nrobustness over {rob['settings']} eps x amplitude settings: "
            f"p0_flat {rob['p0_flat']:.2f}, sign_sets_filter "
            f"{rob['sign_sets_filter']:.2f}, tidal_faster {rob['tidal_faster']:.2f}"
        )
        signs = ", ".join(f"{k} {v:.2f}" for k, v in rob["sign_by_row"].items())
        print(f"  trend has the expected sign: {signs}")
        for fail in rob["failures"]:
            print(f"  fails: {fail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
