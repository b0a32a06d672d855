"""The decay table's verdicts on the paper's Sec. 4.1 claims.

Public through :mod:`nsf_optax.experiments.decay.experiment`.
"""

from collections.abc import Sequence
from typing import Any

import numpy as np

from nsf_optax.experiments.decay.model import DecayFit, _linfit, _window_mask
from nsf_optax.experiments.decay.table import CONSTANT_P, DecayTable

__all__ = ["claims", "spectral_trend", "verdicts"]

# Tidal rows and the constant row with the same mean p.
_TIDAL_BASELINES = {
    "tidal[-0.5,0.5]": "p=0",
    "tidal[0,0.5]": "p=0.25",
    "tidal[-0.5,0]": "p=-0.25",
}
_WIDEST = "tidal[-0.5,0.5]"


def spectral_trend(fit: DecayFit, modes: Sequence[int]) -> float:
    """Least-squares slope of ``lam`` against ``log2 k`` (``< 0``: low-pass).

    Examples:
      >>> fit = DecayFit(*(np.array([0.4, 0.3]),) * 4, "t")
      >>> round(spectral_trend(fit, (1, 2)), 3)
      -0.1
    """
    x = np.log2(np.asarray(modes, np.float64))
    slope, _ = _linfit(x, np.asarray(fit.lam, np.float64)[:, None])
    return float(slope[0])


def _rebound(table: DecayTable, label: str) -> float:
    """Largest rise of log|c_k| between consecutive records in the window."""
    trace = table.traces[label]
    keep = _window_mask(np.asarray(trace.times, np.float64), table.settings.window)
    logc = np.log(np.abs(np.asarray(trace.coeffs, np.float64)[keep]) + 1e-30)
    return float(np.max(np.diff(logc, axis=0)))


def verdicts(table: DecayTable) -> dict[str, dict[str, Any]]:
    """Checks the paper's Sec. 4.1 claims on a table with :func:`default_rows`.

    Each entry has ``"holds"`` (bool) and the numbers it rests on:

    * ``p0_flat``: at ``p = 0`` every ``lam`` is ``eta`` within 1e-3.
    * ``sign_sets_filter``: the trend of ``lam`` against ``log2 k`` is negative
      (low-pass) for both positive constant p, positive for both negative ones.
    * ``p_neg_half_slower``: ``p = -0.5`` is slower than ``p = 0`` (mean
      ``lam``), drops at ``k = 32`` (below ``k = 16``), and its traces dip and
      rebound (some ``log|c_k|`` rises by more than 0.01 between records).
    * ``tidal_faster``: each tidal row's mean ``lam`` exceeds that of the
      constant row with the same mean p.
    * ``widest_fastest``: the widest swing's ``lam_k`` exceeds every constant
      row's at every k, and its mean R^2 is below the constant rows' mean R^2.

    Examples:
      >>> from nsf_optax.experiments.decay.experiment import (
      ...     DecaySettings,
      ...     decay_table,
      ... )
      >>> v = verdicts(decay_table(DecaySettings(num_steps=300, window=(0, 2))))
      >>> v["p0_flat"]["holds"]
      True

    References:
      Zhang & Liu, arXiv:2509.04713, 2025, Sec. 4.1.2 (observations 1-4).
    """
    rows, modes = table.rows, table.modes
    trend = {k: spectral_trend(f, modes) for k, f in rows.items()}
    mean = {k: float(np.mean(f.lam)) for k, f in rows.items()}
    r2 = {k: float(np.mean(f.r2)) for k, f in rows.items()}
    eta = table.settings.eta
    p0_dev = float(np.max(np.abs(rows["p=0"].lam - eta)))
    neg = rows["p=-0.5"].lam
    rebound = _rebound(table, "p=-0.5")
    constant = [k for k in CONSTANT_P if k in rows]
    widest = rows[_WIDEST].lam
    best_constant = np.max([rows[k].lam for k in constant], axis=0)
    r2_constant = float(np.mean([r2[k] for k in constant]))
    return {
        "p0_flat": {"holds": p0_dev < 1e-3, "max_dev_from_eta": p0_dev},
        "sign_sets_filter": {
            "holds": bool(
                trend["p=0.25"] < 0 < trend["p=-0.25"]
                and trend["p=0.5"] < 0 < trend["p=-0.5"]
            ),
            "trend": {k: trend[k] for k in constant},
        },
        "p_neg_half_slower": {
            "holds": bool(
                mean["p=-0.5"] < mean["p=0"] and neg[-1] < neg[-2] and rebound > 0.01
            ),
            "mean_lambda": mean["p=-0.5"],
            "mean_lambda_p0": mean["p=0"],
            "lambda_16_32": [float(neg[-2]), float(neg[-1])],
            "largest_rebound": rebound,
        },
        "tidal_faster": {
            "holds": all(mean[t] > mean[c] for t, c in _TIDAL_BASELINES.items()),
            "mean_lambda": {t: [mean[t], mean[c]] for t, c in _TIDAL_BASELINES.items()},
        },
        "widest_fastest": {
            "holds": bool(np.all(widest > best_constant) and r2[_WIDEST] < r2_constant),
            "min_margin": float(np.min(widest - best_constant)),
            "mean_r2": r2[_WIDEST],
            "mean_r2_constant_rows": r2_constant,
        },
    }


def claims(table: DecayTable) -> dict[str, bool]:
    """``{claim: holds}`` of :func:`verdicts`."""
    return {name: bool(v["holds"]) for name, v in verdicts(table).items()}
