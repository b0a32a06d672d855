"""Statistics over seeds: means with Student-t confidence intervals, and the
smallest paired difference a design of that many seeds can detect."""

import math
from collections.abc import Callable
from typing import cast

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["detectable_difference", "mean_ci"]


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


def _check_probability(name: str, value: float) -> float:
    value = float(value)
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name} must be in (0, 1), got {value}.")
    return value


def _t_test_power(df: int, critical: float) -> Callable[[float], float]:
    # nc -> P(|T| > critical) for T noncentral t: T = (Z + nc) / sqrt(V / df) with
    # Z standard normal and V chi-square(df): the normal tails averaged over V's
    # quantiles by Gauss-Legendre quadrature (scipy's nct returns nan far in the
    # tails of few degrees of freedom).
    from scipy import special, stats

    nodes, weights = np.polynomial.legendre.leggauss(256)
    c = critical * np.sqrt(stats.chi2.ppf((nodes + 1) / 2, df) / df)

    def power(nc: float) -> float:
        tails = special.ndtr(nc - c) + special.ndtr(-c - nc)
        return float(np.sum(weights * tails) / 2)

    return power


def detectable_difference(
    differences: ArrayLike, level: float = 0.95, power: float = 0.8
) -> float:
    r"""The smallest true mean difference a paired t-test of this design detects.

    Given paired differences :math:`d_1, \dots, d_n` (e.g. method A's accuracy
    minus method B's, seed by seed) with sample standard deviation :math:`s`, the
    two-sided paired t-test at ``level`` rejects "no difference" when
    :math:`|\bar d| \sqrt{n} / s > t_{(1 + \text{level})/2,\, n - 1}`. Under a
    true mean difference :math:`\delta` the statistic follows a noncentral t
    distribution with :math:`n - 1` degrees of freedom and noncentrality
    :math:`\delta \sqrt{n} / \sigma`; this returns the :math:`\delta \ge 0`
    at which the test rejects with probability ``power``, taking
    :math:`\sigma = s`. A "not detected" verdict is only informative about
    differences at least this large.

    Args:
      differences: the paired differences, 1-D; NaNs are ignored.
      level: the test's confidence level, in ``(0, 1)``.
      power: the probability of detection, in ``(0, 1)``.

    Returns:
      The detectable difference in the differences' units; nan with fewer than
      two finite differences, 0 when they are all equal.

    Raises:
      ValueError: for ``level`` or ``power`` outside ``(0, 1)`` or differences
        that are not 1-D.

    Examples:
      >>> from nsf_optax.spectral import detectable_difference
      >>> round(detectable_difference([0.01, -0.02, 0.00, 0.03, -0.01]), 4)
      0.0324

    References:
      Cohen, *Statistical Power Analysis for the Behavioral Sciences*, 2nd ed.,
      1988, ch. 2.
    """
    from scipy import optimize, stats

    level = _check_probability("level", level)
    power = _check_probability("power", power)
    d = np.asarray(differences, np.float64)
    if d.ndim != 1:
        raise ValueError(f"differences must be 1-D, got shape {d.shape}.")
    d = d[~np.isnan(d)]
    if d.size < 2:
        return math.nan
    if np.all(d == d[0]):
        return 0.0
    s = float(np.std(d, ddof=1))
    df, root_n = d.size - 1, math.sqrt(d.size)
    critical = float(stats.t.ppf(0.5 + level / 2, df))

    power_at = _t_test_power(df, critical)

    def shortfall(delta: float) -> float:
        return power_at(delta * root_n / s) - power

    # The normal approximation's answer, doubled (and doubled again if the tails
    # of few degrees of freedom need it), brackets the root from above.
    upper = 2 * (critical + float(stats.t.ppf(power, df))) * s / root_n
    while shortfall(upper) < 0:
        upper *= 2
    root = optimize.brentq(shortfall, 0.0, upper, xtol=1e-12 * s, full_output=False)
    return float(cast(float, root))
