"""Budgeted training: each method retrained at fractions of the step budget.

The question is the paper's headline claim, "baseline accuracy at a quarter of the
training cost". The first time a full-length run's accuracy reaches a target is not
that cost: under a decaying learning-rate schedule a quarter of the way through a
run the rate is still near its peak, while a run *planned* for a quarter of the steps
anneals and ends somewhere else. Budgeted training (Li, Yumer and Ramanan, ICLR
2020) therefore trains a separate run at every budget with its schedules fitted to
that budget; this module holds that logic, :mod:`.compare` runs it.

* :func:`budget_config`: a run of ``round(fraction * num_steps)`` steps whose
  learning-rate warmup and decay end at the budget, and whose p-schedule periods
  either scale with it (``"scaled"``, the default) or keep their length in steps
  (``"fixed"``, the paper's "alternate every 200 iterations"). Scaled is the
  default because it compresses the p schedule exactly as the learning-rate
  schedule is compressed, so a shorter budget is the same plan run faster; with
  fixed periods a short budget also changes which p values it sees (a quarter of
  a run may be all pulse), mixing two effects.
* :func:`smallest_budget` / :func:`summarize_budgets`: per method and budget the
  final test accuracy and loss over seeds, and the smallest budget at which a
  method reaches the baseline's full-budget accuracy, paired over seeds.

Plain numpy (and scipy's t quantile, through :func:`nsf_optax.spectral.mean_ci`,
imported where it is used: :mod:`nsf_optax.spectral` loads jax, and the command
line checks its budgets before that);
no JAX computation.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import typing
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np

from nsf_optax import p_schedule
from nsf_optax.experiments.resnet import methods
from nsf_optax.experiments.resnet.configs.default import Config
from nsf_optax.experiments.runner.errors import ConfigError

PPeriods = Literal["scaled", "fixed"]
P_PERIODS = typing.get_args(PPeriods)
DEFAULT_P_PERIODS: PPeriods = "scaled"
FULL_BUDGET = 1.0


def p_periods_of(schedule: str) -> dict[str, int]:
    """The parameters of a registered p schedule that "scaled" multiplies by the
    budget (its periods in steps), each with its smallest value.

    Args:
      schedule: a name in :data:`nsf_optax.p_schedule.SCHEDULES`.

    Returns:
      Parameter name -> the smallest value it may take (0 for a pulse, which may
      be empty; 1 for a period). A constant p has none.

    Raises:
      ConfigError: for an unknown schedule, naming the choices.
    """
    try:
        entry = p_schedule.get(schedule)
    except ValueError as e:
        raise ConfigError(str(e), ("p_schedule",)) from None
    lows = {}
    for param in entry.params:
        if param.period:
            low = math.ceil(param.low) if param.low is not None else 0
            lows[param.name] = max(low + (1 if param.low_open else 0), 0)
    return lows


def budget_steps(num_steps: int, fraction: float) -> int:
    """The step count of a budget: ``round(fraction * num_steps)``.

    Args:
      num_steps: the full budget in steps, an integer > 0.
      fraction: the budget as a fraction of it, a real scalar (Python, numpy or a
        0-d jax array) in (0, 1].

    Returns:
      The number of steps (at least 1).

    Raises:
      ConfigError: (a ``ValueError``) for a ``num_steps`` that is not a positive
        integer, a fraction that is not a real scalar in (0, 1], or one that
        rounds to 0 steps.

    Examples:
      >>> budget_steps(600, 0.25)
      150
    """
    if isinstance(num_steps, bool) or not isinstance(num_steps, int | np.integer):
        raise ConfigError(
            f"num_steps must be a positive integer, got {num_steps!r}.",
            ("num_steps",),
        )
    if num_steps <= 0:
        raise ConfigError(
            f"num_steps must be a positive integer, got {num_steps!r}.",
            ("num_steps",),
        )
    value = None if isinstance(fraction, bool) else np.asarray(fraction)
    if (
        value is None
        or value.ndim != 0
        or value.dtype.kind not in "iuf"
        or not 0 < float(value) <= 1
    ):
        raise ConfigError(
            f"budgets must be fractions of num_steps in (0, 1], got {fraction!r}.",
            ("budgets",),
        )
    steps = round(float(value) * int(num_steps))
    if steps < 1:
        raise ConfigError(
            f"budget {float(value):g} of {num_steps} steps rounds to 0 steps.",
            ("budgets",),
        )
    return steps


def check_budgets(budgets: Sequence[float], num_steps: int) -> tuple[float, ...]:
    """The budgets, checked and sorted.

    Args:
      budgets: fractions of ``num_steps`` in (0, 1]; must include 1 (the full
        budget, whose baseline accuracy is the target) and name distinct step
        counts.
      num_steps: the full budget in steps.

    Returns:
      The budgets as floats, ascending.

    Raises:
      ConfigError: for an empty list, a fraction outside (0, 1], a missing full
        budget, or two budgets that round to the same number of steps.

    Examples:
      >>> check_budgets([1, 0.25, 0.5], 600)
      (0.25, 0.5, 1.0)
    """
    budgets = list(budgets)
    if not budgets:
        raise ConfigError("budgets must name at least one fraction.", ("budgets",))
    steps = {budget_steps(num_steps, b): float(b) for b in budgets}
    if len(steps) != len(budgets):
        raise ConfigError(
            f"budgets {budgets} name the same step count twice (num_steps "
            f"{num_steps}).",
            ("budgets",),
        )
    if FULL_BUDGET not in steps.values():
        raise ConfigError(
            f"budgets must include 1 (the full budget, whose baseline accuracy is "
            f"the target), got {budgets}.",
            ("budgets",),
        )
    return tuple(sorted(steps.values()))


def budget_config(
    base: Config, fraction: float, *, p_periods: PPeriods = DEFAULT_P_PERIODS
) -> Config:
    """``base`` planned for a fraction of its steps, its schedules fitted to it.

    With ``n = budget_steps(base.num_steps, fraction)`` and ``r = n / num_steps``:
    ``num_steps = n``, so the cosine decay (or the piecewise drops at 50 % and
    75 %) ends at the budget; ``warmup_steps = round(r * warmup_steps)`` (kept
    below ``n`` for ``warmup_cosine``). For ``optimizer="nsf"`` (and the cyclic
    baselines, whose learning rate follows the p schedule) and
    ``p_periods="scaled"``, the lengths its p schedule uses are multiplied by ``r``
    too (rounded; a period at least 1 step): the parameters its registered
    schedule declares as periods (:func:`p_periods_of`; ``p_period_steps`` for
    ``cosine_tidal``, ``pulse_steps`` and ``tidal_every_steps`` for
    ``pulse_tidal``); so every budget sees the same number of p cycles.
    ``"fixed"`` keeps them in steps, so a short budget sees fewer cycles (and may
    be all pulse). Fields a run does not use (the p fields of other optimizers
    and of other p schedules) are kept, so the runs that do not depend on
    ``p_periods`` are the same under both. Evaluation and checkpoint intervals
    stay in steps; a run always evaluates at its last step.

    Args:
      base: the full-budget configuration.
      fraction: the budget, in (0, 1].
      p_periods: "scaled" or "fixed".

    Returns:
      The budget run's :class:`Config` (equal to ``base`` at fraction 1).

    Raises:
      ConfigError: for a bad fraction or ``p_periods``.

    Examples:
      >>> from nsf_optax.experiments.resnet.configs import get_config
      >>> c = budget_config(get_config("mnist1d"), 0.25)
      >>> c.num_steps, c.warmup_steps, c.pulse_steps, c.tidal_every_steps
      (500, 25, 50, 50)
    """
    if p_periods not in P_PERIODS:
        raise ConfigError(
            f"Unknown p_periods {p_periods!r}; choose one of {list(P_PERIODS)}.",
            ("p_periods",),
        )
    steps = budget_steps(base.num_steps, fraction)
    ratio = steps / base.num_steps
    warmup = round(ratio * base.warmup_steps)
    if base.lr_schedule == "warmup_cosine":
        warmup = min(warmup, steps - 1)
    changes: dict[str, int] = dict(num_steps=steps, warmup_steps=warmup)
    # The cyclic baselines follow the p schedule's periods like nsf does.
    follows_p = base.optimizer == "nsf" or methods.get_optimizer(base.optimizer).cyclic
    if follows_p and p_periods == "scaled":
        for name, low in p_periods_of(base.p_schedule).items():
            changes[name] = max(low, round(ratio * base.p_params[name]))
    return dataclasses.replace(base, **changes)


def smallest_budget(
    budgets: Sequence[float], differences: Any, level: float = 0.95
) -> dict[str, Any]:
    """The smallest budget at which a method matches the target, with an interval.

    ``differences[i, s]`` is, for seed ``s``, the method's final accuracy at
    ``budgets[i]`` minus the baseline's full-budget accuracy of the same seed
    (seeds share initialisation and data order, so the pairing removes that
    variance). With ``m_i`` the mean over seeds and ``h_i`` the half-width of its
    Student-t interval (``level``, ``n - 1`` degrees of freedom):

    .. math::

      \\hat b = \\min\\{b_i : m_i \\ge 0\\},\\quad
      b_{lo} = \\min\\{b_i : m_i + h_i \\ge 0\\},\\quad
      b_{hi} = \\min\\{b_i : m_i - h_i \\ge 0\\}

    ``b_lo`` is the first budget at which matching the target is not ruled out,
    ``b_hi`` the first at which the method is shown to be at least as accurate;
    this inverts the paired t-test at every budget. The three are nested
    (``b_lo <= b_hat <= b_hi``); ``None`` means no budget qualifies. Per seed, the
    smallest budget whose difference is ``>= 0`` is reported too.

    ``matching`` answers "the target's accuracy at this budget" as the design
    can: the first budget whose whole interval lies above ``-d_i``, with ``d_i``
    the smallest difference these seeds detect at 80 % power
    (:func:`nsf_optax.spectral.detectable_difference` of the budget's paired
    differences): the method is shown to be no worse than the target by more
    than the design can see. None with one seed (no interval).

    Args:
      budgets: ascending budgets, shape ``[k]``.
      differences: paired accuracy differences, shape ``[k, seeds]``.
      level: confidence level, in (0, 1).

    Returns:
      A dict with ``estimate``, ``low``, ``high`` (budgets or None),
      ``mean_difference`` and ``ci_difference`` (per budget; the half-width is nan
      for one seed, which then also gives ``low = high = estimate``),
      ``seeds_reaching`` (per budget), ``per_seed`` (one budget or None each),
      ``detectable`` (per budget, nan for one seed) and ``matching``.

    Examples:
      >>> r = smallest_budget([0.5, 1.0], [[-0.02, -0.01, -0.03], [0.0, 0.01, 0.0]])
      >>> r["estimate"], r["low"], r["high"]  # 0.5: not ruled out; 1: not shown
      (1.0, 0.5, None)
    """
    budgets = [float(b) for b in budgets]
    diff = np.asarray(differences, np.float64)
    if diff.ndim != 2 or diff.shape[0] != len(budgets) or diff.shape[1] == 0:
        raise ValueError(
            f"differences must have shape [budgets={len(budgets)}, seeds], got "
            f"{diff.shape}."
        )
    if not np.all(np.isfinite(diff)):
        raise ValueError("differences must be finite.")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}.")
    if any(b >= c for b, c in itertools.pairwise(budgets)):
        raise ValueError(f"budgets must be strictly increasing, got {budgets}.")
    # nsf_optax.spectral imports jax: not at module level.
    from nsf_optax.spectral import detectable_difference, mean_ci

    mean_k, half_k = mean_ci(diff, axis=1, level=level)
    detectable = np.asarray([detectable_difference(d, level=level) for d in diff])
    mean = np.asarray(mean_k, np.float64)  # [k]
    half = np.asarray(half_k, np.float64)
    spread = np.nan_to_num(half, nan=0.0)  # one seed: no interval to widen by

    def first(ok: Any) -> float | None:
        hits = np.flatnonzero(ok)
        return budgets[hits[0]] if hits.size else None

    per_seed = [first(diff[:, s] >= 0) for s in range(diff.shape[1])]
    return {
        "estimate": first(mean >= 0),
        "low": first(mean + spread >= 0),
        "high": first(mean - spread >= 0),
        "mean_difference": [float(x) for x in mean],
        "ci_difference": [float(x) for x in half],
        "seeds_reaching": [int(x) for x in np.sum(diff >= 0, axis=1)],
        "per_seed": per_seed,
        "detectable": [float(x) for x in detectable],
        # nan (one seed) compares False: no budget is shown to match.
        "matching": first(mean - half >= -detectable),
    }


def _stats(values: np.ndarray) -> dict[str, float]:
    from nsf_optax.spectral import mean_ci

    mean, half = mean_ci(values)
    std = float(values.std(ddof=1)) if len(values) > 1 else math.nan
    return {"mean": float(mean), "std": std, "ci95": float(half)}


def summarize_budgets(
    finals: Mapping[str, Mapping[float, Sequence[Mapping[str, float]]]],
    baseline: str = "sgd",
) -> list[dict[str, Any]]:
    """Final accuracy and loss against budget, and the smallest matching budget.

    Args:
      finals: method -> budget -> one final evaluation per seed (``test_accuracy``
        and ``test_loss``), seeds in the same order everywhere. Every method has
        the same budgets and seed count; ``baseline`` has budget 1.

    Returns:
      One row per method: ``method``, ``budgets``, ``seeds``, per budget
      ``test_accuracy`` and ``test_loss`` (``mean``, sample ``std`` with ddof 1,
      ``ci95``: half-width of the 95 % Student-t interval), ``target_per_seed``
      (the baseline's full-budget accuracy of each seed) and ``reach``
      (:func:`smallest_budget` of the paired differences).

    Examples:
      >>> runs = lambda *accs: [{"test_accuracy": a, "test_loss": 0.5} for a in accs]
      >>> finals = {
      ...     "sgd": {0.5: runs(0.70, 0.75, 0.72), 1.0: runs(0.80, 0.84, 0.81)},
      ...     "nsf": {0.5: runs(0.81, 0.84, 0.83), 1.0: runs(0.82, 0.86, 0.83)},
      ... }
      >>> [(r["method"], r["reach"]["estimate"]) for r in summarize_budgets(finals)]
      [('sgd', 1.0), ('nsf', 0.5)]
    """
    if baseline not in finals or FULL_BUDGET not in finals[baseline]:
        raise ValueError(f"The comparison needs {baseline!r} at the full budget 1.")
    budgets = sorted(finals[baseline])
    seeds = len(finals[baseline][FULL_BUDGET])
    for method, by_budget in finals.items():
        if sorted(by_budget) != budgets:
            raise ValueError(f"{method}: budgets {sorted(by_budget)} != {budgets}.")
        if any(len(runs) != seeds for runs in by_budget.values()):
            raise ValueError(f"{method}: every budget needs {seeds} seeds.")
    target = np.asarray([r["test_accuracy"] for r in finals[baseline][FULL_BUDGET]])
    rows = []
    for method, by_budget in finals.items():
        acc = np.asarray(
            [[r["test_accuracy"] for r in by_budget[b]] for b in budgets], np.float64
        )
        loss = np.asarray(
            [[r["test_loss"] for r in by_budget[b]] for b in budgets], np.float64
        )
        rows.append(
            {
                "method": method,
                "budgets": budgets,
                "seeds": seeds,
                "test_accuracy": [_stats(a) for a in acc],
                "test_loss": [_stats(x) for x in loss],
                "target_per_seed": target.tolist(),
                "reach": smallest_budget(budgets, acc - target),
            }
        )
    return rows


def _budget(b: float | None) -> str:
    # None: no tested budget qualifies, the smallest one lies beyond the full budget.
    return f">{FULL_BUDGET:g}" if b is None else f"{b:g}"


def _cell(stats: Mapping[str, float], scale: float, digits: int) -> str:
    mean, half = scale * stats["mean"], scale * stats["ci95"]
    return (
        f"{mean:.{digits}f}"
        if math.isnan(half)
        else f"{mean:.{digits}f} ± {half:.{digits}f}"
    )


def markdown_tables(rows: Sequence[Mapping[str, Any]], steps: Sequence[int]) -> str:
    """Accuracy, loss and the reach statistic against budget, as markdown tables.

    Args:
      rows: from :func:`summarize_budgets`.
      steps: the step count of each budget (for the column headers).

    Returns:
      Three GitHub tables separated by blank lines; "±" is the 95 % t-interval.

    Examples:
      >>> runs = lambda *accs: [{"test_accuracy": a, "test_loss": 0.5} for a in accs]
      >>> rows = summarize_budgets({"sgd": {0.5: runs(0.7, 0.8), 1.0: runs(0.8, 0.9)}})
      >>> print(markdown_tables(rows, [300, 600]).splitlines()[2])
      | sgd | 75.00 ± 63.53 | 85.00 ± 63.53 |
    """
    budgets = rows[0]["budgets"]
    heads = [f"{b:g} ({n} steps)" for b, n in zip(budgets, steps, strict=True)]

    def table(first: Sequence[str], body: list[list[str]]) -> str:
        lines = ["| " + " | ".join(first) + " |", "|" + "---|" * len(first)]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in body])

    acc = table(
        ["test accuracy %", *heads],
        [[r["method"], *(_cell(s, 100, 2) for s in r["test_accuracy"])] for r in rows],
    )
    loss = table(
        ["test loss", *heads],
        [[r["method"], *(_cell(s, 1, 4) for s in r["test_loss"])] for r in rows],
    )
    reach_rows = []
    for r in rows:
        reach = r["reach"]
        diffs = [
            _cell({"mean": m, "ci95": h}, 100, 2)
            for m, h in zip(
                reach["mean_difference"], reach["ci_difference"], strict=True
            )
        ]
        reach_rows.append(
            [
                r["method"],
                *diffs,
                _budget(reach["estimate"]),
                _budget(reach["low"])
                if reach["low"] is None
                else f"{_budget(reach['low'])} to {_budget(reach['high'])}",
                ", ".join(_budget(b) for b in reach["per_seed"]),
                "-" if reach["matching"] is None else _budget(reach["matching"]),
            ]
        )
    reach = table(
        [
            "Δ acc vs SGD at 1 (points)",
            *heads,
            "smallest budget",
            "95 % interval",
            "per seed",
            "matches",
        ],
        reach_rows,
    )
    return f"{acc}\n\n{loss}\n\n{reach}"
