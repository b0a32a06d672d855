"""Methods x seeds on one dataset: a results table and comparison plots.

    python -m nsf_optax.experiments.compare --config mnist1d --seeds 5 \\
        --workdir runs/compare-mnist1d --num_steps 800

Every method shares the config (model, data, LR schedule, weight decay, steps) and
differs only in its optimizer fields (:func:`.methods.methods`). For each method the
table gives, over seeds: the final test accuracy and test loss (mean ± sample
standard deviation, ddof 1; ``results.json`` adds the half-width of the 95 %
Student-t interval of the mean, ``nsf_optax.spectral.mean_ci``); the first evaluated
step at which the seed-mean test-accuracy curve reaches the SGD baseline's final
(seed-mean) accuracy, and that step divided by the same quantity for SGD itself
("ratio": below 1 means earlier); per seed, how many seeds reach that target; and
the early decision-boundary alignment (``nsf_optax.spectral.alignment.early_alignment``)
against SGD over the first half of training (the fraction of evaluations where the
method's mean accuracy leads SGD's while its mean test loss is not lower).

Verdicts against SGD (:mod:`.verdicts`): the paired difference in final test
accuracy with its 95 % t interval, and the detectable difference when it holds 0.
With ``--tune`` (:mod:`nsf_optax.experiments.tuning.protocol`) every method's
learning rate is first chosen on held-out data (``<workdir>/tuning/``), the seeds
then train at it, and the table adds the steps to the tuned SGD's validation
accuracy; untuned results say that they were not tuned.

Outputs in ``--workdir``: ``results.md``, ``results.csv``, ``results.json``,
``comparison.png`` and one sub-directory per run (``<method>/seed<k>/``, its
``metrics.json`` and ``metrics.csv``). A method's seeds train as one population in
``<method>/group/`` (:mod:`.finals`; checkpoints there). The comparison locks its
workdir and each group its own (:mod:`.workdirs`). Pass ``--resume`` to continue
an interrupted comparison: finished groups are reloaded from their final
checkpoint, unfinished ones continue from their newest verified one.

Checked before anything trains, and before jax loads: the flags, the budgets, every
run's directory (:func:`check_runs`) and that some evaluation falls in the first
half of training (:func:`check_analysis`). A result that still fails after training
leaves every other result written and ends with one line, exit status 2
(:func:`raise_problems`).

Budgeted training: ``--budgets 0.25 0.5 1`` trains every method and seed again at
every budget, a separate run planned for that fraction of ``num_steps``
(learning-rate warmup and decay end at the budget; ``--p_periods`` says whether the
p-schedule periods scale with it, the default, or stay fixed in steps), and reports
final test accuracy and loss against budget and the smallest budget at which each
method reaches SGD's full-budget accuracy, paired over seeds
(:mod:`.compare_budgets` runs it, :mod:`.budgets` holds the logic).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from nsf_optax.experiments.compare import finals, results, verdicts
from nsf_optax.experiments.resnet import methods as methods_table
from nsf_optax.experiments.resnet.configs.default import Config
from nsf_optax.experiments.runner import preflight, workdirs
from nsf_optax.experiments.runner.errors import AnalysisError, ConfigError
from nsf_optax.experiments.tuning import evidence, protocol

# The methods are one table, :func:`.methods.methods` (label -> the config fields
# it sets): every optimizer, and nsf with every registered p schedule.
DEFAULT_METHODS = methods_table.DEFAULT_METHODS
BASELINE = methods_table.BASELINE

TABLE_COLUMNS = (
    "method",
    "final test acc",
    "final test loss",
    "steps to SGD final acc",
    "ratio vs SGD",
    "seeds reaching",
    "aligned (1st half)",
    "wall s/run",
    *verdicts.ACCURACY_COLUMNS,
)
TUNED_COLUMNS = TABLE_COLUMNS + verdicts.TIME_COLUMNS
TUNING_DIR = "tuning"


def method_config(base: Config, method: str, seed: int) -> Config:
    """``base`` with the optimizer fields of ``method`` and the given seed.

    Args:
      base: the shared configuration.
      method: a method label of :func:`.methods.methods`.
      seed: the run's seed.

    Returns:
      The run's :class:`Config` (learning rate reset to the optimizer's default
      unless ``base`` sets one).

    Raises:
      ConfigError: for an unknown method, naming the choices.
    """
    fields = methods_table.overrides(method)
    return dataclasses.replace(base, seed=seed, resume=False, **fields)


def _fmt(mean: float, std: float, digits: int) -> str:
    if math.isnan(std):  # a single seed has no spread
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def _spread(values: Any) -> tuple[float, float, float]:
    # Mean, sample standard deviation (ddof 1) and the 95 % t-interval half-width.
    from nsf_optax.spectral import mean_ci  # imports jax: not at module level

    values = np.asarray(values, np.float64)
    std = float(values.std(ddof=1)) if len(values) > 1 else math.nan
    mean, half = mean_ci(values)
    return float(mean), std, float(half)


def summarize(
    histories: dict[str, list[list[dict[str, float]]]],
    baseline: str = BASELINE,
    *,
    tuned: Mapping[str, protocol.Tuned] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, dict[str, np.ndarray]]]:
    """The results table from per-method, per-seed metric histories.

    Args:
      histories: method -> one history per seed (rows with step, test_accuracy,
        test_loss), all evaluated at the same steps. Must include ``baseline``.
      baseline: the reference method.
      tuned: every method's tuning result; given, the rows add the time to
        the tuned baseline's ``val_target`` on each method's validation curves at
        its chosen rate, paired by tuning seed (:func:`.verdicts.time_to_target`).

    Returns:
      ``(rows, curves)``: one dict per method with the raw numbers (means, sample
      standard deviations with ddof 1, and ``*_ci95``: half-widths of the 95 %
      Student-t intervals of the means; nan for a single seed) and the formatted
      ``TABLE_COLUMNS``; and method -> {"step", "test_accuracy", "test_loss"}
      arrays (``[seeds, n]``) for plotting. An alignment that cannot be
      computed is None ("-" in the table) with the reason in the row's
      ``alignment_error`` (see :func:`check_analysis`). Each row also holds
      ``vs_baseline`` (:func:`.verdicts.paired_accuracy`; None for the baseline)
      and, with ``tuned``, ``time_to_val_target``
      (:func:`.verdicts.time_to_target`).
    """
    from nsf_optax.spectral.alignment import first_step_reaching

    if baseline not in histories:
        raise ValueError(f"The comparison needs the baseline method {baseline!r}.")
    curves = {method: _curves(method, runs) for method, runs in histories.items()}
    base = curves[baseline]
    target = float(base["test_accuracy"].mean(0)[-1])
    base_steps = first_step_reaching(
        base["step"], base["test_accuracy"].mean(0), target
    )
    rows = [
        _row(method, c, None if method == baseline else base, target, base_steps)
        for method, c in curves.items()
    ]
    for row, c in zip(rows, curves.values(), strict=True):
        versus = None
        if row["method"] != baseline:
            versus = verdicts.paired_accuracy(
                c["test_accuracy"][:, -1], base["test_accuracy"][:, -1]
            )
        timed = None
        if tuned is not None:
            steps, own = tuned[row["method"]].val_curves()
            base_steps_val, base_val = tuned[baseline].val_curves()
            if not np.array_equal(steps, base_steps_val):
                raise ValueError(f"{row['method']}: not evaluated as {baseline}.")
            timed = verdicts.time_to_target(
                steps, own, base_val, tuned[baseline].val_target
            )
            if versus is None:  # the baseline: no difference to itself
                timed["steps_difference_mean"] = math.nan
        row["vs_baseline"] = versus
        row["time_to_val_target"] = timed
        row["table"].update(verdicts.cells(versus, timed))
    return rows, curves


def _curves(method: str, runs: list[list[dict[str, float]]]) -> dict[str, np.ndarray]:
    # One method's test curves, [seeds, evaluations], and its wall time per run.
    steps = np.asarray([r["step"] for r in runs[0]], np.float64)
    for run in runs:
        if [r["step"] for r in run] != list(steps):
            raise ValueError(f"{method}: seeds were evaluated at different steps.")
    return {
        "step": steps,
        "test_accuracy": np.asarray(
            [[r["test_accuracy"] for r in run] for run in runs]
        ),
        "test_loss": np.asarray([[r["test_loss"] for r in run] for run in runs]),
        "elapsed_s": np.asarray([run[-1].get("elapsed_s", np.nan) for run in runs]),
    }


def _alignment(
    method: str, c: dict[str, np.ndarray], base: dict[str, np.ndarray], target: float
) -> tuple[float | None, str | None]:
    # The early alignment against the baseline, or None and why it failed.
    from nsf_optax.spectral.alignment import early_alignment

    if not np.array_equal(c["step"], base["step"]):
        return None, None
    try:
        report = early_alignment(
            c["step"],
            c["test_accuracy"].mean(0),
            c["test_loss"].mean(0),
            base["test_accuracy"].mean(0),
            base["test_loss"].mean(0),
            target_accuracy=target,
            window=(0, base["step"][-1] / 2),
        )
    except ValueError as e:
        # The other columns stand; the caller reports this once they are written.
        return None, f"{method}: the early alignment (1st half): {e}"
    return report.fraction_aligned, None


def _row(
    method: str,
    c: dict[str, np.ndarray],
    base: dict[str, np.ndarray] | None,
    target: float,
    base_steps: float | None,
) -> dict[str, Any]:
    # One method's row of the table (base: the baseline's curves, None for itself).
    from nsf_optax.spectral.alignment import first_step_reaching

    acc_final, loss_final = c["test_accuracy"][:, -1], c["test_loss"][:, -1]
    steps = first_step_reaching(c["step"], c["test_accuracy"].mean(0), target)
    per_seed = [first_step_reaching(c["step"], a, target) for a in c["test_accuracy"]]
    reached = [s for s in per_seed if s is not None]
    ratio = steps / base_steps if steps is not None and base_steps else None
    aligned, problem = (
        (None, None) if base is None else _alignment(method, c, base, target)
    )
    acc_mean, acc_std, acc_ci = _spread(acc_final)
    loss_mean, loss_std, loss_ci = _spread(loss_final)
    table = {
        "method": method,
        "final test acc": _fmt(100 * acc_mean, 100 * acc_std, 2),
        "final test loss": _fmt(loss_mean, loss_std, 4),
        "steps to SGD final acc": "never" if steps is None else f"{steps:.0f}",
        "ratio vs SGD": "-" if ratio is None else f"{ratio:.2f}",
        "seeds reaching": f"{len(reached)}/{len(per_seed)}",
        "aligned (1st half)": "-" if aligned is None else f"{aligned:.2f}",
        "wall s/run": f"{np.mean(c['elapsed_s']):.0f}",
    }
    return {
        "method": method,
        "seeds": len(acc_final),
        "final_test_accuracy_mean": acc_mean,
        "final_test_accuracy_std": acc_std,
        "final_test_accuracy_ci95": acc_ci,
        "final_test_accuracy_per_seed": [float(a) for a in acc_final],
        "final_test_loss_mean": loss_mean,
        "final_test_loss_std": loss_std,
        "final_test_loss_ci95": loss_ci,
        "target_accuracy": target,
        "steps_to_target": steps,
        "ratio_vs_baseline": ratio,
        "per_seed_steps_to_target": per_seed,
        "aligned_fraction_first_half": aligned,
        "alignment_error": problem,
        "table": table,
    }


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    """The formatted rows as a GitHub markdown table (``TABLE_COLUMNS``, or
    ``TUNED_COLUMNS`` when the rows hold the time to the tuned target)."""
    columns = (
        TUNED_COLUMNS if rows and rows[0].get("time_to_val_target") else TABLE_COLUMNS
    )
    lines = [
        "| " + " | ".join(columns) + " |",
        "|" + "|".join("---" for _ in columns) + "|",
    ]
    lines += ["| " + " | ".join(r["table"][c] for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def check_analysis(base: Config, methods: Sequence[str]) -> None:
    """Refuses, before training, a config whose results the table cannot analyse.

    The alignment column compares each method with SGD over the evaluations in
    the first half of training (steps ``0..num_steps/2``); evaluations come every
    ``eval_every_steps`` steps and after the last.

    Args:
      base: the shared configuration.
      methods: the methods compared.

    Raises:
      ConfigError: naming ``--eval_every_steps`` and ``--num_steps`` when a
        method besides the baseline is compared and no evaluation falls in the
        first half.
    """
    if set(methods) <= {BASELINE}:
        return  # no alignment to compute
    half = base.num_steps / 2
    if base.eval_every_steps > half:
        raise ConfigError(
            f"eval_every_steps ({base.eval_every_steps}) leaves no evaluation in "
            f"the first half (steps 0 to {half:g}) of num_steps "
            f"({base.num_steps}), which the early-alignment column compares; use "
            f"eval_every_steps <= {math.floor(half)} or more steps.",
            ("eval_every_steps", "num_steps"),
        )


def check_runs(
    workdir: str, run_dirs: Sequence[str], *, resume: bool, probe: bool = False
) -> None:
    """Checks a comparison's workdir and runs before anything trains (no jax).

    Args:
      workdir: the comparison's directory.
      run_dirs: its runs' directories, relative to ``workdir``.
      resume: whether runs that hold checkpoints continue.
      probe: see :func:`.workdirs.check`.

    Raises:
      WorkdirError: for an unusable workdir.
      CheckpointError: without ``resume``, for a run that holds checkpoints.
    """
    workdirs.check(workdir, probe=probe)
    for run_dir in run_dirs:
        path = os.path.join(workdir, run_dir)
        started = bool(preflight.checkpoint_steps(preflight.checkpoint_dir(path)))
        # With resume, a run with checkpoints continues, one without starts.
        preflight.check_start(path, resume=resume and started)


def final_runs(
    base: Config, methods: Sequence[str], seeds: int
) -> tuple[list[Config], list[str]]:
    """The final runs (untuned) and their directories, ``<method>/seed<k>``."""
    configs = [method_config(base, m, k) for m in methods for k in range(seeds)]
    names = [os.path.join(m, f"seed{k}") for m in methods for k in range(seeds)]
    return configs, names


def run_dirs(base: Config, methods: Sequence[str], seeds: int) -> list[str]:
    """Where the final runs train, relative to the workdir (:func:`.finals.run_dirs`:
    ``<method>/group``, or ``<method>/seed0`` for a single seed)."""
    return finals.run_dirs(*final_runs(base, methods, seeds))


def raise_problems(rows: Sequence[dict[str, Any]], workdir: str) -> None:
    """After the results are written: one :class:`AnalysisError` for what failed.

    Raises:
      AnalysisError: when a row holds an ``alignment_error``.
    """
    problems = [r["alignment_error"] for r in rows if r.get("alignment_error")]
    if problems:
        raise AnalysisError(
            f"{'; '.join(problems)}. Every other result is written to "
            f"{os.path.abspath(workdir)!r} (that column shows '-')."
        )


def check_methods(methods: Sequence[str], seeds: int) -> list[str]:
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds <= 0:
        raise ConfigError(
            f"seeds must be a positive integer, got {seeds!r}.", ("seeds",)
        )
    methods = list(methods)
    for method in methods:
        methods_table.overrides(method)  # raises for an unknown one
    if BASELINE not in methods:
        raise ConfigError(
            f"methods must include the baseline {BASELINE!r}.", ("methods",)
        )
    if len(set(methods)) != len(methods):
        raise ConfigError(f"methods repeat a name: {methods}.", ("methods",))
    return methods


def tuning_bases(base: Config, methods: Sequence[str]) -> dict[str, Config]:
    """Each method's config before tuning (the search sets its learning rate,
    seed and held-out fraction)."""
    return {method: method_config(base, method, 0) for method in methods}


def tuning_run_dirs(
    base: Config, methods: Sequence[str], search: protocol.Search
) -> list[str]:
    """The tuning trials' directories, relative to the comparison's workdir.

    Raises:
      ConfigError: for a trial that cannot run (see :func:`.protocol.plan`).
    """
    from nsf_optax.experiments.tuning import trials

    planned = protocol.plan(tuning_bases(base, methods), search)
    return trials.run_dirs([config for *_, config in planned], TUNING_DIR)


def run_comparison(
    base: Config,
    workdir: str | os.PathLike,
    *,
    methods: Sequence[str] = DEFAULT_METHODS,
    seeds: int = 5,
    search: protocol.Search | None = None,
    preset: str | None = None,
) -> list[dict[str, Any]]:
    """Trains every method on seeds ``0..seeds-1`` and writes the results.

    Args:
      base: the shared configuration (its optimizer fields are replaced per method).
      workdir: output directory; each run's metrics go to
        ``<workdir>/<method>/seed<k>``, a method's seeds train as one population in
        ``<workdir>/<method>/group`` (:mod:`.finals`). With ``base.resume``, groups
        that already have a checkpoint continue from it (a finished one is only
        reloaded) and the others start afresh, so an interrupted comparison picks
        up where it stopped (the tuning too). The comparison holds the workdir's
        lock, and each group its own.
      methods: labels of :func:`.methods.methods`; must include "sgd" (the
        baseline).
      seeds: number of seeds (> 0).
      search: tune every method's learning rate first (:func:`.protocol.tune`,
        trials in ``<workdir>/tuning/``) and train the seeds at the chosen
        values; None trains at the preset's rates (the results say so).
      preset: the preset ``base`` started from, for the evidence note
        (:func:`~nsf_optax.experiments.tuning.evidence.assess`: printed, and
        recorded in ``results.md`` and ``results.json``).

    Returns:
      The table rows (see :func:`summarize`); tuned, each also holds its
      method's ``chosen``, ``trials``, ``grid``, ``edge`` and ``val_target``.

    Raises:
      UsageError: (:mod:`~nsf_optax.experiments.runner.errors`) for unknown methods, a
        bad
        seed count, an unusable or busy workdir, no evaluation in the first half
        (:func:`check_analysis`), a tuning trial that cannot run, and whatever a
        run refuses (see
        :func:`~nsf_optax.experiments.resnet.train.train_and_evaluate`); all before
        anything trains. ``AnalysisError`` for a result that could not be
        computed, after every other output is written.
    """
    methods = check_methods(methods, seeds)
    check_analysis(base, methods)
    workdir = os.fspath(workdir)
    names = run_dirs(base, methods, seeds)
    if search is not None:
        names += tuning_run_dirs(base, methods, search)
    check_runs(workdir, names, resume=base.resume)
    import jax

    with workdirs.Lock(workdir, enabled=jax.process_index() == 0):
        tuned = None
        if search is not None:
            tuned = protocol.tune(
                tuning_bases(base, methods),
                search,
                os.path.join(workdir, TUNING_DIR),
                resume=base.resume,
            )
        configs, names = final_runs(base, methods, seeds)
        if tuned is not None:
            chosen = [tuned[m] for m in methods for _ in range(seeds)]
            configs = [
                protocol.apply(*pair) for pair in zip(configs, chosen, strict=True)
            ]
        found = finals.train_finals(configs, names, workdir, resume=base.resume)
        found = finals.wall_per_run(configs, found)
        histories = {
            m: found[i * seeds : (i + 1) * seeds] for i, m in enumerate(methods)
        }
        note = evidence.assess(
            preset=preset or "custom", seeds=seeds, tuned=tuned is not None
        )
        rows, curves = summarize(histories, tuned=tuned)
        text = results.write_results(
            base,
            workdir,
            seeds,
            rows,
            curves,
            tuned,
            table=markdown_table(rows),
            fields=TABLE_COLUMNS if tuned is None else TUNED_COLUMNS,
            search=search,
            note=note,
        )
    # The text opens with the evidence line.
    print(f"\n{text}\nwritten to {os.path.abspath(workdir)}")
    raise_problems(rows, workdir)
    return rows
