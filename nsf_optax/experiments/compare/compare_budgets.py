"""Budgeted training runs: every method and seed retrained at every budget.

``python -m nsf_optax.experiments.compare --budgets 0.25 0.5 1`` lands here
(:func:`run_budget_comparison`); the budget logic itself (schedules fitted to a
budget, the statistics) is :mod:`.budgets`, the runs and their workdirs are those of
:mod:`.compare`.

Outputs in the workdir: ``budgets-<p_periods>.md`` (tables), ``.csv`` (one row per
method and budget), ``.json`` (every number, nan as null) and ``.png`` (final test
accuracy and loss against budget, one line per method), ``budgets-curves.png``
(the full-budget runs' test curves), and one sub-directory per run (see
:func:`budget_plan`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import Any

from nsf_optax.experiments.compare import budgets as budgeting
from nsf_optax.experiments.compare import compare
from nsf_optax.experiments.resnet.configs.default import Config
from nsf_optax.experiments.runner import summary, workdirs

CSV_FIELDS = (
    "method",
    "budget",
    "steps",
    "seeds",
    "test_accuracy_mean",
    "test_accuracy_ci95",
    "test_loss_mean",
    "test_loss_ci95",
    "accuracy_minus_sgd_full_mean",
    "accuracy_minus_sgd_full_ci95",
    "seeds_reaching_sgd_full",
)


def budget_plan(
    base: Config,
    methods: Sequence[str],
    seeds: int,
    budgets: Sequence[float],
    p_periods: budgeting.PPeriods = budgeting.DEFAULT_P_PERIODS,
) -> list[tuple[str, float, Config, str]]:
    """Every run of a budgeted comparison, in training order.

    Args:
      base: the shared full-budget configuration.
      methods: labels of :func:`.methods.methods`.
      seeds: number of seeds.
      budgets: checked budgets
        (:func:`~nsf_optax.experiments.compare.budgets.check_budgets`).
      p_periods: "scaled" or "fixed".

    Returns:
      ``(method, budget, config, run_dir)`` per run, ``run_dir`` relative to the
      comparison's workdir: ``<method>/budget<b>/seed<k>``, with ``-p<p_periods>``
      after ``budget<b>`` when ``p_periods`` makes the run differ from the scaled
      one, so that runs the two settings share are trained once.

    Examples:
      >>> from nsf_optax.experiments.resnet.configs import get_config
      >>> plan = budget_plan(get_config("mnist1d"), ["sgd"], 1, (0.5, 1.0))
      >>> [(name, config.num_steps) for _, _, config, name in plan]
      [('sgd/budget0.5/seed0', 1000), ('sgd/budget1/seed0', 2000)]
    """
    plan = []
    for method in methods:
        for b in budgets:
            name = f"budget{b:g}"
            run = compare.method_config(base, method, 0)
            fitted = budgeting.budget_config(run, b, p_periods=p_periods)
            if fitted != budgeting.budget_config(run, b):
                name += f"-p{p_periods}"
            plan += [
                (
                    method,
                    b,
                    dataclasses.replace(fitted, seed=seed),
                    os.path.join(method, name, f"seed{seed}"),
                )
                for seed in range(seeds)
            ]
    return plan


def run_budget_comparison(
    base: Config,
    workdir: str | os.PathLike,
    *,
    budgets: Sequence[float],
    methods: Sequence[str] = compare.DEFAULT_METHODS,
    seeds: int = 5,
    p_periods: budgeting.PPeriods = budgeting.DEFAULT_P_PERIODS,
) -> list[dict[str, Any]]:
    """Trains every method and seed at every budget and writes the results.

    Each budget is a separate run planned for that fraction of ``base.num_steps``
    (:func:`~nsf_optax.experiments.compare.budgets.budget_config`). The results: final
    test
    accuracy and loss against budget (mean and 95 % t-interval over seeds), the
    smallest budget at which each method reaches SGD's full-budget accuracy
    (:func:`~nsf_optax.experiments.compare.budgets.smallest_budget`, paired over
    seeds), and
    the ordinary table of the full-budget runs (:func:`summarize`).

    Args:
      base: the shared full-budget configuration.
      workdir: output directory; each run goes to ``<workdir>/<method>/budget<b>/
        seed<k>`` (``budget<b>-pfixed`` when ``p_periods="fixed"`` changes the
        run). With ``base.resume`` finished runs are reloaded and unfinished ones
        continue, so an interrupted comparison picks up where it stopped.
      budgets: fractions of ``num_steps`` in (0, 1], including 1.
      methods: labels of :func:`.methods.methods`; must include "sgd" (the baseline).
      seeds: number of seeds (> 0).
      p_periods: "scaled" (p-schedule periods scale with the budget) or "fixed".

    Returns:
      The rows of :func:`~nsf_optax.experiments.compare.budgets.summarize_budgets`.

    Raises:
      UsageError: as :func:`.compare.run_comparison`, and for bad budgets or
        p_periods (before anything trains).
    """
    methods = compare.check_methods(methods, seeds)
    compare.check_analysis(base, methods)
    budgets = budgeting.check_budgets(budgets, base.num_steps)
    plan = budget_plan(base, methods, seeds, budgets, p_periods)
    workdir = os.fspath(workdir)
    compare.check_runs(workdir, [name for *_, name in plan], resume=base.resume)
    import jax

    with workdirs.Lock(workdir, enabled=jax.process_index() == 0):
        finals: dict[str, dict[float, list]] = {
            m: {b: [] for b in budgets} for m in methods
        }
        full: dict[str, list] = {m: [] for m in methods}
        for method, b, config, name in plan:
            run_dir = os.path.join(workdir, name)
            history = compare.train_run(config, run_dir, base.resume, f" budget {b:g}")
            finals[method][b].append(history[-1])
            if b == budgeting.FULL_BUDGET:
                full[method].append(history)
        rows = budgeting.summarize_budgets(finals, compare.BASELINE)
        in_run, curves = compare.summarize(full)
        text = _write_results(base, workdir, seeds, budgets, p_periods, rows, in_run)
        from nsf_optax.experiments.compare import figures

        figures.plot_comparison(
            curves,
            os.path.join(workdir, "budgets-curves.png"),
            title=f"{base.model} on {base.dataset}, full budget, {seeds} seeds",
        )
    print(f"\n{text}\nwritten to {os.path.abspath(workdir)}")
    compare.raise_problems(in_run, workdir)
    return rows


def _write_results(
    base: Config,
    workdir: str,
    seeds: int,
    budgets: Sequence[float],
    p_periods: str,
    rows: list[dict[str, Any]],
    in_run: list[dict[str, Any]],
) -> str:
    # budgets-<p_periods>.md, .json, .csv and .png; returns the markdown.
    from nsf_optax.experiments.compare import figures

    steps = [budgeting.budget_steps(base.num_steps, b) for b in budgets]
    title = (
        f"{base.model} on {base.dataset}, budgets of {base.num_steps} steps, "
        f"{seeds} seeds, p periods {p_periods}"
    )
    text = (
        f"{title}\n\nFinal test accuracy and loss per budget (mean ± 95 % "
        "t-interval over seeds); Δ: paired difference to SGD's full-budget "
        "accuracy of the same seed; smallest budget: the first whose mean Δ >= "
        "0, interval: first budget whose Δ interval reaches 0 to first whose "
        "interval lies above 0 ('>1': no tested budget qualifies).\n\n"
        f"{budgeting.markdown_tables(rows, steps)}\n\n"
        "Within the full-budget runs (mean ± sample std):\n\n"
        f"{compare.markdown_table(in_run)}\n"
    )
    stem = os.path.join(workdir, f"budgets-{p_periods}")
    summary.write_summary(
        stem,
        markdown=text,
        record={
            "config": base.asdict(),
            "seeds": seeds,
            "budgets": list(budgets),
            "steps": steps,
            "p_periods": p_periods,
            "rows": rows,
            "full_budget_rows": in_run,
        },
        fields=CSV_FIELDS,
        rows=_budget_csv_rows(rows, steps),
    )
    figures.plot_budgets(rows, steps, f"{stem}.png", title=title)
    return text


def _budget_csv_rows(
    rows: Sequence[dict[str, Any]], steps: Sequence[int]
) -> list[dict[str, Any]]:
    # One CSV row per method and budget.
    out = []
    for r in rows:
        reach = r["reach"]
        for i, b in enumerate(r["budgets"]):
            acc, loss = r["test_accuracy"][i], r["test_loss"][i]
            values = (
                r["method"],
                b,
                steps[i],
                r["seeds"],
                acc["mean"],
                acc["ci95"],
                loss["mean"],
                loss["ci95"],
                reach["mean_difference"][i],
                reach["ci_difference"][i],
                reach["seeds_reaching"][i],
            )
            out.append(dict(zip(CSV_FIELDS, values, strict=True)))
    return out
