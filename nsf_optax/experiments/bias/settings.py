"""Settings and result types of the spectral-bias experiment.

The command line (:mod:`.experiment`), the verdicts (:mod:`.verdicts`) and the
figures (:mod:`.figures`) all import them from here.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal, NamedTuple

import numpy as np
import optax

from nsf_optax import p_schedule
from nsf_optax.experiments.runner.fields import Bound, check_numbers

__all__ = [
    "BiasResult",
    "BiasRow",
    "BiasSettings",
    "Normalize",
    "check_settings",
    "row_key",
]

Normalize = Literal["rms"] | None


@dataclasses.dataclass(frozen=True)
class BiasSettings:
    r"""Settings of the spectral-bias experiment (defaults: the published run).

    Attributes:
      freqs: the target's frequencies :math:`k` (cycles on ``[0, 1]``), equal
        amplitudes, random phases per seed.
      num_points: the uniform training grid :math:`x_n = n / N` (full batch).
      amplitude: every sinusoid's amplitude; ``None``: :math:`\sqrt{2 / K}`, a
        target of unit RMS (larger targets make full-batch training of the
        ReLU MLP spike and lose units at the learning rates that learn the
        high band within ``num_steps``).
      width: hidden units per layer.
      depth: hidden layers.
      num_steps: full-batch steps ``T``.
      seeds: evaluation seeds; a seed draws the init and the target's phases,
        shared by every setting (comparisons are paired over seeds).
      tune_seeds: seeds of the learning-rate search, apart from ``seeds``.
      lr_grid: the learning rates tried for every setting; each setting takes
        the one with the lowest mean log10 training loss over the run (the
        area under its log-loss curve), averaged over ``tune_seeds``.
      b1, b2, eps: :func:`nsf_optax.nsf`'s moment decays and epsilon.
      ps: the constant exponents.
      cosine: ``(min_value, max_value, period_steps)`` of the cosine tide
        (starts at ``max_value``).
      pulse: ``(pulse_value, pulse_steps, first_value, second_value,
        every_steps)``: ``pulse_value`` for ``pulse_steps``, then a square tide
        starting at ``first_value``.
      normalizes: ``None`` and/or ``"rms"``; every schedule runs with each.
      threshold: relative error below which a frequency counts as learned.
      sensitivity_thresholds: the verdicts are also reported at these.
      band_size: frequencies in the low band (the lowest) and the high band
        (the highest).
      probe_every: steps between the probes of the paper's Eq. 4 bridge.
      min_spearman: rank correlation that counts as an order (claims a, b).
      low_band_tolerance: claim (c) allows the low band this relative delay.

    Examples:
      >>> from nsf_optax.experiments.bias.settings import BiasSettings
      >>> list(BiasSettings().schedules())[-3:]
      ['p=0.5', 'cosine[-0.5,0.5]', 'pulse[-0.5,0.5]']
    """

    freqs: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
    num_points: int = 64
    amplitude: float | None = None
    width: int = 64
    depth: int = 3
    num_steps: int = 4000
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    tune_seeds: tuple[int, ...] = (100, 101)
    lr_grid: tuple[float, ...] = tuple(
        10.0**e for e in (-2.5, -2, -1.5, -1, -0.5, 0, 0.5)
    )
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8
    ps: tuple[float, ...] = (-0.5, -0.25, 0.0, 0.25, 0.5)
    cosine: tuple[float, float, int] = (-0.5, 0.5, 1000)
    pulse: tuple[float, int, float, float, int] = (0.5, 400, -0.5, 0.5, 400)
    normalizes: tuple[Normalize, ...] = (None, "rms")
    threshold: float = 0.2
    sensitivity_thresholds: tuple[float, ...] = (0.1, 0.3)
    band_size: int = 3
    probe_every: int = 400
    min_spearman: float = 0.8
    low_band_tolerance: float = 0.1

    @classmethod
    def quick(cls) -> BiasSettings:
        """A small size that runs in well under a minute (CI, notebooks)."""
        return cls(
            freqs=(1, 2, 3, 4, 5, 6),
            num_points=32,
            width=16,
            depth=2,
            num_steps=400,
            seeds=(0, 1),
            tune_seeds=(100,),
            lr_grid=(1e-2, 1e-1, 1.0),
            cosine=(-0.5, 0.5, 200),
            pulse=(0.5, 40, -0.5, 0.5, 40),
            band_size=2,
            probe_every=100,
        )

    def schedules(self) -> dict[str, tuple[optax.Schedule, dict[str, Any]]]:
        """``{label: (p schedule, description)}``: constant p, cosine, pulse."""
        out = {
            f"p={p:g}": (p_schedule.constant(p), {"kind": "constant", "p": p})
            for p in self.ps
        }
        lo, hi, period = self.cosine
        out[f"cosine[{lo:g},{hi:g}]"] = (
            p_schedule.cosine_tidal(lo, hi, period),
            {
                "kind": "cosine_tidal",
                "min_value": lo,
                "max_value": hi,
                "period_steps": period,
            },
        )
        value, steps, first, second, every = self.pulse
        out[f"pulse[{first:g},{second:g}]"] = (
            p_schedule.pulse_tidal(
                value, steps, p_schedule.square_tidal(first, second, every)
            ),
            {
                "kind": "pulse_tidal",
                "pulse_value": value,
                "pulse_steps": steps,
                "square_first": first,
                "square_second": second,
                "every_steps": every,
            },
        )
        return out


class BiasRow(NamedTuple):
    """One setting: a p schedule with one ``normalize``, its tuned learning rate."""

    key: str  # e.g. "p=0.5", "cosine[-0.5,0.5] rms"
    schedule: str  # the schedule's label
    normalize: Normalize
    description: dict[str, Any]
    mean_p: float  # time average of p over the run
    tune_score: tuple[float, ...]  # mean log10 loss over the run, per lr_grid
    lr: float  # the chosen one (lowest score)
    lr_at_edge: bool  # the chosen lr is the grid's first or last


class BiasResult(NamedTuple):
    """What :func:`~.experiment.bias_experiment` measured (``S`` seeds, ``K`` freqs)."""

    settings: BiasSettings
    rows: list[BiasRow]
    errors: dict[str, np.ndarray]  # [S, T + 1, K] relative error after t updates
    loss: dict[str, np.ndarray]  # [S, T + 1]
    time_to_learn: dict[str, np.ndarray]  # [S, K] first step below threshold (nan)
    probe_steps: np.ndarray  # [P]
    kernel_gain: dict[str, np.ndarray]  # [S, P, K] (see BiasTrace)
    kernel: dict[str, np.ndarray]  # [S, P, K]
    log_nu: dict[str, np.ndarray]  # [S, P, K]
    summary: dict[str, dict[str, Any]]
    verdicts: dict[str, Any]


def row_key(label: str, normalize: str | None) -> str:
    """The row key of a schedule label with one ``normalize``.

    Examples:
      >>> row_key("p=0.5", "rms"), row_key("p=0.5", None)
      ('p=0.5 rms', 'p=0.5')
    """
    return label if normalize is None else f"{label} {normalize}"


def check_settings(settings: BiasSettings) -> None:
    """Raises ValueError on settings the experiment cannot run or score."""
    s = settings
    sizes = ("num_points", "width", "depth", "num_steps", "probe_every")
    check_numbers(s, dict.fromkeys(sizes, Bound(low=1)))
    if s.num_steps % s.probe_every:
        raise ValueError("num_steps must be a multiple of probe_every.")
    if len(s.seeds) < 2:
        raise ValueError("seeds needs at least two seeds (confidence intervals).")
    if not 1 <= s.band_size <= len(s.freqs) // 2:
        raise ValueError("band_size must be in [1, len(freqs) // 2].")
