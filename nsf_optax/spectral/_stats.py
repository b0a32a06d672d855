"""Statistics over seeds: means with Student-t confidence intervals."""

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["mean_ci"]


def mean_ci(
    values: ArrayLike, axis: int = 0, level: float = 0.95
) -> tuple[np.ndarray | np.floating, np.ndarray]:
    r"""Mean and half-width of the Student-t confidence interval along ``axis``.

    With :math:`n` samples of mean :math:`\bar x` and standard deviation
    :math:`s` (``ddof=1``), the interval is

    .. math::
      \bar x \pm t_{(1 + \text{level})/2,\, n - 1} \, \frac{s}{\sqrt{n}}.

    Args:
      values: samples, any array-like; NaNs are ignored.
      axis: the samples' axis.
      level: the confidence level, in ``(0, 1)``.

    Returns:
      ``(mean, half_width)``, float64, of the shape of ``values`` without
      ``axis`` (for 1-D samples: a numpy scalar and a 0-d array); the
      half-width is nan with fewer than two samples.

    Examples:
      >>> from nsf_optax.spectral import mean_ci
      >>> mean, half = mean_ci([[1.0, 5.0], [2.0, 5.0], [3.0, 5.0]])
      >>> mean.tolist(), [round(float(h), 3) for h in half]
      ([2.0, 5.0], [2.484, 0.0])
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
