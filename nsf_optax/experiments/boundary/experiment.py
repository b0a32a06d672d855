"""The paper's 2-D "angle" decision-boundary demonstration (Sec. 4.2.2).

Usage::

  python -m nsf_optax.experiments.boundary --json
  python -m nsf_optax.experiments.boundary --loss_reduction sum --lr 1e-4
  python -m nsf_optax.experiments.boundary --normalize rms
  python -m nsf_optax.experiments.boundary --quick --plots DIR

Settings and result types in :mod:`.settings`, the data and the MLP in
:mod:`.model`, the jitted training program in :mod:`.train`, the summary and
verdicts in :mod:`.verdicts`, the figures in :mod:`.figures`; here the run and
its :class:`~nsf_optax.experiments.report.Experiment` record.
"""

import argparse
import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from nsf_optax.experiments import report
from nsf_optax.experiments.boundary import figures, verdicts
from nsf_optax.experiments.boundary.model import (
    init_mlp,
    make_angle_data,
    mlp_apply,
    update_norms,
)
from nsf_optax.experiments.boundary.settings import (
    BoundaryResult,
    BoundarySettings,
    BoundarySnapshot,
)
from nsf_optax.experiments.boundary.train import TrainProgram, make_train

__all__ = [
    "EXPERIMENT",
    "BoundaryResult",
    "BoundarySettings",
    "BoundarySnapshot",
    "boundary_demo",
    "init_mlp",
    "main",
    "make_angle_data",
    "mlp_apply",
    "update_norms",
]

_DEFAULTS = BoundarySettings()
_QUICK = BoundarySettings(
    n_train=40,
    n_test=100,
    num_steps=40,
    eval_every=10,
    seeds=(0, 1),
    ps=(-0.25, 0.0, 0.5),
    tidal=(-0.5, 0.5, 20),
    early_steps=20,
    checkpoints=(10, 40),
    grid_size=8,
)


def _top_tenth(norms: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The top 10 % of each class by update norm (at least one point each)."""
    top = np.zeros_like(y, dtype=bool)
    for c in (0, 1):
        idx = np.flatnonzero(y == c)
        k = max(1, round(0.1 * idx.size))
        top[idx[np.argsort(norms[idx])[-k:]]] = True
    return top


def _snapshots(
    settings: BoundarySettings, program: TrainProgram, p_values, grid: np.ndarray
) -> list[BoundarySnapshot]:
    s = settings
    (x, y, _), _, params = program.data_for(s.seeds[0])
    xx, yy = np.meshgrid(grid, grid)
    pts = jnp.asarray(np.stack([xx.ravel(), yy.ravel()], -1), jnp.float32)
    opt_state = program.tx_for(p_values).init(params)
    done, out = 0, []
    for step in s.checkpoints:
        params, opt_state = program.advance(
            params, opt_state, step - done, p_values, x, y
        )
        done = step
        prob, norms = program.probe(params, opt_state, step, p_values, x, y, pts)
        top = _top_tenth(np.asarray(norms), np.asarray(y))
        out.append(BoundarySnapshot(step, np.asarray(prob).reshape(xx.shape), top))
    return out


def boundary_demo(
    settings: BoundarySettings = _DEFAULTS, *, snapshots: bool = True
) -> BoundaryResult:
    """Trains the MLP with :func:`nsf_optax.nsf` for every row and seed.

    Every row uses the same learning rate, the same seeds (data and init) and
    full-batch steps. Rows are ranked by early accuracy (the seed-mean of the
    test accuracy averaged over the evaluations in ``(0, early_steps]``);
    steps-to-target is reported beside it
    (:func:`~nsf_optax.experiments.boundary.verdicts.boundary_summary`). The
    verdicts are
    :func:`~nsf_optax.experiments.boundary.verdicts.boundary_verdicts`'.

    Args:
      settings: :class:`BoundarySettings`.
      snapshots: also record boundary snapshots for the first seed.

    Returns:
      A :class:`BoundaryResult`.

    References:
      Zhang & Liu, arXiv:2509.04713, 2025, Sec. 4.2.2.
    """
    s = settings
    if any(c < 1 or c > s.num_steps for c in s.checkpoints):
        raise ValueError("checkpoints must lie in [1, num_steps].")
    program = make_train(s)
    seeds = jnp.asarray(s.seeds)
    counts = jnp.arange(s.num_steps + 1)
    rows = s.rows()
    curves, p_arrays = [], {}
    for label, sched in rows.items():
        p_values = jnp.asarray(jax.vmap(sched)(counts), jnp.float32)
        p_arrays[label] = p_values
        curves.append([np.asarray(c) for c in program.train_all(seeds, p_values)])
    acc, near_acc, train_loss, test_loss = (
        np.stack([c[i] for c in curves]) for i in range(4)
    )
    eval_steps = np.arange(acc.shape[-1]) * s.eval_every
    reached = acc >= s.target_accuracy
    steps_to = np.where(
        reached.any(-1), eval_steps[np.argmax(reached, -1)], np.nan
    ).astype(np.float64)
    labels = list(rows)
    summary = verdicts.boundary_summary(s, labels, eval_steps, acc, steps_to)
    grid = np.linspace(-1.3, 1.3, s.grid_size)
    snaps = {}
    if snapshots:
        for label in labels:
            snaps[label] = _snapshots(s, program, p_arrays[label], grid)
    (x, y, near), _, _ = program.data_for(s.seeds[0])
    return BoundaryResult(
        settings=s,
        labels=labels,
        eval_steps=eval_steps,
        accuracy=acc,
        near_accuracy=near_acc,
        train_loss=train_loss,
        test_loss=test_loss,
        steps_to_target=steps_to,
        summary=summary,
        verdicts=verdicts.boundary_verdicts(s, summary),
        snapshots=snaps,
        train_data=(np.asarray(x), np.asarray(y), np.asarray(near)),
        grid=grid,
    )


# The command line: flags, settings, the report.

_FLAGS = {
    "lr": (float, "the learning rate, the same for every p"),
    "num_steps": (int, "full-batch steps"),
    "n_train": (int, "training points (half per class)"),
    "target_accuracy": (float, "test accuracy that counts as aligned"),
    "early_steps": (int, "rows are ranked by mean test accuracy up to this step"),
}


def _add_flags(parser: argparse.ArgumentParser) -> None:
    report.add_flags(parser, _FLAGS)
    report.add_flag(
        parser,
        "loss_reduction",
        choices=("mean", "sum"),
        help="mean or summed cross-entropy over the batch",
    )
    report.add_flag(
        parser, "normalize", choices=("none", "rms"), help="nsf's normalize"
    )
    report.add_flag(parser, "num_seeds", type=int, help="seeds 0 .. num_seeds - 1")


def _settings(base: BoundarySettings, args: argparse.Namespace) -> BoundarySettings:
    s = report.replace_given(base, args, [*_FLAGS, "loss_reduction"])
    changes: dict[str, Any] = {
        "checkpoints": tuple(c for c in base.checkpoints if c <= s.num_steps)
    }
    if args.normalize is not None:
        changes["normalize"] = None if args.normalize == "none" else "rms"
    if args.num_seeds is not None:
        changes["seeds"] = tuple(range(args.num_seeds))
    return dataclasses.replace(s, **changes)


def _json(result: BoundaryResult) -> dict[str, Any]:
    return {
        "settings": result.settings,
        "summary": result.summary,
        "verdict_details": {
            "ranking": result.verdicts["ranking"],
            "fastest": result.verdicts["fastest"],
        },
    }


def _row_text(label: str, s: dict[str, Any], num_seeds: int) -> str:
    diff = (
        f"{s['early_accuracy_minus_p0_mean']:+.3f}±{s['early_accuracy_minus_p0_ci95']:.3f}"
        if "early_accuracy_minus_p0_mean" in s
        else ""
    )
    reach = (
        f"{s['steps_to_target_mean']:.0f}±{s['steps_to_target_ci95']:.0f} "
        f"({s['reached']}/{num_seeds})"
    )
    early = f"{s['early_accuracy_mean']:.3f}±{s['early_accuracy_ci95']:.3f}"
    return f"{label:<17}{early:<17}{diff:<19}{reach:<20}{s['final_accuracy_mean']:.3f}"


def _text(result: BoundaryResult) -> str:
    settings = result.settings
    lines = [
        f"{'row':<17}{'early acc':<17}{'vs p=0 (paired)':<19}"
        f"{'steps to ' + str(settings.target_accuracy):<20}final acc"
    ]
    lines += [
        _row_text(label, s, len(settings.seeds)) for label, s in result.summary.items()
    ]
    lines += [f"{key}: {value}" for key, value in result.verdicts.items()]
    return "\n".join(lines)


EXPERIMENT = report.Experiment(
    name="boundary",
    description=(
        "2-D two-class angle data, 2-layer ReLU MLP trained with "
        "nsf_optax.nsf at one learning rate for every p and a cosine-tidal "
        "p; early test accuracy and steps-to-target over seeds with 95%% "
        "t-intervals (arXiv:2509.04713, Sec. 4.2.2)."
    ),
    defaults=lambda: _DEFAULTS,
    quick=lambda: _QUICK,
    add_flags=_add_flags,
    settings=_settings,
    run=lambda settings, figures: boundary_demo(settings, snapshots=figures),
    verdicts=verdicts.claims,
    to_json=_json,
    text=_text,
    figures=figures.figures,
)


main = report.command(EXPERIMENT)
