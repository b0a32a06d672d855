"""Command line for the 2-D angle decision-boundary demo (the paper's Sec. 4.2.2).

Usage::

  python -m nsf_optax.spectral.boundary --json
  python -m nsf_optax.spectral.boundary --loss-reduction sum --lr 1e-4
  python -m nsf_optax.spectral.boundary --normalize rms
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence

from nsf_optax.spectral._boundary import BoundarySettings, boundary_demo

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit status."""
    d = BoundarySettings()
    ap = argparse.ArgumentParser(
        prog="python -m nsf_optax.spectral.boundary",
        description=(
            "2-D two-class angle data, 2-layer ReLU MLP trained with "
            "nsf_optax.nsf at one learning rate for every p and a cosine-tidal "
            "p; early test accuracy and steps-to-target over seeds with 95%% "
            "t-intervals (arXiv:2509.04713, Sec. 4.2.2)."
        ),
    )
    ap.add_argument("--lr", type=float, default=d.lr)
    ap.add_argument("--loss-reduction", choices=("mean", "sum"), default="mean")
    ap.add_argument("--normalize", choices=("none", "rms"), default="none")
    ap.add_argument("--num-steps", type=int, default=d.num_steps)
    ap.add_argument("--num-seeds", type=int, default=len(d.seeds))
    ap.add_argument("--n-train", type=int, default=d.n_train)
    ap.add_argument("--target-accuracy", type=float, default=d.target_accuracy)
    ap.add_argument("--early-steps", type=int, default=d.early_steps)
    ap.add_argument("--json", action="store_true", help="print JSON")
    args = ap.parse_args(argv)
    settings = dataclasses.replace(
        d,
        lr=args.lr,
        loss_reduction=args.loss_reduction,
        normalize=None if args.normalize == "none" else "rms",
        num_steps=args.num_steps,
        seeds=tuple(range(args.num_seeds)),
        n_train=args.n_train,
        target_accuracy=args.target_accuracy,
        early_steps=args.early_steps,
        checkpoints=tuple(c for c in d.checkpoints if c <= args.num_steps),
    )
    res = boundary_demo(settings, snapshots=False)
    out = {
        "settings": dataclasses.asdict(settings),
        "summary": res.summary,
        "verdicts": res.verdicts,
    }
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(
        f"{'row':<17}{'early acc':<17}{'vs p=0 (paired)':<19}"
        f"{'steps to ' + str(settings.target_accuracy):<20}final acc"
    )
    for label, s in res.summary.items():
        diff = (
            f"{s['early_accuracy_minus_p0_mean']:+.3f}"
            f"±{s['early_accuracy_minus_p0_ci95']:.3f}"
            if "early_accuracy_minus_p0_mean" in s
            else ""
        )
        reach = (
            f"{s['steps_to_target_mean']:.0f}±{s['steps_to_target_ci95']:.0f} "
            f"({s['reached']}/{len(settings.seeds)})"
        )
        early = f"{s['early_accuracy_mean']:.3f}±{s['early_accuracy_ci95']:.3f}"
        print(
            f"{label:<17}{early:<17}{diff:<19}{reach:<20}{s['final_accuracy_mean']:.3f}"
        )
    for key, value in res.verdicts.items():
        print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
