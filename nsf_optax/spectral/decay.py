"""Command line for the 1-D spectral decay table (the paper's Sec. 4.1.2).

Usage::

  python -m nsf_optax.spectral.decay            # the table as text
  python -m nsf_optax.spectral.decay --json     # the table, verdicts and diffs
  python -m nsf_optax.spectral.decay --json --search --robustness
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence

from nsf_optax.spectral._decay import (
    PAPER_TABLE,
    SEARCH_GRID,
    DecaySettings,
    compare_with_paper,
    decay_table,
    format_table,
    robustness,
    search_settings,
    verdicts,
)

__all__ = ["main", "parse_settings"]

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
