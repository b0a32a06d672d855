"""The tuned p-landscape: ``python -m nsf_optax.experiments.landscape --tune``.

Each (p, label-noise level) is a key of the tuning protocol
(:mod:`nsf_optax.experiments.tuning.protocol`): its peak learning rate is chosen
on a held-out validation split from the same grid with the same tuning seeds as
every other key (so every p gets the same number of trials), all keys' trials in
one :func:`~nsf_optax.experiments.tuning.trials.run_trials` call. The final seeds
``0..seeds-1`` then train on the whole training set at each key's chosen rate, as
one more ``run_trials`` call (runs that differ only in learning rate, seed and p).

Files in the sweep's workdir besides the untuned sweep's results: ``tuning/``
(the trials and their ``plan.json``) and ``final/`` (the final runs, ``trial<k>``
in the order of :func:`final_plan`); ``verdicts.json`` adds ``tuning`` (per key:
``chosen``, ``trials``, ``grid``, ``edge``, ``val_target``) and ``results.md`` the
trial table of each noise level.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from nsf_optax.experiments.landscape import results
from nsf_optax.experiments.resnet.configs.default import Config
from nsf_optax.experiments.runner import preflight, workdirs
from nsf_optax.experiments.tuning import evidence

if TYPE_CHECKING:
    from nsf_optax.experiments.tuning.protocol import Search, Tuned

TUNING_DIR = "tuning"
FINAL_DIR = "final"


def key(p: float, label_noise: float) -> str:
    """The tuning key of one p at one noise level.

    Examples:
      >>> key(0.25, 0.2)
      'p=0.25@noise=0.2'
    """
    return f"p={p:g}@noise={label_noise:g}"


def bases(
    config: Config, ps: Sequence[float], label_noise: Sequence[float]
) -> dict[str, Config]:
    """Per (noise level, p), in that order: ``config`` as an ``nsf`` run at that
    constant p and noise level (the key :func:`key`)."""
    return {
        key(p, noise): dataclasses.replace(
            config,
            optimizer="nsf",
            p_schedule="constant",
            p_value=p,
            label_noise=noise,
            seed=0,
            resume=False,
        )
        for noise in label_noise
        for p in ps
    }


def final_plan(
    keyed: Mapping[str, Config], tuned: Mapping[str, Tuned], seeds: int
) -> list[tuple[str, int, Config]]:
    """The final runs, ``(key, seed, config)``: every key's seeds ``0..seeds-1`` at
    its chosen values, on the whole training set."""
    from nsf_optax.experiments.tuning import protocol

    return [
        (k, seed, dataclasses.replace(protocol.apply(base, tuned[k]), seed=seed))
        for k, base in keyed.items()
        for seed in range(seeds)
    ]


def check_tuned(
    workdir: str,
    keyed: Mapping[str, Config],
    search: Search,
    seeds: int,
    *,
    resume: bool,
    probe: bool = False,
) -> None:
    """Checks the workdir and every trial's and final run's directory before jax
    loads; writes nothing.

    Raises:
      WorkdirError: for an unusable workdir.
      CheckpointError: without ``resume``, for a run directory with checkpoints.
      ConfigError: for a trial that cannot run (see :func:`.protocol.plan`).
    """
    from nsf_optax.experiments.tuning import protocol, trials

    workdirs.check(workdir, probe=probe)
    # The final runs' groups do not depend on the rates tuning will choose.
    finals = [
        dataclasses.replace(c, seed=s) for c in keyed.values() for s in range(seeds)
    ]
    runs = {
        TUNING_DIR: [config for *_, config in protocol.plan(keyed, search)],
        FINAL_DIR: finals,
    }
    for part, configs in runs.items():
        for run_dir in set(trials.run_dirs(configs, os.path.join(workdir, part))):
            started = bool(
                preflight.checkpoint_steps(preflight.checkpoint_dir(run_dir))
            )
            preflight.check_start(run_dir, resume=resume and started, what="sweep")


def run_tuned_sweep(
    config: Config,
    workdir: str | os.PathLike,
    *,
    ps: Sequence[float],
    seeds: int,
    label_noise: Sequence[float],
    search: Search,
    resume: bool = False,
    preset: str | None = None,
) -> list[dict[str, Any]]:
    """Tunes the learning rate per (p, noise level), trains the final seeds at it.

    Args:
      config: the shared configuration (as for :func:`.sweep.run_sweep`); its
        learning rate centres the default grid.
      workdir: the sweep's directory.
      ps: the exponents, finite and distinct.
      seeds: final seeds ``0..seeds-1`` of every p and level.
      label_noise: the noise levels, distinct, each in ``[0, 1)``.
      search: the tuning search (grid, tuning seeds, held-out fraction).
      resume: continue trials and final runs from their checkpoints.
      preset: the preset ``config`` started from, for the evidence note.

    Returns:
      The rows of ``results.json`` (as :func:`.sweep.run_sweep`, with each run's
      ``learning_rate``).

    Raises:
      UsageError: for bad values, an unusable or busy workdir, run directories
        holding checkpoints without ``resume``, or a trial that cannot run.
    """
    ps, label_noise = [float(p) for p in ps], [float(f) for f in label_noise]
    results.check_values(ps, seeds, label_noise)
    keyed = bases(config, ps, label_noise)
    workdir = os.fspath(workdir)
    check_tuned(workdir, keyed, search, seeds, resume=resume)
    note = evidence.assess(preset=preset or "custom", seeds=seeds, tuned=True)
    import jax

    from nsf_optax.experiments.resnet import train
    from nsf_optax.experiments.tuning import protocol, trials

    primary = jax.process_index() == 0
    with workdirs.Lock(workdir, enabled=primary):
        tuned = protocol.tune(
            keyed, search, os.path.join(workdir, TUNING_DIR), resume=resume
        )
        plan = final_plan(keyed, tuned, seeds)
        histories = trials.run_trials(
            [c for *_, c in plan], os.path.join(workdir, FINAL_DIR), resume=resume
        )
        rows = [
            results.result_row(
                c.p_value, seed, c.label_noise, c.peak_learning_rate, h[-1]
            )
            for (_, seed, c), h in zip(plan, histories, strict=True)
        ]
        if primary:
            settings = {
                "config": train.config_dict(config),
                "ps": ps,
                "seeds": list(range(seeds)),
                "label_noise": label_noise,
                "search": dataclasses.asdict(search),
                **note,
            }
            workdirs.write_text(
                os.path.join(workdir, "sweep.json"), json.dumps(settings, indent=1)
            )
            results.write_results(rows, workdir, config=config, note=note, tuned=tuned)
    return rows
