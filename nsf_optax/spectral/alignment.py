"""Early decision-boundary alignment: accuracy leads while loss lags.

The paper's Sec. 5.1.3 reports that a p-tidal run reaches the baseline's
accuracy earlier *without* a comparable drop in test loss: the decision boundary
aligns before the loss catches up. This module measures that pattern from two
logged runs (a candidate ``a`` and a baseline ``b``) so every comparison in the
project computes it the same way.

References:
  Zhang & Liu, `Natural Spectral Fusion: p-Exponent Cyclic Scheduling and Early
  Decision-Boundary Alignment in First-Order Optimization
  <https://arxiv.org/abs/2509.04713>`_, 2025 (Secs. 4.2.2 and 5.1.3).
"""

from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["AlignmentReport", "early_alignment", "first_step_reaching"]


class AlignmentReport(NamedTuple):
    """Result of :func:`early_alignment` (per-step arrays share ``steps``' shape)."""

    steps: np.ndarray  # [n] float64, the common step (or epoch) axis
    acc_lead: np.ndarray  # [n] float64, accuracy_a - accuracy_b
    loss_lag: np.ndarray  # [n] float64, loss_a - loss_b (> 0: a's loss is higher)
    aligned: np.ndarray  # [n] bool, acc_lead > acc_margin and loss_lag >= -loss_margin
    fraction_aligned: float  # mean of ``aligned`` over the (windowed) steps
    first_aligned_step: float | None  # first step where ``aligned`` holds
    longest_aligned_steps: float  # longest contiguous aligned stretch, in steps
    mean_acc_lead_aligned: float  # mean acc_lead over aligned steps (nan if none)
    mean_loss_lag_aligned: float  # mean loss_lag over aligned steps (nan if none)
    target_accuracy: float  # accuracy used for the time-to-target comparison
    step_to_target_a: float | None  # first step run a reaches target_accuracy
    step_to_target_b: float | None  # first step run b reaches target_accuracy
    earlier_fraction: float | None  # 1 - step_to_target_a / step_to_target_b


def first_step_reaching(
    steps: ArrayLike, accuracy: ArrayLike, target: float
) -> float | None:
    """First step at which ``accuracy >= target``.

    Args:
      steps: increasing step (or epoch) values, shape ``[n]``.
      accuracy: accuracy at those steps, shape ``[n]``.
      target: the accuracy to reach.

    Returns:
      The first such step as a float, or ``None`` if the curve never gets there.

    Examples:
      >>> first_step_reaching([1, 2, 3], [0.1, 0.5, 0.9], 0.5)
      2.0
    """
    steps = np.asarray(steps, dtype=np.float64)
    accuracy = np.asarray(accuracy, dtype=np.float64)
    hits = np.flatnonzero(accuracy >= target)
    return float(steps[hits[0]]) if hits.size else None


def _smooth(x: np.ndarray, window: int) -> np.ndarray:
    if window <= 1:
        return x
    # Trailing moving average: uses only the past, like a logged running mean.
    cumsum = np.cumsum(np.insert(x, 0, 0.0))
    out = np.empty_like(x)
    for i in range(x.size):
        lo = max(0, i + 1 - window)
        out[i] = (cumsum[i + 1] - cumsum[lo]) / (i + 1 - lo)
    return out


def _longest_run(steps: np.ndarray, mask: np.ndarray) -> float:
    best, start = 0.0, None
    for i, m in enumerate(mask):
        if m and start is None:
            start = i
        if start is not None and (not m or i == mask.size - 1):
            end = i if m else i - 1
            best = max(best, float(steps[end] - steps[start]))
            start = None
    return best


def _checked_curves(
    curves: tuple[ArrayLike, ...],
    *,
    acc_margin: float,
    loss_margin: float,
    smooth: int,
) -> list[np.ndarray]:
    """The five curves of :func:`early_alignment` as float64, its arguments checked."""
    arrays = [np.asarray(c, dtype=np.float64) for c in curves]
    names = ("steps", "accuracy_a", "loss_a", "accuracy_b", "loss_b")
    for name, c in zip(names, arrays, strict=True):
        if c.ndim != 1 or c.shape != arrays[0].shape:
            raise ValueError(
                f"{name} must be 1-D with the shape of steps {arrays[0].shape}, "
                f"got {c.shape}."
            )
    if arrays[0].size < 2:
        raise ValueError("steps must hold at least two values.")
    if np.any(np.diff(arrays[0]) <= 0):
        raise ValueError("steps must be strictly increasing.")
    if acc_margin < 0:
        raise ValueError(f"acc_margin must be >= 0, got {acc_margin}.")
    if loss_margin < 0:
        raise ValueError(f"loss_margin must be >= 0, got {loss_margin}.")
    if smooth < 1:
        raise ValueError(f"smooth must be >= 1, got {smooth}.")
    return arrays


def early_alignment(
    steps: ArrayLike,
    accuracy_a: ArrayLike,
    loss_a: ArrayLike,
    accuracy_b: ArrayLike,
    loss_b: ArrayLike,
    *,
    acc_margin: float = 0.0,
    loss_margin: float = 0.0,
    target_accuracy: float | None = None,
    window: tuple[float, float] | None = None,
    smooth: int = 1,
) -> AlignmentReport:
    r"""Where run ``a``'s accuracy leads run ``b``'s while its loss lags.

    With :math:`\Delta A(t) = A_a(t) - A_b(t)` and
    :math:`\Delta L(t) = L_a(t) - L_b(t)` on a common step axis, a step is
    *aligned* when

    .. math::
      \Delta A(t) > m_A \quad\text{and}\quad \Delta L(t) \ge -m_L,

    i.e. ``a`` classifies better although its loss is not (meaningfully) lower:
    the paper's "early decision-boundary alignment". The report also gives the
    time-to-target comparison the paper quotes ("reaches the same accuracy
    15-20% earlier"): with :math:`s_a, s_b` the first steps at which each run
    reaches ``target_accuracy``, ``earlier_fraction`` is :math:`1 - s_a / s_b`.

    Args:
      steps: increasing step (or epoch) values shared by both runs, shape ``[n]``.
        Resample the runs onto one axis first (e.g. ``np.interp``) if needed.
      accuracy_a: accuracy of the candidate run (e.g. NSF), shape ``[n]``.
      loss_a: loss of the candidate run (same split as the accuracy), ``[n]``.
      accuracy_b: accuracy of the baseline run, shape ``[n]``.
      loss_b: loss of the baseline run, shape ``[n]``.
      acc_margin: :math:`m_A \ge 0`, the accuracy lead that counts (in the
        accuracy's units, e.g. ``0.005`` for half a point on a [0, 1] scale).
      loss_margin: :math:`m_L \ge 0`; a loss lower than the baseline's by at most
        this much still counts as lagging. ``0`` requires ``loss_a >= loss_b``.
      target_accuracy: accuracy for the time-to-target comparison; defaults to
        the baseline's best accuracy within the window.
      window: optional ``(start, stop)``; only steps with
        ``start <= step <= stop`` are scored (e.g. the early part of training).
      smooth: trailing moving-average length applied to all four curves before
        scoring (``1``: none). Useful for noisy per-step logs.

    Returns:
      An :class:`AlignmentReport`. Per-step arrays are restricted to ``window``.

    Raises:
      ValueError: on mismatched shapes, fewer than two steps, non-increasing
        steps, negative margins, ``smooth < 1`` or an empty window.

    Examples:
      >>> steps = [1, 2, 3, 4]
      >>> rep = early_alignment(
      ...     steps, [0.2, 0.5, 0.7, 0.8], [2.0, 1.6, 1.2, 1.0],
      ...     [0.2, 0.3, 0.5, 0.7], [2.0, 1.5, 1.1, 0.9])
      >>> rep.aligned.tolist(), rep.first_aligned_step
      ([False, True, True, True], 2.0)
      >>> round(rep.earlier_fraction, 3)  # a reaches 0.7 at step 3, b at 4
      0.25

    References:
      Zhang & Liu, arXiv:2509.04713, 2025, Sec. 5.1.3.
    """
    curves = _checked_curves(
        (steps, accuracy_a, loss_a, accuracy_b, loss_b),
        acc_margin=acc_margin,
        loss_margin=loss_margin,
        smooth=smooth,
    )
    steps_, acc_a, l_a, acc_b, l_b = curves
    acc_a, l_a, acc_b, l_b = (_smooth(c, int(smooth)) for c in (acc_a, l_a, acc_b, l_b))
    if window is not None:
        keep = (steps_ >= window[0]) & (steps_ <= window[1])
        if not keep.any():
            raise ValueError(f"window {window} contains no steps.")
        steps_, acc_a, l_a, acc_b, l_b = (
            c[keep] for c in (steps_, acc_a, l_a, acc_b, l_b)
        )

    acc_lead = acc_a - acc_b
    loss_lag = l_a - l_b
    aligned = (acc_lead > acc_margin) & (loss_lag >= -loss_margin)
    first = float(steps_[np.argmax(aligned)]) if aligned.any() else None
    target = float(np.max(acc_b)) if target_accuracy is None else target_accuracy
    s_a = first_step_reaching(steps_, acc_a, target)
    s_b = first_step_reaching(steps_, acc_b, target)
    earlier = 1.0 - s_a / s_b if (s_a is not None and s_b) else None
    return AlignmentReport(
        steps=steps_,
        acc_lead=acc_lead,
        loss_lag=loss_lag,
        aligned=aligned,
        fraction_aligned=float(aligned.mean()),
        first_aligned_step=first,
        longest_aligned_steps=_longest_run(steps_, aligned),
        mean_acc_lead_aligned=(
            float(acc_lead[aligned].mean()) if aligned.any() else float("nan")
        ),
        mean_loss_lag_aligned=(
            float(loss_lag[aligned].mean()) if aligned.any() else float("nan")
        ),
        target_accuracy=target,
        step_to_target_a=s_a,
        step_to_target_b=s_b,
        earlier_fraction=earlier,
    )
