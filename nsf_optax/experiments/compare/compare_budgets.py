"""Budgeted training runs: every method and seed retrained at every budget.

``python -m nsf_optax.experiments.compare --budgets 0.25 0.5 1`` lands here
(:func:`run_budget_comparison`); the budget logic itself (schedules fitted to a
budget, the statistics) is :mod:`.budgets`, the runs and their workdirs are those of
:mod:`.compare`.

Outputs in the workdir: ``budgets-<p_periods>.md`` (tables), ``.csv`` (one row per
method and budget), ``.json`` (every number, nan as null) and ``.png`` (final test
accuracy and loss against budget, one line per method), ``budgets-curves.png``
(the full-budget runs' test curves), and one sub-directory per run (see
:func:`budget_plan`) holding its ``metrics.json`` and ``metrics.csv``. The seeds
of a method at a budget (with a search: at either tuned rate) train as one
population in ``group`` next to its first run's directory
(``<method>/budget<b>/group``; :mod:`.finals`), where its checkpoints are.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from nsf_optax.experiments.compare import budgets as budgeting
from nsf_optax.experiments.compare import compare, finals
from nsf_optax.experiments.resnet.configs.default import Config
from nsf_optax.experiments.runner import summary, workdirs
from nsf_optax.experiments.tuning import evidence

if TYPE_CHECKING:
    from nsf_optax.experiments.tuning.protocol import Search, Tuned

TUNING_DIR = "tuning"
VARIANTS = ("tuned", "full-lr")

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
    search: Search | None = None,
    preset: str | None = None,
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
      workdir: output directory; each run's metrics go to ``<workdir>/<method>/
        budget<b>/seed<k>`` (``budget<b>-pfixed`` when ``p_periods="fixed"``
        changes the run), its group's run to ``group`` beside it (see the module
        doc). With ``base.resume`` finished groups are reloaded and unfinished
        ones continue, so an interrupted comparison picks up where it stopped.
      budgets: fractions of ``num_steps`` in (0, 1], including 1.
      methods: labels of :func:`.methods.methods`; must include "sgd" (the baseline).
      seeds: number of seeds (> 0).
      p_periods: "scaled" (p-schedule periods scale with the budget) or "fixed".
      search: None trains every run at ``base``'s learning rate. A search tunes
        the learning rate per method and budget (keys ``"method@budget"``, see
        :func:`run_names`) and trains two variants of the final runs: each
        budget at its own tuned rate (``budgets-<p_periods>-tuned.*``) and each
        budget at the rate tuned for the full budget
        (``budgets-<p_periods>-full-lr.*``: how a user who does not retune
        would run it); runs the two share train once.
      preset: the preset ``base`` started from, for the evidence note
        (:func:`~nsf_optax.experiments.tuning.evidence.assess`, printed and
        recorded in the JSON); None for a config of one's own.

    Returns:
      The rows of :func:`~nsf_optax.experiments.compare.budgets.summarize_budgets`
      (with a search: of the per-budget tuned variant).

    Raises:
      UsageError: as :func:`.compare.run_comparison`, and for bad budgets or
        p_periods (before anything trains).
    """
    methods = compare.check_methods(methods, seeds)
    compare.check_analysis(base, methods)
    budgets = budgeting.check_budgets(budgets, base.num_steps)
    workdir = os.fspath(workdir)
    names = run_names(base, methods, seeds, budgets, p_periods, search)
    compare.check_runs(workdir, names, resume=base.resume)
    note = evidence.assess(
        preset=preset or "custom", seeds=seeds, tuned=search is not None
    )
    if search is not None:
        args = (base, workdir, budgets, methods, seeds, p_periods)
        return _run_tuned(*args, search=search, note=note)
    plan = budget_plan(base, methods, seeds, budgets, p_periods)
    import jax

    with workdirs.Lock(workdir, enabled=jax.process_index() == 0):
        histories = _train_once({"": plan}, workdir, base.resume)
        last: dict[str, dict[float, list]] = {
            m: {b: [] for b in budgets} for m in methods
        }
        full: dict[str, list] = {m: [] for m in methods}
        for method, b, _, name in plan:
            last[method][b].append(histories[name][-1])
            if b == budgeting.FULL_BUDGET:
                full[method].append(histories[name])
        rows = budgeting.summarize_budgets(last, compare.BASELINE)
        in_run, curves = compare.summarize(full)
        args = (base, workdir, seeds, budgets, p_periods, rows, in_run)
        text = _write_results(*args, note=note)
        from nsf_optax.experiments.compare import figures

        figures.plot_comparison(
            curves,
            os.path.join(workdir, "budgets-curves.png"),
            title=f"{base.model} on {base.dataset}, full budget, {seeds} seeds",
        )
    print(f"\n{text}\nwritten to {os.path.abspath(workdir)}")
    compare.raise_problems(in_run, workdir)
    return rows


_VARIANT_NOTES = {
    "": "",
    "tuned": ", learning rate tuned per method and budget",
    "full-lr": ", learning rate tuned per method at the full budget (not retuned "
    "per budget)",
}


def _write_results(
    base: Config,
    workdir: str,
    seeds: int,
    budgets: Sequence[float],
    p_periods: str,
    rows: list[dict[str, Any]],
    in_run: list[dict[str, Any]],
    *,
    variant: str = "",
    tuned: Mapping[str, Tuned] | None = None,
    note: Mapping[str, Any] | None = None,
) -> str:
    # budgets-<p_periods>[-<variant>].md, .json, .csv and .png; returns the markdown.
    from nsf_optax.experiments.compare import figures
    from nsf_optax.experiments.tuning import protocol

    steps = [budgeting.budget_steps(base.num_steps, b) for b in budgets]
    title = (
        f"{base.model} on {base.dataset}, budgets of {base.num_steps} steps, "
        f"{seeds} seeds, p periods {p_periods}{_VARIANT_NOTES[variant]}"
    )
    claims = headline(rows)
    text = (
        f"{title}\n\n{evidence.line(note) + chr(10) * 2 if note else ''}"
        "Final test accuracy and loss per budget (mean ± 95 % "
        "t-interval over seeds); Δ: paired difference to SGD's full-budget "
        "accuracy of the same seed; smallest budget: the first whose mean Δ >= "
        "0, interval: first budget whose Δ interval reaches 0 to first whose "
        "interval lies above 0 ('>1': no tested budget qualifies); matches: the "
        "first budget whose Δ interval lies above minus the difference "
        "detectable at 80 % power.\n\n"
        f"{budgeting.markdown_tables(rows, steps)}\n\n{headline_line(claims)}\n\n"
        "Within the full-budget runs (mean ± sample std):\n\n"
        f"{compare.markdown_table(in_run)}\n"
    )
    if tuned is not None:
        text += f"\n## Tuning\n\n{protocol.markdown_trials(tuned)}\n"
    stem = os.path.join(
        workdir, "-".join(filter(None, ("budgets", p_periods, variant)))
    )
    summary.write_summary(
        stem,
        markdown=text,
        record={
            **(note or {}),
            "config": base.asdict(),
            "seeds": seeds,
            "budgets": list(budgets),
            "steps": steps,
            "p_periods": p_periods,
            "variant": variant or "untuned",
            "rows": rows,
            "headline": claims,
            "full_budget_rows": in_run,
            "tuning": {k: t.to_json() for k, t in (tuned or {}).items()},
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


def headline(
    rows: Sequence[Mapping[str, Any]], fraction: float = 0.25
) -> list[dict[str, Any]]:
    """The abstract's claim, "baseline accuracy at a quarter of the cost", per method.

    Args:
      rows: from :func:`summarize_budgets` (their ``reach`` against the
        baseline's full-budget accuracy).
      fraction: the cost the claim names.

    Returns:
      One dict per method: ``method``, ``matching`` (the smallest budget shown
      no worse than the baseline's full budget by more than the detectable
      difference, see :func:`smallest_budget`; None if none) and ``claim``:
      True when ``matching <= fraction``.

    Examples:
      >>> reach = {"matching": 0.25}
      >>> headline([{"method": "nsf", "reach": reach}])
      [{'method': 'nsf', 'matching': 0.25, 'claim': True}]
    """
    return [
        {
            "method": r["method"],
            "matching": r["reach"]["matching"],
            "claim": r["reach"]["matching"] is not None
            and r["reach"]["matching"] <= fraction,
        }
        for r in rows
    ]


def headline_line(claims: Sequence[Mapping[str, Any]], fraction: float = 0.25) -> str:
    """:func:`headline`'s answer as one markdown line.

    Examples:
      >>> print(headline_line([{"method": "nsf", "matching": 0.5, "claim": False}]))
      **Baseline accuracy at 0.25 of the cost?** nsf: no (matches from budget 0.5).
    """
    parts = [
        f"{c['method']}: {'yes' if c['claim'] else 'no'} ("
        + (
            f"matches from budget {c['matching']:g}"
            if c["matching"] is not None
            else "no budget shown to match"
        )
        + ")"
        for c in claims
    ]
    return (
        f"**Baseline accuracy at {fraction:g} of the cost?** " + "; ".join(parts) + "."
    )


def key(method: str, budget: float) -> str:
    """The tuning key of a method at a budget.

    Examples:
      >>> key("nsf-pulse", 0.25)
      'nsf-pulse@0.25'
    """
    return f"{method}@{budget:g}"


def tuning_bases(
    base: Config,
    methods: Sequence[str],
    budgets: Sequence[float],
    p_periods: budgeting.PPeriods = budgeting.DEFAULT_P_PERIODS,
) -> dict[str, Config]:
    """Per method and budget (key :func:`key`): the budget run its trials start
    from (:func:`.budgets.budget_config` of the method's config)."""
    return {
        key(m, b): budgeting.budget_config(
            compare.method_config(base, m, 0), b, p_periods=p_periods
        )
        for m in methods
        for b in budgets
    }


def run_names(
    base: Config,
    methods: Sequence[str],
    seeds: int,
    budgets: Sequence[float],
    p_periods: budgeting.PPeriods = budgeting.DEFAULT_P_PERIODS,
    search: Search | None = None,
) -> list[str]:
    """The run directories to check before anything trains: those the runs of
    :func:`budget_plan` train in (:func:`.finals.run_dirs`), or with a search its
    tuning trials' (``tuning/group<k>``, ``tuning/trial<k>``;
    the final runs' directories depend on the chosen rates and are checked
    after tuning). Raises ``ConfigError`` for a trial that cannot run."""
    if search is None:
        plan = budget_plan(base, methods, seeds, budgets, p_periods)
        return finals.run_dirs([c for *_, c, _ in plan], [n for *_, n in plan])
    from nsf_optax.experiments.tuning import protocol, trials

    planned = protocol.plan(tuning_bases(base, methods, budgets, p_periods), search)
    return trials.run_dirs([config for *_, config in planned], TUNING_DIR)


def final_plan(
    base: Config,
    methods: Sequence[str],
    seeds: int,
    budgets: Sequence[float],
    p_periods: budgeting.PPeriods,
    lrs: Mapping[str, float],
) -> list[tuple[str, float, Config, str]]:
    """:func:`budget_plan` with each run at ``lrs[key(method, budget)]``, its
    directory ``<method>/budget<b>[-p<p_periods>]-lr<lr>/seed<k>``."""
    out = []
    for method, b, config, name in budget_plan(
        base, methods, seeds, budgets, p_periods
    ):
        lr = lrs[key(method, b)]
        head, seed = os.path.split(name)
        config = dataclasses.replace(config, learning_rate=lr, val_fraction=0.0)
        out.append((method, b, config, os.path.join(f"{head}-lr{lr:g}", seed)))
    return out


def _run_tuned(
    base: Config,
    workdir: str,
    budgets: Sequence[float],
    methods: Sequence[str],
    seeds: int,
    p_periods: budgeting.PPeriods,
    *,
    search: Search,
    note: Mapping[str, Any],
) -> list[dict[str, Any]]:
    # Tune every "method@budget", then train both variants' final runs.
    import jax

    from nsf_optax.experiments.tuning import protocol

    bases = tuning_bases(base, methods, budgets, p_periods)
    with workdirs.Lock(workdir, enabled=jax.process_index() == 0):
        tuned = protocol.tune(
            bases, search, os.path.join(workdir, TUNING_DIR), resume=base.resume
        )
        lr = {k: t.chosen["learning_rate"] for k, t in tuned.items()}
        full = {
            key(m, b): lr[key(m, budgeting.FULL_BUDGET)]
            for m in methods
            for b in budgets
        }
        plans = {
            variant: final_plan(base, methods, seeds, budgets, p_periods, lrs)
            for variant, lrs in zip(VARIANTS, (lr, full), strict=True)
        }
        histories = _train_once(plans, workdir, base.resume)
        out = {}
        for variant, plan in plans.items():
            rows, in_run = _summaries(plan, histories, methods, budgets)
            text = _write_results(
                base, workdir, seeds, budgets, p_periods, rows, in_run,
                variant=variant, tuned=tuned, note=note,
            )  # fmt: skip
            print(f"\n{text}")
            out[variant] = (rows, in_run)
    print(f"written to {os.path.abspath(workdir)}")
    compare.raise_problems(out["tuned"][1], workdir)
    return out["tuned"][0]


def _train_once(
    plans: Mapping[str, Sequence[tuple[str, float, Config, str]]],
    workdir: str,
    resume: bool,
) -> dict[str, list]:
    # Every distinct run of the plans, once, as populations (each method and
    # budget's seeds, and both variants' rates, one group): name -> its history.
    runs = {name: (b, config) for plan in plans.values() for _, b, config, name in plan}
    names = list(runs)
    configs = [config for _, config in runs.values()]
    compare.check_runs(workdir, finals.run_dirs(configs, names), resume=resume)
    labels = [f" budget {b:g}" for b, _ in runs.values()]
    found = finals.train_finals(configs, names, workdir, resume=resume, labels=labels)
    found = finals.wall_per_run(configs, found)
    return dict(zip(names, found, strict=True))


def _summaries(
    plan: Sequence[tuple[str, float, Config, str]],
    histories: Mapping[str, list],
    methods: Sequence[str],
    budgets: Sequence[float],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    # One variant's budget rows and its full-budget runs' table.
    last: dict[str, dict[float, list]] = {m: {b: [] for b in budgets} for m in methods}
    curves: dict[str, list] = {m: [] for m in methods}
    for method, b, _, name in plan:
        last[method][b].append(histories[name][-1])
        if b == budgeting.FULL_BUDGET:
            curves[method].append(histories[name])
    in_run, _ = compare.summarize(curves)
    return budgeting.summarize_budgets(last, compare.BASELINE), in_run
