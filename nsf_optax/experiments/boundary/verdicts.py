"""The decision-boundary demo's summary and verdicts (Sec. 4.2.2)."""

from collections.abc import Sequence
from typing import Any

import numpy as np

from nsf_optax.experiments.boundary.settings import BoundaryResult, BoundarySettings
from nsf_optax.spectral._stats import mean_ci

__all__ = ["CLAIMS", "boundary_summary", "boundary_verdicts", "claims"]

# The claims, as :func:`claims` reports them.
CLAIMS = ("negative_p_fastest", "sgd_slowest")


def _row_summary(
    early_acc: np.ndarray, penalised: np.ndarray, reached: int, final: np.ndarray
) -> dict[str, float]:
    m, h = mean_ci(penalised)
    em, eh = mean_ci(early_acc)
    fm, fh = mean_ci(final)
    return {
        "early_accuracy_mean": float(em),
        "early_accuracy_ci95": float(eh),
        "steps_to_target_mean": float(m),
        "steps_to_target_ci95": float(h),
        "reached": reached,
        "final_accuracy_mean": float(fm),
        "final_accuracy_ci95": float(fh),
    }


def boundary_summary(
    settings: BoundarySettings,
    labels: Sequence[str],
    eval_steps: np.ndarray,
    accuracy: np.ndarray,
    steps_to_target: np.ndarray,
) -> dict[str, dict[str, float]]:
    """Per row: early and final accuracy, steps-to-target, with 95 % intervals.

    Early accuracy is the test accuracy averaged over the evaluations in
    ``(0, early_steps]`` (per seed); a seed that never reaches the target counts
    as ``num_steps + eval_every`` steps. With a ``p=0`` row, each row's early
    accuracy minus ``p=0``'s is paired over seeds (same data and init).

    Args:
      settings: the run's :class:`BoundarySettings`.
      labels: the row labels, ``R``.
      eval_steps: ``[E]`` evaluation steps.
      accuracy: ``[R, S, E]`` test accuracy.
      steps_to_target: ``[R, S]`` first step at the target (NaN: never).

    Returns:
      ``{label: {statistic: value}}``.
    """
    s = settings
    penalised = np.where(
        np.isnan(steps_to_target), s.num_steps + s.eval_every, steps_to_target
    )
    early = (eval_steps > 0) & (eval_steps <= s.early_steps)
    early_acc = accuracy[:, :, early].mean(-1)  # [R, S]
    summary = {
        label: _row_summary(
            early_acc[i],
            penalised[i],
            int(np.sum(~np.isnan(steps_to_target[i]))),
            accuracy[i, :, -1],
        )
        for i, label in enumerate(labels)
    }
    if "p=0" in labels:
        # Paired over seeds (same data and init), so seed-to-seed spread cancels.
        ref = early_acc[list(labels).index("p=0")]
        for i, label in enumerate(labels):
            dm, dh = mean_ci(early_acc[i] - ref)
            summary[label]["early_accuracy_minus_p0_mean"] = float(dm)
            summary[label]["early_accuracy_minus_p0_ci95"] = float(dh)
    return summary


def boundary_verdicts(
    settings: BoundarySettings, summary: dict[str, dict[str, float]]
) -> dict[str, object]:
    """Ranks the rows by early accuracy and scores the paper's claims.

    * ``fastest``: the row with the highest early accuracy;
    * ``negative_p_fastest``: a constant ``p < 0`` row is first among the
      constant rows (the paper: slightly negative p aligns earliest);
    * ``sgd_slowest``: ``p = 0`` is last among the constant rows (the paper;
      None without a ``p = 0`` row).

    Returns:
      ``{"ranking", "fastest", "negative_p_fastest", "sgd_slowest"}``.

    References:
      Zhang & Liu, arXiv:2509.04713, 2025, Sec. 4.2.2.
    """
    order = sorted(summary, key=lambda k: -summary[k]["early_accuracy_mean"])
    const = [f"p={p:g}" for p in settings.ps]
    const_order = [k for k in order if k in const]
    return {
        "ranking": order,
        "fastest": order[0],
        "negative_p_fastest": bool(float(const_order[0].removeprefix("p=")) < 0),
        "sgd_slowest": bool(const_order[-1] == "p=0") if "p=0" in const else None,
    }


def claims(result: BoundaryResult) -> dict[str, Any]:
    """``{claim: holds}`` for each of :data:`CLAIMS` (None: not decided)."""
    return {name: result.verdicts.get(name) for name in CLAIMS}
