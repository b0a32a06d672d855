"""The decay experiment's robustness band: the table and verdicts around settings.

Public through :mod:`nsf_optax.experiments.decay.experiment`.
"""

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from nsf_optax.experiments.decay.search import _fractions
from nsf_optax.experiments.decay.settings import DecaySettings
from nsf_optax.experiments.decay.table import (
    _assemble,
    _simulate,
    compare_with_paper,
    default_rows,
)
from nsf_optax.experiments.decay.verdicts import verdicts

__all__ = ["BAND_FIELDS", "robustness_band"]

_DEFAULTS = DecaySettings()

# The numeric searched settings, perturbed by the robustness band.
BAND_FIELDS = ("eps", "amplitude", "amplitude_decay", "window", "tidal_period_steps")
_NUMERIC = (*BAND_FIELDS, "eta", "dt")


def _scaled(settings: DecaySettings, field: str, factor: float) -> DecaySettings:
    """``settings`` with one numeric field multiplied by ``factor``.

    The window's ends move together and the horizon follows the window's end.
    """
    value = getattr(settings, field)
    if field == "window":
        value = tuple(v * factor for v in value)
        steps = max(settings.num_steps, math.ceil(value[1] / settings.dt - 1e-6))
        return dataclasses.replace(settings, window=value, num_steps=steps)
    if isinstance(value, int):
        value = max(1, round(value * factor))
    else:
        value = value * factor
    return dataclasses.replace(settings, **{field: value})


def _score(settings: DecaySettings) -> dict[str, Any]:
    table = _assemble(settings, _simulate(settings, default_rows(settings)))
    v = verdicts(table)
    return {**compare_with_paper(table), "holds": {k: d["holds"] for k, d in v.items()}}


def robustness_band(
    settings: DecaySettings = _DEFAULTS,
    fields: Sequence[str] = BAND_FIELDS,
    *,
    scale: float = 0.2,
    draws: int = 30,
    seed: int = 0,
) -> dict[str, Any]:
    """How the match with the paper, and the verdicts, move with the settings.

    Each field is multiplied by ``1 - scale`` and ``1 + scale`` one at a time,
    then all jointly by independent factors drawn uniformly from
    ``[1 - scale, 1 + scale]`` (``draws`` draws, seeded). Integers are rounded;
    the window's ends are scaled together and the horizon follows the end.

    Args:
      settings: the centre of the band.
      fields: numeric :class:`DecaySettings` fields to perturb.
      scale: relative size of the perturbation, in ``(0, 1)``.
      draws: number of joint draws, ``>= 1``.
      seed: seed of the joint draws.

    Returns:
      ``{"centre": score, "one_at_a_time": [{"field", "factor", score...}],
      "joint": {"draws", "median_max", "worst_max", "median_mean",
      "worst_mean"}, "verdicts_hold": {name: fraction of the joint draws}}``;
      a score is ``compare_with_paper`` plus the verdicts (``"holds"``).

    Examples:
      >>> s = DecaySettings(num_steps=200, window=(0.0, 1.0))
      >>> band = robustness_band(s, ("eps",), draws=2)
      >>> len(band["one_at_a_time"]), band["joint"]["draws"]
      (2, 2)

    References:
      Zhang & Liu, arXiv:2509.04713, 2025, Sec. 4.1.2.
    """
    if not 0 < scale < 1:
        raise ValueError(f"scale must be in (0, 1), got {scale}.")
    if draws < 1:
        raise ValueError(f"draws must be >= 1, got {draws}.")
    for field in fields:
        if field not in _NUMERIC:
            raise ValueError(f"fields must be among {_NUMERIC}, got {field!r}.")
    one = []
    for field in fields:
        for factor in (1 - scale, 1 + scale):
            one.append(
                {
                    "field": field,
                    "factor": factor,
                    **_score(_scaled(settings, field, factor)),
                }
            )
    rng = np.random.default_rng(seed)
    joint = []
    for _ in range(draws):
        s = settings
        for field, factor in zip(
            fields, rng.uniform(1 - scale, 1 + scale, len(fields)), strict=True
        ):
            s = _scaled(s, field, float(factor))
        joint.append(_score(s))
    maxes = np.array([j["max_abs_diff"] for j in joint])
    means = np.array([j["mean_abs_diff"] for j in joint])
    return {
        "centre": _score(settings),
        "one_at_a_time": one,
        "joint": {
            "draws": draws,
            "median_max": float(np.median(maxes)),
            "worst_max": float(maxes.max()),
            "median_mean": float(np.median(means)),
            "worst_mean": float(means.max()),
        },
        "verdicts_hold": _fractions([j["holds"] for j in joint]),
    }
