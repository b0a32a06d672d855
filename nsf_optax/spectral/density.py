"""Command line for the 1-D density demo (the paper's Sec. 4.2.1).

Usage::

  python -m nsf_optax.spectral.density --json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence

from nsf_optax.spectral._density import DensitySettings, density_demo

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit status."""
    d = DensitySettings()
    ap = argparse.ArgumentParser(
        prog="python -m nsf_optax.spectral.density",
        description=(
            "1-D density demo: fRMSE on the right-boundary region and "
            "steps-to-threshold for each p and density slope s, the paper's Eq. 14 "
            "against the simulation, and verdicts (arXiv:2509.04713, Sec. 4.2.1)."
        ),
    )
    ap.add_argument("--lr", type=float, default=d.lr)
    ap.add_argument("--eps", type=float, default=d.eps)
    ap.add_argument("--num-steps", type=int, default=d.num_steps)
    ap.add_argument("--num-points", type=int, default=d.num_points)
    ap.add_argument("--threshold", type=float, default=d.threshold)
    ap.add_argument("--early-step", type=int, default=d.early_step)
    ap.add_argument("--json", action="store_true", help="print JSON")
    args = ap.parse_args(argv)
    settings = DensitySettings(
        lr=args.lr,
        eps=args.eps,
        num_steps=args.num_steps,
        num_points=args.num_points,
        threshold=args.threshold,
        early_step=args.early_step,
        checkpoints=tuple(c for c in d.checkpoints if c <= args.num_steps),
    )
    res = density_demo(settings)
    rows = [
        {
            "p": p,
            "slope": s,
            "final_frmse": res.final_frmse[(p, s)],
            "steps_to_threshold": res.steps_to_threshold[(p, s)],
            "eq14_rel_error": res.eq14_rel_error[(p, s)],
        }
        for (p, s) in res.final_frmse
    ]
    verdicts = dict(res.verdicts)
    verdicts["density_sensitivity"] = {
        str(k): v for k, v in verdicts["density_sensitivity"].items()
    }
    out = {
        "settings": dataclasses.asdict(settings),
        "rows": rows,
        "verdicts": verdicts,
    }
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print("p       s     final fRMSE  steps<thr  Eq.14 rel.err")
    for r in rows:
        print(
            f"{r['p']:<7g} {r['slope']:<5g} {r['final_frmse']:<12.2e} "
            f"{r['steps_to_threshold']!s:<10} {r['eq14_rel_error']:.3f}"
        )
    for key, value in verdicts.items():
        print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
