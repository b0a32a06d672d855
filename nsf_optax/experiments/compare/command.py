"""The comparison's command line: ``python -m nsf_optax.experiments.compare``.

Parses the flags, checks everything that can be checked before jax loads (the
flags, the budgets, every run's directory, that some evaluation falls in the first
half of training), then runs :func:`.compare.run_comparison`, or with
``--budgets`` :func:`.compare_budgets.run_budget_comparison`. With ``--tune``
every method's learning rate is first tuned by one protocol on held-out data
(:mod:`nsf_optax.experiments.tuning.protocol`); ``--lr_grid``, ``--tune_seeds``
and ``--val_fraction`` set its search and are refused without ``--tune``. The
prologue is the one every training command shares
(:func:`~nsf_optax.experiments.runner.launch.main`).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys

from nsf_optax.experiments.compare import budgets as budgeting
from nsf_optax.experiments.compare import compare, compare_budgets
from nsf_optax.experiments.resnet import configs
from nsf_optax.experiments.resnet import methods as methods_table
from nsf_optax.experiments.resnet.configs.default import field_specs
from nsf_optax.experiments.runner import cli, launch
from nsf_optax.experiments.runner.errors import ConfigError
from nsf_optax.experiments.tuning import flags as tuning_flags

PROG = "python -m nsf_optax.experiments.compare"


def _methods_flag(text: str) -> list[str]:
    methods = [m.strip() for m in text.split(",") if m.strip()]
    try:
        return compare.check_methods(methods, 1)
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _budget_flag(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return value


def build_parser() -> cli.ArgumentParser:
    """The flags of the comparison (no jax import)."""
    parser = launch.parser(
        PROG,
        usage=f"{PROG} [--config NAME] [--seeds N] [--methods A,B,...] "
        "[--workdir DIR] [--budgets F [F ...]] [--p_periods {scaled,fixed}] "
        "[--tune [--lr_grid LR [LR ...]] [--lr_extend N] [--tune_seeds N] "
        "[--val_fraction F]] "
        "[--<field> VALUE]...",
        description="NSF against optax baselines over several seeds: a results "
        "table (mean ± sample std), comparison plots, one run per method and seed.",
    )
    presets = [n for n in configs.CONFIG_NAMES if n != "default"]
    parser.add_argument(
        "--config",
        dest="preset",
        default="mnist1d",
        choices=presets,
        help="the preset config to start from (its dataset; 'tiny' is for tests): "
        + configs.describe_all(),
    )
    parser.add_argument(
        "--dataset",
        dest="preset",
        choices=presets,
        action=cli.DeprecatedAlias,
        new="--config",
        help="deprecated spelling of --config (one release)",
    )
    launch.add_seeds_flag(parser, of_every="method")
    parser.add_argument(
        "--methods",
        type=_methods_flag,
        default=list(compare.DEFAULT_METHODS),
        metavar="A,B,...",
        help=f"comma-separated, including sgd (the baseline), from: "
        f"{', '.join(methods_table.methods())} "
        f"(default: {','.join(compare.DEFAULT_METHODS)})",
    )
    parser.add_argument(
        "--workdir",
        default=None,
        help="output directory (default: runs/compare-<dataset>)",
    )
    _add_budget_flags(parser)
    tuning_flags.add_flags(parser, per="method")
    cli.add_config_flags(
        parser, field_specs(), exclude=("dataset", *tuning_flags.CONFIG_FIELDS)
    )
    return parser


def _add_budget_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--budgets",
        type=_budget_flag,
        nargs="+",
        default=None,
        metavar="F",
        help="budgeted training: train every method and seed again at each of these "
        "fractions of num_steps, in (0, 1] and including 1, each run with its "
        "learning-rate warmup and decay fitted to its budget",
    )
    parser.add_argument(
        "--p_periods",
        choices=budgeting.P_PERIODS,
        default=None,
        help="with --budgets: 'scaled' (the default) multiplies the lengths the "
        "p schedule uses (p_period_steps of cosine_tidal; pulse_steps and "
        "tidal_every_steps of pulse_tidal) by the budget, so every budget runs "
        "the whole p schedule (pulse, then the same number of alternations), "
        "compressed like its learning-rate schedule, and a "
        "budget changes only the length of the run; 'fixed' keeps them in steps "
        "(the paper's 'every 200 iterations'), so short budgets see fewer cycles "
        "or only the pulse",
    )


def main(argv: list[str] | None = None) -> int:
    """Parses flags and runs the comparison. Returns the exit status."""
    return launch.main(PROG, build_parser(), argv, _job)


def _job(args: argparse.Namespace) -> launch.Job:
    base = cli.config_from_flags(configs.get_config(args.preset), args, field_specs())
    # One bar per run would scroll away: bars only when asked for.
    base = dataclasses.replace(base, progress=base.progress and args.progress is True)
    workdir = args.workdir or os.path.join("runs", f"compare-{args.preset}")
    compare.check_analysis(base, args.methods)
    search = tuning_flags.search(args)
    if args.budgets is None:
        if args.p_periods is not None:
            raise ConfigError("p_periods needs --budgets.", ("p_periods",))
        names = compare.run_dirs(base, args.methods, args.seeds)
        if search is not None:
            names += compare.tuning_run_dirs(base, args.methods, search)
        return launch.Job(
            lambda: compare.check_runs(workdir, names, resume=base.resume, probe=True),
            lambda: compare.run_comparison(
                base,
                workdir,
                methods=args.methods,
                seeds=args.seeds,
                search=search,
                preset=args.preset,
            ),
        )
    p_periods = args.p_periods or budgeting.DEFAULT_P_PERIODS
    budgets = budgeting.check_budgets(args.budgets, base.num_steps)
    names = compare_budgets.run_names(
        base, args.methods, args.seeds, budgets, p_periods, search
    )
    return launch.Job(
        lambda: compare.check_runs(workdir, names, resume=base.resume, probe=True),
        lambda: compare_budgets.run_budget_comparison(
            base,
            workdir,
            budgets=args.budgets,
            methods=args.methods,
            seeds=args.seeds,
            p_periods=p_periods,
            search=search,
            preset=args.preset,
        ),
    )


if __name__ == "__main__":
    sys.exit(main())
