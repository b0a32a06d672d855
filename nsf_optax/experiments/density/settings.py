"""Settings and result types of the 1-D density demonstration (Sec. 4.2.1).

The command line (:mod:`.experiment`), the verdicts (:mod:`.verdicts`) and the
figures (:mod:`.figures`) all import them from here.
"""

import dataclasses
from typing import Any, NamedTuple

import jax.numpy as jnp

from nsf_optax.experiments.runner.fields import (
    NON_NEGATIVE,
    POSITIVE,
    Bound,
    check_numbers,
)

__all__ = ["DensityResult", "DensityRun", "DensitySettings"]


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

    def __post_init__(self):
        check_numbers(
            self,
            {
                "lr": POSITIVE,
                "eps": NON_NEGATIVE,
                "num_steps": POSITIVE,
                "num_points": Bound(low=2),
                "threshold": POSITIVE,
                "early_step": Bound(low=1, high=self.num_steps),
            },
        )


class DensityRun(NamedTuple):
    """One run of :func:`~nsf_optax.experiments.density.model.simulate_density`."""

    x: jnp.ndarray  # [M] grid
    frmse: jnp.ndarray  # [num_steps + 1] fRMSE on the region, step 0 first
    snapshots: jnp.ndarray  # [C, M] prediction u = f + e at the checkpoints
    error_early: jnp.ndarray  # [M] error e at ``early_step``


class DensityResult(NamedTuple):
    """Tables of :func:`~.experiment.density_demo`, keyed by ``(p, slope)``."""

    settings: DensitySettings
    runs: dict[tuple[float, float], DensityRun]
    final_frmse: dict[tuple[float, float], float]
    steps_to_threshold: dict[tuple[float, float], int | None]
    eq14_rel_error: dict[tuple[float, float], float]
    verdicts: dict[str, Any]
