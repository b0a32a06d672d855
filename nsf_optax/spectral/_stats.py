"""Statistics over seeds: means with Student-t confidence intervals."""

from __future__ import annotations

import numpy as np

__all__ = ["mean_ci"]


def mean_ci(values: np.ndarray, axis: int = 0, level: float = 0.95):
    """Mean and half-width of the Student-t confidence interval along ``axis``.

    Args:
      values: samples; NaNs are ignored.
      axis: the samples' axis.
      level: confidence level.

    Returns:
      ``(mean, half_width)``; the half-width is nan with fewer than two samples.
    """
    from scipy import stats  # a jax dependency; imported only when used

    values = np.asarray(values, np.float64)
    n = np.sum(~np.isnan(values), axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (
            np.nanmean(values, axis=axis)
            if np.all(n > 0)
            else np.full(np.delete(values.shape, axis), np.nan)
        )
        std = np.nanstd(values, axis=axis, ddof=1) if np.all(n > 1) else np.nan
        t = stats.t.ppf(0.5 + level / 2, np.maximum(n - 1, 1))
        half = np.where(n > 1, t * std / np.sqrt(np.maximum(n, 1)), np.nan)
    return mean, half
