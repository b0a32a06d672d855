"""Settings and result types of the 2-D decision-boundary demonstration (Sec. 4.2.2).

The command line (:mod:`.experiment`), the verdicts (:mod:`.verdicts`) and the
figures (:mod:`.figures`) all import them from here.
"""

import dataclasses
from typing import Literal, NamedTuple

import numpy as np
import optax

from nsf_optax import p_schedule
from nsf_optax.experiments.runner.fields import (
    NON_NEGATIVE,
    POSITIVE,
    UNIT,
    Bound,
    check_numbers,
)

__all__ = ["BoundaryResult", "BoundarySettings", "BoundarySnapshot"]


@dataclasses.dataclass(frozen=True)
class BoundarySettings:
    """Settings of the 2-D demo (the paper's values were lost; ours).

    Attributes:
      n_train: training points (half per class).
      n_test: test points (half per class).
      noise: std of the Gaussian jitter around each branch.
      near_fraction: share of each class on its near branch (paper: 20 %).
      hidden: hidden width of the 2-layer ReLU MLP (paper: 32).
      lr: the learning rate, the same for every p.
      b1: first-moment decay of :func:`nsf_optax.nsf`.
      b2: second-moment decay of :func:`nsf_optax.nsf`.
      eps: :func:`nsf_optax.nsf`'s eps.
      normalize: passed to :func:`nsf_optax.nsf` (``"rms"``: p changes only the
        relative weighting, not the step size).
      loss_reduction: ``"mean"`` or ``"sum"`` cross-entropy over the batch; the
        sum multiplies every gradient by ``n_train``, which moves the balance
        between p values (the gain ``vhat**-p`` depends on the gradients' scale).
      num_steps: full-batch steps.
      eval_every: evaluation period in steps.
      seeds: one run per seed (data, init); every p shares the seeds.
      ps: constant exponents compared.
      tidal: ``(min_value, max_value, period_steps)`` of the cosine-tidal row.
      target_accuracy: test accuracy that counts as "aligned".
      early_steps: the early window; rows are ranked by their mean test
        accuracy over evaluations at steps ``1..early_steps`` (an area under the
        early accuracy curve: higher means the boundary aligned earlier).
      checkpoints: steps of the boundary snapshots (seed ``seeds[0]``).
      grid_size: resolution of the snapshot grid on ``[-1.3, 1.3]^2``.
    """

    n_train: int = 400
    n_test: int = 2000
    noise: float = 0.03
    near_fraction: float = 0.2
    hidden: int = 32
    lr: float = 1e-2
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8
    normalize: Literal["rms"] | None = None
    loss_reduction: Literal["mean", "sum"] = "mean"
    num_steps: int = 1000
    eval_every: int = 10
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    ps: tuple[float, ...] = (-0.5, -0.25, 0.0, 0.25, 0.5)
    tidal: tuple[float, float, int] = (-0.5, 0.5, 200)
    target_accuracy: float = 0.98
    early_steps: int = 200
    checkpoints: tuple[int, ...] = (10, 50, 200, 1000)
    grid_size: int = 80

    def __post_init__(self):
        check_numbers(
            self,
            {
                "n_train": Bound(low=2),
                "n_test": Bound(low=2),
                "noise": NON_NEGATIVE,
                "near_fraction": Bound(low=0, high=1),
                "hidden": POSITIVE,
                "lr": POSITIVE,
                "b1": UNIT,
                "b2": UNIT,
                "eps": NON_NEGATIVE,
                "num_steps": POSITIVE,
                "eval_every": POSITIVE,
                "target_accuracy": Bound(low=0, high=1),
                "early_steps": Bound(low=1, high=self.num_steps),
                "grid_size": Bound(low=2),
            },
        )

    def rows(self) -> dict[str, optax.Schedule]:
        """``{label: p schedule}``: the constant p rows, then the tidal row."""
        rows = {f"p={p:g}": p_schedule.constant(p) for p in self.ps}
        lo, hi, period = self.tidal
        rows[f"tidal[{lo:g},{hi:g}]"] = p_schedule.cosine_tidal(lo, hi, period)
        return rows


class BoundarySnapshot(NamedTuple):
    """The boundary of one run at one step."""

    step: int
    prob: np.ndarray  # [G, G] P(class 1) on the grid (rows: y, columns: x)
    top: np.ndarray  # [n_train] bool, top 10 % per class by update norm


class BoundaryResult(NamedTuple):
    """What :func:`~.experiment.boundary_demo` measured (``R`` rows, ``S`` seeds)."""

    settings: BoundarySettings
    labels: list[str]
    eval_steps: np.ndarray  # [E]
    accuracy: np.ndarray  # [R, S, E] test accuracy
    near_accuracy: np.ndarray  # [R, S, E] test accuracy on near-branch points
    train_loss: np.ndarray  # [R, S, E] mean train cross-entropy
    test_loss: np.ndarray  # [R, S, E] mean test cross-entropy
    steps_to_target: np.ndarray  # [R, S] first eval step with acc >= target (nan)
    summary: dict[str, dict[str, float]]
    verdicts: dict[str, object]
    snapshots: dict[str, list[BoundarySnapshot]]
    train_data: tuple[np.ndarray, np.ndarray, np.ndarray]  # seed-0 (x, y, near)
    grid: np.ndarray  # [G] coordinates of the grid axes
