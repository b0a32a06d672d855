"""The paper's 1-D density demonstration (Sec. 4.2.1), its Eq. 14 and command line.

Usage::

  python -m nsf_optax.experiments.density --json
"""

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
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


@dataclasses.dataclass(frozen=True)
class DensitySettings:
    """Settings of the density demo (the paper's values were lost; ours).

    Attributes:
      lr: the fixed learning rate :math:`\\eta`.
      eps: floor in :math:`(G + \\epsilon)^{-p}`.
      num_steps: iterations.
      num_points: grid size; the grid is the cell midpoints of ``[0, 1]``.
      region: the boundary region on which fRMSE is measured.
      threshold: fRMSE target for the steps-to-threshold table.
      checkpoints: steps at which the prediction is snapshotted.
      ps: exponents compared.
      slopes: density slopes ``s`` compared.
      early_step: step at which Eq. 14 is compared with the simulation.
    """

    lr: float = 0.01
    eps: float = 1e-8
    num_steps: int = 2000
    num_points: int = 512
    region: tuple[float, float] = (0.9, 1.0)
    threshold: float = 0.1
    checkpoints: tuple[int, ...] = (10, 100, 500, 2000)
    ps: tuple[float, ...] = (-0.5, -0.25, 0.0, 0.5)
    slopes: tuple[float, ...] = (-1.0, 0.0, 1.0)
    early_step: int = 20


def density_target(x: jnp.ndarray) -> jnp.ndarray:
    r"""The demo's target :math:`f(x) = \sin(2\pi x) + \tfrac12\cos(6\pi x)`.

    The paper's target was lost in extraction; this one mixes a low and a higher
    frequency and does not vanish at the right boundary, where fRMSE is measured.
    """
    return jnp.sin(2 * jnp.pi * x) + 0.5 * jnp.cos(6 * jnp.pi * x)


def sample_density(x: jnp.ndarray, slope: float) -> jnp.ndarray:
    r"""Sample density :math:`\rho(x) = 1 + s\,(x - \tfrac12)`.

    Positive on :math:`[0, 1]` for :math:`|s| < 2`.
    """
    return 1.0 + slope * (x - 0.5)


class DensityRun(NamedTuple):
    """One run of :func:`simulate_density`."""

    x: jnp.ndarray  # [M] grid
    frmse: jnp.ndarray  # [num_steps + 1] fRMSE on the region, step 0 first
    snapshots: jnp.ndarray  # [C, M] prediction u = f + e at the checkpoints
    error_early: jnp.ndarray  # [M] error e at ``early_step``


def simulate_density(
    p: float,
    slope: float,
    *,
    lr: float = 0.01,
    eps: float = 1e-8,
    num_steps: int = 2000,
    num_points: int = 512,
    region: tuple[float, float] = (0.9, 1.0),
    checkpoints: tuple[int, ...] = (10, 100, 500, 2000),
    early_step: int = 20,
) -> DensityRun:
    r"""Iterates the unified update on the 1-D weighted regression (no EMA).

    With predictor :math:`u` (initially 0), error :math:`e = u - f`, weighted
    loss :math:`\tfrac12\int \rho\, e^2`, local gradient :math:`g = \rho e` and
    accumulated squared gradient :math:`G`:

    .. math::
      G_{n+1} = G_n + g_n^2, \qquad
      e_{n+1} = e_n - \eta\, \frac{g_n}{(G_{n+1} + \epsilon)^{p}} .

    fRMSE on the region :math:`R` is
    :math:`\sqrt{\textstyle\sum_R e^2 / \sum_R f^2}`.

    Args:
      p: the exponent (any real; ``p < 0`` amplifies large-gradient points).
      slope: density slope ``s``, ``|s| < 2``.
      lr: learning rate :math:`\eta > 0`.
      eps: :math:`\epsilon > 0`.
      num_steps: iterations (static).
      num_points: grid size (static).
      region: ``(lo, hi)`` of the fRMSE region.
      checkpoints: steps to snapshot, each in ``[0, num_steps]`` (static).
      early_step: step whose error is returned for the Eq. 14 check (static).

    Returns:
      A :class:`DensityRun`.

    References:
      Zhang & Liu, arXiv:2509.04713, 2025, Sec. 4.2.1.
    """
    x = (jnp.arange(num_points, dtype=jnp.float32) + 0.5) / num_points
    f = density_target(x)
    rho = sample_density(x, slope)
    mask = (x >= region[0]) & (x <= region[1])
    norm = jnp.sqrt(jnp.sum(jnp.where(mask, f**2, 0.0)))

    def frmse(e):
        return jnp.sqrt(jnp.sum(jnp.where(mask, e**2, 0.0))) / norm

    def step(carry, _):
        e, acc = carry
        g = rho * e
        acc = acc + g**2
        e = e - lr * g / (acc + eps) ** p
        return (e, acc), (frmse(e), e)

    e0 = -f
    _, (curve, errors) = jax.lax.scan(
        step, (e0, jnp.zeros_like(e0)), None, length=num_steps
    )
    errors = jnp.concatenate([e0[None], errors])
    idx = jnp.asarray(checkpoints)
    return DensityRun(
        x=x,
        frmse=jnp.concatenate([frmse(e0)[None], curve]),
        snapshots=f[None] + errors[idx],
        error_early=errors[early_step],
    )


def eq14_prediction(
    x: jnp.ndarray, step: float, p: float, slope: float, lr: float
) -> jnp.ndarray:
    r"""The paper's closed-form early-time error (its Eq. 14), for ``p < 1``.

    Early on :math:`G(x, t) \approx \rho^2 e_0^2\, t`, so
    :math:`\partial_t e = -\eta \rho e / (\rho^2 e_0^2 t)^{p}` integrates to

    .. math::
      e(x, t) \approx e_0(x)\, \exp\!\Big(-\eta\,
        \frac{\rho(x)^{1-2p}\, |e_0(x)|^{-2p}}{1 - p}\; t^{1-p}\Big),

    with :math:`t` the step count. At :math:`p = 1/2` the density drops out
    (:math:`\rho^0`); at :math:`p = 0` the rate is linear in :math:`\rho`; for
    :math:`p < 0` the factor :math:`\rho^{1-2p}` amplifies the density.

    Args:
      x: points in ``[0, 1]``.
      step: the step count :math:`t > 0`.
      p: the exponent, ``p < 1``.
      slope: density slope ``s``.
      lr: learning rate :math:`\eta`.

    Returns:
      The predicted error at ``x``.

    References:
      Zhang & Liu, arXiv:2509.04713, 2025, Eq. 14.
    """
    if p >= 1:
        raise ValueError(f"p must be < 1 for Eq. 14, got {p}.")
    e0 = -density_target(x)
    rho = sample_density(x, slope)
    rate = rho ** (1 - 2 * p) * jnp.abs(e0) ** (-2 * p) / (1 - p)
    return e0 * jnp.exp(-lr * rate * step ** (1 - p))


class DensityResult(NamedTuple):
    """Tables of :func:`density_demo`, keyed by ``(p, slope)``."""

    settings: DensitySettings
    runs: dict[tuple[float, float], DensityRun]
    final_frmse: dict[tuple[float, float], float]
    steps_to_threshold: dict[tuple[float, float], int | None]
    eq14_rel_error: dict[tuple[float, float], float]
    verdicts: dict[str, Any]


def _first_below(curve: np.ndarray, threshold: float) -> int | None:
    hits = np.flatnonzero(curve < threshold)
    return int(hits[0]) if hits.size else None


def density_demo(settings: DensitySettings = DensitySettings()) -> DensityResult:
    """Runs every ``(p, slope)`` pair and scores the paper's three claims.

    Density sensitivity of ``p`` is the ratio of steps-to-threshold at the
    lowest slope to that at the highest slope (the region is at the right
    boundary, so the highest slope puts the most density there). Verdicts:

    * ``adam_insensitive``: the ratio at ``p = 0.5`` lies within ``[0.9, 1.1]``.
    * ``sgd_density_faster``: at ``p = 0`` the ratio exceeds 1.
    * ``negative_p_amplifies``: every ``p < 0`` has a larger ratio than ``p = 0``.

    ``eq14_rel_error`` is ``||e_sim - e_eq14|| / ||e_0 - e_sim||`` at
    ``early_step`` over the whole grid: the prediction's error relative to how
    far the error has moved.

    Returns:
      A :class:`DensityResult`.

    References:
      Zhang & Liu, arXiv:2509.04713, 2025, Sec. 4.2.1.
    """
    s = settings
    sim = jax.jit(
        simulate_density,
        static_argnames=(
            "num_steps",
            "num_points",
            "region",
            "checkpoints",
            "early_step",
        ),
    )
    runs, final, reach, eq14 = {}, {}, {}, {}
    for p in s.ps:
        for slope in s.slopes:
            run = sim(
                jnp.float32(p),
                jnp.float32(slope),
                lr=s.lr,
                eps=s.eps,
                num_steps=s.num_steps,
                num_points=s.num_points,
                region=s.region,
                checkpoints=s.checkpoints,
                early_step=s.early_step,
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
    lo, hi = min(s.slopes), max(s.slopes)

    def ratio(p: float) -> float:
        a, b = reach[(p, lo)], reach[(p, hi)]
        if a is None or b is None:
            return float("nan")
        return a / b

    ratios = {p: ratio(p) for p in s.ps}
    verdicts: dict[str, Any] = {"density_sensitivity": ratios}
    if 0.5 in ratios:
        verdicts["adam_insensitive"] = bool(0.9 <= ratios[0.5] <= 1.1)
    if 0.0 in ratios:
        verdicts["sgd_density_faster"] = bool(ratios[0.0] > 1.0)
        negative = [p for p in s.ps if p < 0]
        verdicts["negative_p_amplifies"] = bool(
            negative and all(ratios[p] > ratios[0.0] for p in negative)
        )
    return DensityResult(s, runs, final, reach, eq14, verdicts)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit status."""
    d = DensitySettings()
    ap = argparse.ArgumentParser(
        prog="python -m nsf_optax.experiments.density",
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
