"""The density demo's verdicts on the paper's three claims (Sec. 4.2.1)."""

from collections.abc import Mapping
from typing import Any

from nsf_optax.experiments.density.settings import DensityResult, DensitySettings

__all__ = ["CLAIMS", "claims", "density_verdicts"]

# The claims, as :func:`claims` reports them.
CLAIMS = ("adam_insensitive", "sgd_density_faster", "negative_p_amplifies")


def density_verdicts(
    settings: DensitySettings,
    steps_to_threshold: Mapping[tuple[float, float], int | None],
) -> dict[str, Any]:
    """Scores the claims from the steps-to-threshold table.

    Density sensitivity of ``p`` is the ratio of steps-to-threshold at the
    lowest slope to that at the highest slope (the region is at the right
    boundary, so the highest slope puts the most density there; NaN when
    either never reaches the threshold). Verdicts:

    * ``adam_insensitive``: the ratio at ``p = 0.5`` lies within ``[0.9, 1.1]``.
    * ``sgd_density_faster``: at ``p = 0`` the ratio exceeds 1.
    * ``negative_p_amplifies``: every ``p < 0`` has a larger ratio than ``p = 0``.

    Args:
      settings: the run's :class:`DensitySettings` (its ``ps`` and ``slopes``).
      steps_to_threshold: ``{(p, slope): first step below threshold or None}``.

    Returns:
      ``{"density_sensitivity": {p: ratio}, claim: bool, ...}`` (a claim whose
      ``p`` was not run is absent).

    References:
      Zhang & Liu, arXiv:2509.04713, 2025, Sec. 4.2.1.
    """
    lo, hi = min(settings.slopes), max(settings.slopes)

    def ratio(p: float) -> float:
        a, b = steps_to_threshold[(p, lo)], steps_to_threshold[(p, hi)]
        if a is None or b is None:
            return float("nan")
        return a / b

    ratios = {p: ratio(p) for p in settings.ps}
    verdicts: dict[str, Any] = {"density_sensitivity": ratios}
    if 0.5 in ratios:
        verdicts["adam_insensitive"] = bool(0.9 <= ratios[0.5] <= 1.1)
    if 0.0 in ratios:
        verdicts["sgd_density_faster"] = bool(ratios[0.0] > 1.0)
        negative = [p for p in settings.ps if p < 0]
        verdicts["negative_p_amplifies"] = bool(
            negative and all(ratios[p] > ratios[0.0] for p in negative)
        )
    return verdicts


def claims(result: DensityResult) -> dict[str, bool | None]:
    """``{claim: holds}`` for each of :data:`CLAIMS` (None: its p was not run)."""
    return {name: result.verdicts.get(name) for name in CLAIMS}
