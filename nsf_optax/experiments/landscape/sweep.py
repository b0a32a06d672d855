"""The p-landscape (the paper's Sec. 3.3): final test accuracy against a constant p.

    python -m nsf_optax.experiments.landscape --config mnist1d --p -0.5 0 0.25 0.5 \\
        --seeds 5 --label_noise 0 0.2 0.4 --workdir runs/landscape-mnist1d

Every run shares the config (optimizer ``nsf`` with a constant p, ``--flavour``
and ``--normalize``, one learning rate for all p) and differs only in p and seed.
The runs of one label-noise level train together as one population
(:mod:`.population`: one compiled step, runs sharded over all devices); the
levels train one after another with the same compiled step. Runs with the same
seed share their initial parameters, their batches (one batch per seed and step)
and their augmentation; seeds differ in all three.

Outputs in ``--workdir``: ``results.json`` (one object per run: ``p``, ``seed``,
``label_noise``, ``final_test_accuracy`` as a fraction, ``final_test_loss``, null
when not finite, and the final running train loss and accuracy), ``results.csv``
(the same), ``results.md`` (per noise level and p: mean and 95 % interval over
seeds, paired differences to the best p and to p = 0, the best p, the exponents
tied with it, the modes, the detectable differences, and with several noise
levels whether the best p moves up with the noise; see :mod:`.stats`),
``verdicts.json`` (the same verdicts and whether the results are evidence),
``landscape.png``,
``sweep.json`` (the settings) and one directory per noise level
(``label_noise_<F>/``: checkpoints and per-run histories). The sweep locks its
workdir. ``--resume`` continues an interrupted sweep: levels with checkpoints
continue from their newest verified one (bit for bit), the others start.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
from collections.abc import Sequence
from typing import Any

from nsf_optax import p_schedule
from nsf_optax.experiments.landscape.results import RESULT_FIELDS as RESULT_FIELDS
from nsf_optax.experiments.landscape.results import (
    check_values,
    result_row,
    write_results,
)
from nsf_optax.experiments.landscape.results import title as title
from nsf_optax.experiments.resnet import configs
from nsf_optax.experiments.resnet.configs.default import (
    NSF_FLAVOURS,
    Config,
    check_field,
    field_specs,
    field_types,
)
from nsf_optax.experiments.runner import (
    cli,
    distributed,
    launch,
    preflight,
    workdirs,
)
from nsf_optax.experiments.runner.errors import ConfigError
from nsf_optax.experiments.runner.fields import Bound
from nsf_optax.experiments.tuning import evidence, flags

PROG = "python -m nsf_optax.experiments.landscape"
DEFAULT_PS = (-0.5, -0.25, 0.0, 0.125, 0.25, 0.5, 0.75)
# Config fields the sweep sets itself (the rest are flags, as for one run; the
# p-schedule parameters get none either: the sweep sets p).
_OWN_FIELDS = (
    "optimizer",
    "nsf_flavour",
    "p_schedule",
    "label_noise",
    "seed",
    "resume",
)


def level_dir(workdir: str | os.PathLike, label_noise: float) -> str:
    """The directory of one noise level's population: ``label_noise_<F>``.

    Examples:
      >>> level_dir("runs/landscape", 0.2)
      'runs/landscape/label_noise_0.2'
    """
    return os.path.join(os.fspath(workdir), f"label_noise_{label_noise:g}")


def run_sweep(
    config: Config,
    workdir: str | os.PathLike,
    *,
    ps: Sequence[float] = DEFAULT_PS,
    seeds: int = 5,
    label_noise: Sequence[float] = (0.0,),
    resume: bool = False,
    map_batch_size: int | None = None,
    max_steps_this_run: int | None = None,
    preset: str | None = None,
) -> list[dict[str, Any]]:
    """Trains every (p, seed) at every label-noise level; writes the results.

    Args:
      config: the shared configuration; its optimizer becomes ``nsf`` with a
        constant p (its ``nsf_flavour``, ``normalize`` and learning rate are
        kept), its ``label_noise`` and ``seed`` are replaced per run.
      workdir: the sweep's directory.
      ps: the exponents, finite and distinct.
      seeds: train seeds ``0..seeds-1``.
      label_noise: the noise levels, distinct, each in ``[0, 1)``.
      resume: continue the levels that hold checkpoints; without it a level
        that holds checkpoints is refused before anything trains.
      map_batch_size: see :func:`.population.train_population`.
      max_steps_this_run: stop each level after this many steps of this call
        (a checkpoint is written); continue with ``resume``.
      preset: the preset ``config`` started from, for the evidence note
        (:func:`~nsf_optax.experiments.tuning.evidence.assess`, recorded in
        ``sweep.json`` and ``results.md``); None for a config of one's own.

    Returns:
      The rows of ``results.json``, one per run; empty while some level has
      not reached ``config.num_steps`` (no results files are then written).

    Raises:
      UsageError: for bad values, an unusable or busy workdir, a level holding
        checkpoints without ``resume``, and whatever a population refuses (see
        :func:`.population.train_population`).
    """
    ps, label_noise = [float(p) for p in ps], [float(f) for f in label_noise]
    check_values(ps, seeds, label_noise)
    config = dataclasses.replace(
        config, optimizer="nsf", p_schedule="constant", seed=0, resume=False
    )
    workdir = os.fspath(workdir)
    started = check_levels(workdir, label_noise, resume=resume)
    note = evidence.assess(preset=preset or "custom", seeds=seeds, tuned=False)
    import jax

    from nsf_optax.experiments.resnet import input_pipeline, population, train

    input_pipeline.check_source(config.dataset, config.data_dir)
    primary = jax.process_index() == 0
    rows = []
    with workdirs.Lock(workdir, enabled=primary):
        settings = {
            "config": train.config_dict(config),
            "ps": ps,
            "seeds": list(range(seeds)),
            "label_noise": label_noise,
            "map_batch_size": map_batch_size,
            "backend": jax.default_backend(),
            "devices": jax.device_count(),
            **note,
        }
        finished = True
        for noise in label_noise:
            result = population.train_population(
                dataclasses.replace(config, label_noise=noise, resume=started[noise]),
                ps,
                range(seeds),
                level_dir(workdir, noise),
                map_batch_size=map_batch_size,
                max_steps_this_run=max_steps_this_run,
            )
            for (p, seed), history in zip(result.runs, result.histories, strict=True):
                last = history[-1] if history else {}
                if last.get("step") != config.num_steps:
                    finished = False
                    continue
                rows.append(result_row(p, seed, noise, config.peak_learning_rate, last))
        if not finished:
            return []
        if primary:
            workdirs.write_text(
                os.path.join(workdir, "sweep.json"), json.dumps(settings, indent=1)
            )
            write_results(rows, workdir, config=config, note=note)
    return rows


def check_levels(
    workdir: str, label_noise: Sequence[float], *, resume: bool, probe: bool = False
) -> dict[float, bool]:
    """Checks the sweep's workdir and levels before jax loads; writes nothing.

    Args:
      workdir: the sweep's directory.
      label_noise: its noise levels.
      resume: whether the sweep continues.
      probe: see :func:`.workdirs.check`.

    Returns:
      Noise level -> whether its population holds checkpoints (it continues).

    Raises:
      WorkdirError: for an unusable workdir.
      CheckpointError: without ``resume``, for a level holding checkpoints.
    """
    workdirs.check(workdir, probe=probe)
    started = {}
    for noise in label_noise:
        level = level_dir(workdir, noise)
        started[noise] = bool(
            preflight.checkpoint_steps(preflight.checkpoint_dir(level))
        )
        # With resume, a level with checkpoints continues, one without starts.
        preflight.check_start(level, resume=resume and started[noise], what="sweep")
    return started


_float_flag = cli.float_flag(math.isfinite, "must be finite")


def _noise_flag(text: str) -> float:
    value = _float_flag(text)
    try:
        return check_field("label_noise", field_types()["label_noise"], value)
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _add_population_flags(parser: argparse.ArgumentParser) -> None:
    # What one population of the sweep holds: its p values, seeds, noise levels.
    parser.add_argument(
        "--p",
        type=_float_flag,
        nargs="+",
        default=list(DEFAULT_PS),
        metavar="P",
        help="the constant exponents, distinct and finite (default: "
        f"{' '.join(f'{p:g}' for p in DEFAULT_PS)})",
    )
    launch.add_seeds_flag(parser, of_every="p")
    parser.add_argument(
        "--label_noise",
        dest="label_noises",  # not the Config field: one population per value
        type=_noise_flag,
        nargs="+",
        default=[0.0],
        metavar="F",
        help="fractions of training labels replaced by another class, one "
        "population each, distinct, in [0, 1) (default 0)",
    )


def build_parser() -> cli.ArgumentParser:
    """The flags of the sweep (no jax import)."""
    parser = launch.parser(
        PROG,
        usage=f"{PROG} [--config NAME] [--p P [P ...]] [--seeds N] "
        "[--label_noise F [F ...]] [--num_steps INT] [--flavour {adam,sgd}] "
        "[--normalize {none,rms}] [--workdir DIR] [--resume] [--<field> VALUE]...",
        description="Final test accuracy against a constant p (the paper's "
        "Sec. 3.3): every p x seed of one label-noise level trains as one "
        "compiled population; results table with 95 % intervals, landscape plot.",
    )
    launch.add_preset_flag(parser, configs.CONFIG_NAMES, configs.describe_all())
    _add_population_flags(parser)
    parser.add_argument(
        "--flavour",
        choices=NSF_FLAVOURS,
        default="sgd",
        help="sgd: nsf_sgd (heavy-ball momentum times the p-gain; p = 0 is "
        "optax.sgd); adam: nsfw (Adam's moments; p = 1/2 is AdamW) (default sgd)",
    )
    parser.add_argument(
        "--workdir",
        default=None,
        help="output directory (default: runs/sweep-<config>)",
    )
    parser.add_argument(
        "--resume",
        dest="resume_sweep",
        action="store_true",
        help="continue an interrupted sweep from its verified checkpoints",
    )
    parser.add_argument(
        "--map_batch_size",
        type=cli.int_flag(Bound(low=0)),
        default=None,
        metavar="B",
        help="runs stepped at once on each device: 1 one compiled single-run call "
        "per run, B > 1 B vmapped at a time inside one program, 0 one vmap over "
        "all (default: 1 on CPU, 0 on GPU/TPU)",
    )
    launch.add_max_steps_flag(
        parser,
        help="stop each level after this many steps (with a checkpoint); "
        "continue with --resume",
    )
    flags.add_flags(parser, per="p and label-noise level")
    distributed.add_flags(parser)
    # The sweep sets p itself: no flags for the p schedules' parameters.
    own = (*_OWN_FIELDS, *flags.CONFIG_FIELDS, *p_schedule.params())
    cli.add_config_flags(parser, field_specs(), exclude=own)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parses flags and runs :func:`run_sweep`. Returns the exit status."""
    return launch.main(PROG, build_parser(), argv, _job)


def _job(args: argparse.Namespace) -> launch.Job:
    config = cli.config_from_flags(configs.get_config(args.config), args, field_specs())
    config = dataclasses.replace(config, nsf_flavour=args.flavour)
    check_values(args.p, args.seeds, args.label_noises)
    workdir = args.workdir or os.path.join("runs", f"sweep-{args.config}")
    search = flags.search(args)
    if search is not None:
        from nsf_optax.experiments.landscape import tuned

        for name in ("max_steps_this_run", "map_batch_size"):
            if getattr(args, name) is not None:
                raise ConfigError(f"{name} cannot be used with --tune.", (name,))
        keyed = tuned.bases(config, args.p, args.label_noises)
        sizes = dict(ps=args.p, seeds=args.seeds, label_noise=args.label_noises)

        def check() -> None:
            tuned.check_tuned(
                workdir, keyed, search, args.seeds, resume=args.resume_sweep, probe=True
            )

        def sweep() -> list[dict[str, Any]]:
            return tuned.run_tuned_sweep(
                config, workdir, **sizes, search=search,
                resume=args.resume_sweep, preset=args.config,
            )  # fmt: skip
    else:

        def check() -> None:
            check_levels(
                workdir, args.label_noises, resume=args.resume_sweep, probe=True
            )

        def sweep() -> list[dict[str, Any]]:
            return run_sweep(
                config, workdir, ps=args.p, seeds=args.seeds,
                label_noise=args.label_noises, resume=args.resume_sweep,
                map_batch_size=args.map_batch_size,
                max_steps_this_run=args.max_steps_this_run, preset=args.config,
            )  # fmt: skip

    def run() -> None:
        import jax

        rows = sweep()
        if jax.process_index() != 0:
            return
        if not rows:
            print(f"stopped before the end; continue with --resume ({workdir})")
            return
        with open(os.path.join(workdir, "results.md")) as f:
            print(f.read())
        # results.md opens with the evidence line.
        print(f"results and landscape.png in {os.path.abspath(workdir)}")

    return launch.Job(check, run)


if __name__ == "__main__":
    sys.exit(main())
