"""The paper's 1-D density demonstration (Sec. 4.2.1): run it, report it.

Usage::

  python -m nsf_optax.experiments.density            # table and verdicts
  python -m nsf_optax.experiments.density --json     # one JSON object
  python -m nsf_optax.experiments.density --quick    # a smoke test
  python -m nsf_optax.experiments.density --plots DIR

The smallest of the paper's experiments, and the one to copy for a new one:
settings and result types in :mod:`.settings`, the model in :mod:`.model`, the
verdicts in :mod:`.verdicts`, the figures in :mod:`.figures`, and here the run
and the :class:`~nsf_optax.experiments.report.Experiment` record that the shared
command line (:mod:`nsf_optax.experiments.report`) runs.
"""

import argparse
import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from nsf_optax.experiments import report
from nsf_optax.experiments.density import figures, verdicts
from nsf_optax.experiments.density.model import (
    density_target,
    eq14_prediction,
    sample_density,
    simulate_density,
)
from nsf_optax.experiments.density.settings import (
    DensityResult,
    DensityRun,
    DensitySettings,
)

__all__ = [
    "EXPERIMENT",
    "DensityResult",
    "DensityRun",
    "DensitySettings",
    "density_demo",
    "density_target",
    "eq14_prediction",
    "main",
    "sample_density",
    "simulate_density",
]

_DEFAULTS = DensitySettings()
_QUICK = DensitySettings(num_steps=200, num_points=64, checkpoints=(10, 100, 200))


def _first_below(curve: np.ndarray, threshold: float) -> int | None:
    hits = np.flatnonzero(curve < threshold)
    return int(hits[0]) if hits.size else None


def density_demo(settings: DensitySettings = _DEFAULTS) -> DensityResult:
    """Runs every ``(p, slope)`` pair and scores the paper's three claims.

    The verdicts are :func:`~nsf_optax.experiments.density.verdicts.density_verdicts`'.
    ``eq14_rel_error`` is ``||e_sim - e_eq14|| / ||e_0 - e_sim||`` at
    ``early_step`` over the whole grid: the prediction's error relative to how
    far the error has moved.

    Returns:
      A :class:`DensityResult`.

    References:
      Zhang & Liu, arXiv:2509.04713, 2025, Sec. 4.2.1.
    """
    s = settings
    static = ("num_steps", "num_points", "region", "checkpoints", "early_step")
    sim = jax.jit(simulate_density, static_argnames=static)
    runs, final, reach, eq14 = {}, {}, {}, {}
    for p in s.ps:
        for slope in s.slopes:
            run = sim(
                jnp.float32(p),
                jnp.float32(slope),
                lr=s.lr,
                eps=s.eps,
                **{name: getattr(s, name) for name in static},
            )
            key = (p, slope)
            runs[key] = run
            curve = np.asarray(run.frmse)
            final[key] = float(curve[-1])
            reach[key] = _first_below(curve, s.threshold)
            e0 = -np.asarray(density_target(run.x))
            pred = np.asarray(eq14_prediction(run.x, s.early_step, p, slope, s.lr))
            sim_e = np.asarray(run.error_early)
            eq14[key] = float(np.linalg.norm(sim_e - pred) / np.linalg.norm(e0 - sim_e))
    return DensityResult(
        s, runs, final, reach, eq14, verdicts.density_verdicts(s, reach)
    )


# The command line: flags, settings, the report.

_FLAGS = {
    "lr": (float, "the learning rate"),
    "eps": (float, "floor in (G + eps)^-p"),
    "num_steps": (int, "iterations"),
    "num_points": (int, "grid size"),
    "threshold": (float, "fRMSE target of the steps-to-threshold table"),
    "early_step": (int, "step at which Eq. 14 is compared with the simulation"),
}


def _add_flags(parser: argparse.ArgumentParser) -> None:
    report.add_flags(parser, _FLAGS)


def _settings(base: DensitySettings, args: argparse.Namespace) -> DensitySettings:
    s = report.replace_given(base, args, list(_FLAGS))
    checkpoints = tuple(c for c in base.checkpoints if c <= s.num_steps)
    return dataclasses.replace(s, checkpoints=checkpoints)


def _rows(result: DensityResult) -> list[dict[str, Any]]:
    return [
        {
            "p": p,
            "slope": s,
            "final_frmse": result.final_frmse[(p, s)],
            "steps_to_threshold": result.steps_to_threshold[(p, s)],
            "eq14_rel_error": result.eq14_rel_error[(p, s)],
        }
        for (p, s) in result.final_frmse
    ]


def _json(result: DensityResult) -> dict[str, Any]:
    return {
        "settings": result.settings,
        "rows": _rows(result),
        "verdict_details": {
            "density_sensitivity": result.verdicts["density_sensitivity"]
        },
    }


def _text(result: DensityResult) -> str:
    lines = ["p       s     final fRMSE  steps<thr  Eq.14 rel.err"]
    for r in _rows(result):
        lines.append(
            f"{r['p']:<7g} {r['slope']:<5g} {r['final_frmse']:<12.2e} "
            f"{r['steps_to_threshold']!s:<10} {r['eq14_rel_error']:.3f}"
        )
    lines += [f"{key}: {value}" for key, value in result.verdicts.items()]
    return "\n".join(lines)


EXPERIMENT = report.Experiment(
    name="density",
    description=(
        "1-D density demo: fRMSE on the right-boundary region and "
        "steps-to-threshold for each p and density slope s, the paper's Eq. 14 "
        "against the simulation, and verdicts (arXiv:2509.04713, Sec. 4.2.1)."
    ),
    defaults=DensitySettings,
    quick=lambda: _QUICK,
    add_flags=_add_flags,
    settings=_settings,
    run=lambda settings, _: density_demo(settings),
    verdicts=verdicts.claims,
    to_json=_json,
    text=_text,
    figures=figures.figures,
)


main = report.command(EXPERIMENT)
