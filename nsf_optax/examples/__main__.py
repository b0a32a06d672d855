"""One training run: ``python -m nsf_optax.examples --config mnist1d --workdir runs/x``.

Every field of :class:`~nsf_optax.examples.configs.default.Config` is a flag
(``--optimizer sgd``, ``--num_steps 500``, ``--data_dir ~/cifar-10-batches-py``, ...).
Several hosts: run the same command on every host with ``--distributed``, which calls
``jax.distributed.initialize()`` first (see :mod:`nsf_optax.examples.train`).
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np


def main(argv: list[str] | None = None) -> int:
    """Parses flags, trains, prints the final metrics. Returns the exit status."""
    from nsf_optax.examples import configs, train

    parser = argparse.ArgumentParser(
        prog="python -m nsf_optax.examples", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--config", default="default", choices=configs.CONFIG_NAMES, help="preset"
    )
    parser.add_argument(
        "--workdir",
        default=None,
        help="output directory (default: runs/<config>-<method>-seed<seed>)",
    )
    parser.add_argument(
        "--max_steps_this_run",
        type=int,
        default=None,
        help="stop (with a checkpoint) after this many steps; continue with --resume",
    )
    parser.add_argument(
        "--distributed",
        action="store_true",
        help="call jax.distributed.initialize() first (one process per host)",
    )
    configs.add_config_arguments(parser)
    args = parser.parse_args(argv)
    if args.distributed:
        import jax

        jax.distributed.initialize()
    try:
        config = configs.config_from_args(configs.get_config(args.config), args)
        workdir = args.workdir or os.path.join(
            "runs", f"{args.config}-{config.method}-seed{config.seed}"
        )
        result = train.train_and_evaluate(
            config, workdir, max_steps_this_run=args.max_steps_this_run
        )
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if result.history:
        print(f"\n{config.method} on {config.dataset} ({config.model})\n")
        print(history_table(result.history))
        print(f"\nmetrics, plots and checkpoints in {os.path.abspath(workdir)}")
    return 0


def history_table(history: list[dict[str, float]], rows: int = 10) -> str:
    """A markdown table of at most ``rows`` evenly spaced evaluations (last included).

    Args:
      history: the evaluation rows of a run.
      rows: the most rows to show.

    Returns:
      The table as text.
    """
    picks = sorted({round(i) for i in np.linspace(0, len(history) - 1, rows)})
    lines = [
        "| step | lr | p | train loss | test loss | test accuracy |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for i in picks:
        r = history[i]
        lines.append(
            f"| {r['step']} | {r['lr']:.4g} | {r['p']:+.3f} | {r['train_loss']:.4f} "
            f"| {r['test_loss']:.4f} | {r['test_accuracy']:.4f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
