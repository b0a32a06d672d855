"""The comparison's verdict numbers: each method against the baseline, paired by seed.

* :func:`paired_accuracy`: the seed-by-seed difference in final test accuracy,
  its mean and 95 % Student-t interval (``nsf_optax.spectral.mean_ci``), and,
  when that interval contains 0, the smallest true difference the design would
  have detected with 80 % power (``nsf_optax.spectral.detectable_difference``,
  from the measured spread of the differences): a "not detected" says nothing
  about smaller differences.
* :func:`versus`: the same for any two methods of a results table.
* :func:`time_to_target`: with tuning, the first evaluated step at which a
  method's seed-mean validation-accuracy curve (its tuning trials at the chosen
  rate) reaches the tuned baseline's final validation accuracy, and the paired
  difference in steps over the tuning seeds where both runs reach it.

They return plain numbers for ``results.json``, and :func:`cells` the formatted
cells of the tables.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

ACCURACY_COLUMNS = ("Δ acc vs SGD [95% CI]", "detectable Δ (80% power)")
TIME_COLUMNS = ("steps to SGD val target", "Δ steps vs SGD [95% CI]")


def _mean_ci(values: Any) -> tuple[float, float]:
    from nsf_optax.spectral import mean_ci  # imports jax: not at module level

    if len(values) == 0:
        return math.nan, math.nan
    mean, half = mean_ci(np.asarray(values, np.float64))
    return float(mean), float(half)


def paired_accuracy(accuracy: Any, baseline: Any) -> dict[str, Any]:
    """The paired (by seed) difference in final test accuracy against the baseline.

    Args:
      accuracy: the method's final test accuracy per seed, seeds ``0..n-1``.
      baseline: the baseline's, per seed; pairs are the seeds both ran.

    Returns:
      ``paired_seeds``; ``accuracy_difference_mean`` (method minus baseline),
      ``accuracy_difference_ci95`` (the 95 % t half-width, nan for one pair),
      ``accuracy_difference_low`` / ``_high``; ``difference_detected`` (the
      interval excludes 0; None without an interval); ``detectable_difference``
      (when the interval contains 0: the smallest true difference a paired t-test
      of this design detects with 80 % power; else None).

    Examples:
      >>> v = paired_accuracy([0.80, 0.82, 0.78], [0.79, 0.80, 0.79])
      >>> round(v["accuracy_difference_mean"], 4), v["difference_detected"]
      (0.0067, False)
      >>> round(v["detectable_difference"], 4)
      0.0499
    """
    from nsf_optax.spectral import detectable_difference

    accuracy = np.asarray(accuracy, np.float64)
    baseline = np.asarray(baseline, np.float64)
    n = min(len(accuracy), len(baseline))
    diff = accuracy[:n] - baseline[:n]
    mean, half = _mean_ci(diff)
    detected = None if math.isnan(half) else bool(abs(mean) > half)
    return {
        "paired_seeds": n,
        "accuracy_difference_mean": mean,
        "accuracy_difference_ci95": half,
        "accuracy_difference_low": mean - half,
        "accuracy_difference_high": mean + half,
        "difference_detected": detected,
        "detectable_difference": (
            float(detectable_difference(diff)) if detected is False else None
        ),
    }


def versus(
    rows: Sequence[Mapping[str, Any]], method: str, reference: str
) -> dict[str, Any]:
    """:func:`paired_accuracy` of two methods of a results table, by seed.

    The table's own verdicts are against its baseline (SGD); this reads any
    other pair from the rows (``results.json``'s ``rows``), for example an
    Adam-flavoured NSF against Adam.

    Args:
      rows: the comparison's rows, each with ``method`` and
        ``final_test_accuracy_per_seed``.
      method: the method compared.
      reference: the method it is compared with.

    Returns:
      :func:`paired_accuracy`'s numbers, ``method`` minus ``reference``.

    Raises:
      ValueError: for a method the rows do not hold, or rows without each
        seed's accuracy (written before they kept it: ``--resume`` rewrites
        them).

    Examples:
      >>> rows = [
      ...     {"method": "adam", "final_test_accuracy_per_seed": [0.90, 0.92, 0.91]},
      ...     {"method": "nsf", "final_test_accuracy_per_seed": [0.91, 0.93, 0.92]},
      ... ]
      >>> v = versus(rows, "nsf", "adam")
      >>> round(v["accuracy_difference_mean"], 4), v["difference_detected"]
      (0.01, True)
    """
    by_name = {row["method"]: row for row in rows}
    for name in (method, reference):
        if name not in by_name:
            raise ValueError(
                f"No method {name!r} in the rows; they hold {list(by_name)}."
            )
        if "final_test_accuracy_per_seed" not in by_name[name]:
            raise ValueError(
                f"The row of {name!r} has no final_test_accuracy_per_seed (written "
                "before rows kept it); rerun the comparison with --resume to "
                "rewrite its results."
            )
    return paired_accuracy(
        by_name[method]["final_test_accuracy_per_seed"],
        by_name[reference]["final_test_accuracy_per_seed"],
    )


def time_to_target(
    steps: Any, accuracy: Any, baseline: Any, target: float
) -> dict[str, Any]:
    """Steps to the tuned baseline's validation accuracy, and the paired difference.

    Args:
      steps: the evaluated steps, ``[n]``.
      accuracy: the method's validation-accuracy curves, ``[seeds, n]`` (its
        tuning trials at the chosen rate).
      baseline: the baseline's, ``[seeds, n]`` (pairs: the seeds both ran).
      target: the accuracy to reach (the tuned baseline's ``val_target``, the
        mean of its curves' last points).

    Returns:
      ``val_target``; ``steps_to_val_target`` (the seed-mean curve's first step
      at the target, None if never); ``per_seed_steps_to_val_target``;
      ``steps_difference_pairs`` (seeds where both runs reach it);
      ``steps_difference_mean`` (method minus baseline, in steps) and
      ``steps_difference_ci95`` (nan with fewer than two pairs).

    Examples:
      >>> t = time_to_target([10, 20, 30], [[0.5, 0.9, 0.9], [0.9, 0.9, 0.9]],
      ...                    [[0.5, 0.5, 0.9], [0.5, 0.9, 0.9]], 0.8)
      >>> t["steps_to_val_target"], t["steps_difference_mean"]
      (20.0, -10.0)
    """
    from nsf_optax.spectral.alignment import first_step_reaching

    accuracy = np.asarray(accuracy, np.float64)
    baseline = np.asarray(baseline, np.float64)
    own = [first_step_reaching(steps, a, target) for a in accuracy]
    base = [first_step_reaching(steps, a, target) for a in baseline]
    n = min(len(own), len(base))
    pairs = [
        a - b
        for a, b in zip(own[:n], base[:n], strict=True)
        if a is not None and b is not None
    ]
    mean, half = _mean_ci(pairs)
    return {
        "val_target": float(target),
        "steps_to_val_target": first_step_reaching(steps, accuracy.mean(0), target),
        "per_seed_steps_to_val_target": own,
        "steps_difference_pairs": len(pairs),
        "steps_difference_mean": mean,
        "steps_difference_ci95": half,
    }


def _interval(mean: float, half: float, scale: float, digits: int) -> str:
    if math.isnan(mean):
        return "-"
    if math.isnan(half):
        return f"{scale * mean:+.{digits}f}"
    low, high = scale * (mean - half), scale * (mean + half)
    return f"{scale * mean:+.{digits}f} [{low:+.{digits}f}, {high:+.{digits}f}]"


def cells(
    versus: Mapping[str, Any] | None, timed: Mapping[str, Any] | None
) -> dict[str, str]:
    """One method's verdict cells of the table.

    Args:
      versus: :func:`paired_accuracy`'s numbers (None: the baseline itself).
      timed: :func:`time_to_target`'s numbers (None: not tuned, no such columns).

    Returns:
      ``ACCURACY_COLUMNS`` (and ``TIME_COLUMNS`` with ``timed``) -> text, in
      percentage points for accuracy and in steps for time; "detected" when the
      accuracy interval excludes 0, "-" where there is nothing to show.
    """
    out: dict[str, str] = dict.fromkeys(ACCURACY_COLUMNS, "-")
    if versus is not None:
        detectable = versus["detectable_difference"]
        out[ACCURACY_COLUMNS[0]] = _interval(
            versus["accuracy_difference_mean"],
            versus["accuracy_difference_ci95"],
            100,
            2,
        )
        if versus["difference_detected"]:
            out[ACCURACY_COLUMNS[1]] = "detected"
        elif detectable is not None:
            out[ACCURACY_COLUMNS[1]] = f"{100 * detectable:.2f}"
    if timed is not None:
        reached = timed["steps_to_val_target"]
        out[TIME_COLUMNS[0]] = "never" if reached is None else f"{reached:.0f}"
        out[TIME_COLUMNS[1]] = _interval(
            timed["steps_difference_mean"], timed["steps_difference_ci95"], 1, 0
        )
    return out
