"""One training run: ``python -m nsf_optax.experiments.resnet --config mnist1d
--workdir runs/x``.

Every field of :class:`~nsf_optax.experiments.resnet.configs.default.Config` is a flag
(``--optimizer sgd``, ``--num_steps 500``, ``--data_dir ~/cifar-10-batches-py``,
booleans as ``--flip`` / ``--no-flip``, ``none`` for None). Flags are parsed and
checked before jax loads; a mistake is one line and exit status 2. Several
processes (one per host): add ``--distributed`` (and, without a cluster manager,
``--coordinator_address``, ``--num_processes``, ``--process_id``) to the same
command on every host; see :mod:`nsf_optax.experiments.runner.distributed`.

One run is a smoke test, not evidence (one seed, an untuned learning rate): the
command prints one line saying so and writes it to ``<workdir>/evidence.json``
(see :func:`nsf_optax.experiments.tuning.evidence.assess`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys

from nsf_optax.experiments.resnet import configs
from nsf_optax.experiments.resnet.configs.default import field_specs
from nsf_optax.experiments.runner import (
    cli,
    distributed,
    launch,
    preflight,
    workdirs,
)
from nsf_optax.experiments.runner.fields import Bound
from nsf_optax.experiments.tuning import evidence

PROG = "python -m nsf_optax.experiments.resnet"


def build_parser() -> cli.ArgumentParser:
    """The flags of one training run (no jax import)."""
    parser = launch.parser(
        PROG,
        usage=f"{PROG} [--config NAME] [--workdir DIR] [--resume] [--<field> VALUE]...",
        description=(
            "Train one ResNet with NSF or an optax baseline on offline data; write "
            "metrics, plots and verified checkpoints to --workdir."
        ),
    )
    launch.add_preset_flag(parser, configs.CONFIG_NAMES, configs.describe_all())
    parser.add_argument(
        "--workdir",
        default=None,
        help="output directory, one run at a time "
        "(default: runs/<config>-<method>-seed<seed>)",
    )
    launch.add_max_steps_flag(
        parser,
        help="stop (with a checkpoint) after this many steps; continue with --resume",
    )
    parser.add_argument(
        "--resume_step",
        type=cli.int_flag(Bound(low=0)),
        default=None,
        metavar="INT",
        help="continue from this verified checkpoint instead of the newest (implies "
        "--resume); the newer ones are moved to <workdir>/checkpoints_set_aside/",
    )
    distributed.add_flags(parser)
    cli.add_config_flags(parser, field_specs())
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parses flags, trains, prints the final metrics. Returns the exit status."""
    return launch.main(PROG, build_parser(), argv, _job)


def _job(args: argparse.Namespace) -> launch.Job:
    config = cli.config_from_flags(configs.get_config(args.config), args, field_specs())
    if args.resume_step is not None:
        config = dataclasses.replace(config, resume=True)
    workdir = args.workdir or os.path.join(
        "runs", f"{args.config}-{config.method}-seed{config.seed}"
    )

    def check() -> None:
        workdirs.check(workdir, probe=True)
        preflight.check_start(
            workdir, resume=config.resume, resume_step=args.resume_step
        )

    def run() -> None:
        import jax

        from nsf_optax.experiments.resnet import train

        result = train.train_and_evaluate(
            config,
            workdir,
            max_steps_this_run=args.max_steps_this_run,
            resume_step=args.resume_step,
        )
        if result.history and jax.process_index() == 0:
            print(f"\n{config.method} on {config.dataset} ({config.model})\n")
            print(history_table(result.history))
            print(f"\nmetrics, plots and checkpoints in {os.path.abspath(workdir)}")
        if jax.process_index() == 0:
            note = evidence.assess(preset=args.config, seeds=1, tuned=False)
            workdirs.write_text(
                os.path.join(workdir, "evidence.json"), json.dumps(note, indent=1)
            )
            print(evidence.line(note))

    return launch.Job(check, run)


def history_table(history: list[dict[str, float]], rows: int = 10) -> str:
    """A markdown table of at most ``rows`` evenly spaced evaluations (last included).

    Args:
      history: the evaluation rows of a run.
      rows: the most rows to show.

    Returns:
      The table as text.
    """
    import numpy as np

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
