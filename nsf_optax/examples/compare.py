"""Methods x seeds on one dataset: a results table and comparison plots.

    python -m nsf_optax.examples.compare --dataset mnist1d --seeds 5 \\
        --workdir runs/compare-mnist1d --num_steps 800

Every method shares the config (model, data, LR schedule, weight decay, steps) and
differs only in the optimizer fields of ``METHODS``. For each method the table gives,
over seeds: the final test accuracy and test loss (mean ± std); the first evaluated
step at which the seed-mean test-accuracy curve reaches the SGD baseline's final
(seed-mean) accuracy, and that step divided by the same quantity for SGD itself
("ratio": below 1 means earlier); per seed, how many seeds reach that target; and
the early decision-boundary alignment (``nsf_optax.spectral.alignment.early_alignment``)
against SGD over the first half of training (the fraction of evaluations where the
method's mean accuracy leads SGD's while its mean test loss is not lower).

Outputs in ``--workdir``: ``results.md``, ``results.csv``, ``results.json``,
``comparison.png`` and one sub-directory per run (``<method>/seed<k>/``). Pass
``--resume`` to continue an interrupted comparison: finished runs are reloaded from
their final checkpoint, unfinished ones continue from their newest.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import os
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from nsf_optax.examples import checkpointing, configs, plots
from nsf_optax.examples.configs.default import Config
from nsf_optax.spectral.alignment import early_alignment, first_step_reaching

# Optimizer fields per method; everything else comes from the base config.
METHODS: dict[str, dict[str, Any]] = {
    "sgd": dict(optimizer="sgd"),
    "adam": dict(optimizer="adam"),
    "padam": dict(optimizer="padam"),
    "nsf-const": dict(optimizer="nsf", p_schedule="constant"),
    "nsf-cosine": dict(optimizer="nsf", p_schedule="cosine_tidal"),
    "nsf-pulse": dict(optimizer="nsf", p_schedule="pulse_tidal"),
    "nsf-pulse-raw": dict(optimizer="nsf", p_schedule="pulse_tidal", normalize="none"),
}
DEFAULT_METHODS = ("sgd", "adam", "padam", "nsf-const", "nsf-cosine", "nsf-pulse")
BASELINE = "sgd"

TABLE_COLUMNS = (
    "method",
    "final test acc",
    "final test loss",
    "steps to SGD final acc",
    "ratio vs SGD",
    "seeds reaching",
    "aligned (1st half)",
    "wall s/run",
)


def method_config(base: Config, method: str, seed: int) -> Config:
    """``base`` with the optimizer fields of ``method`` and the given seed.

    Args:
      base: the shared configuration.
      method: a key of ``METHODS``.
      seed: the run's seed.

    Returns:
      The run's :class:`Config` (learning rate reset to the optimizer's default
      unless ``base`` sets one).
    """
    if method not in METHODS:
        raise ValueError(f"Unknown method {method!r}; choose from {list(METHODS)}.")
    return dataclasses.replace(base, seed=seed, resume=False, **METHODS[method])


def _fmt(mean: float, std: float, digits: int) -> str:
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def summarize(
    histories: dict[str, list[list[dict[str, float]]]],
    baseline: str = BASELINE,
) -> tuple[list[dict[str, Any]], dict[str, dict[str, np.ndarray]]]:
    """The results table from per-method, per-seed metric histories.

    Args:
      histories: method -> one history per seed (rows with step, test_accuracy,
        test_loss), all evaluated at the same steps. Must include ``baseline``.
      baseline: the reference method.

    Returns:
      ``(rows, curves)``: one dict per method with the raw numbers and the
      formatted ``TABLE_COLUMNS``; and method -> {"step", "test_accuracy",
      "test_loss"} arrays (``[seeds, n]``) for plotting.
    """
    if baseline not in histories:
        raise ValueError(f"The comparison needs the baseline method {baseline!r}.")
    curves = {}
    for method, runs in histories.items():
        steps = np.asarray([r["step"] for r in runs[0]], np.float64)
        for run in runs:
            if [r["step"] for r in run] != list(steps):
                raise ValueError(f"{method}: seeds were evaluated at different steps.")
        curves[method] = {
            "step": steps,
            "test_accuracy": np.asarray(
                [[r["test_accuracy"] for r in run] for run in runs]
            ),
            "test_loss": np.asarray([[r["test_loss"] for r in run] for run in runs]),
            "elapsed_s": np.asarray([run[-1].get("elapsed_s", np.nan) for run in runs]),
        }
    base = curves[baseline]
    target = float(base["test_accuracy"].mean(0)[-1])
    base_steps = first_step_reaching(
        base["step"], base["test_accuracy"].mean(0), target
    )
    half = base["step"][-1] / 2
    rows = []
    for method, c in curves.items():
        acc_final, loss_final = c["test_accuracy"][:, -1], c["test_loss"][:, -1]
        mean_acc, mean_loss = c["test_accuracy"].mean(0), c["test_loss"].mean(0)
        steps = first_step_reaching(c["step"], mean_acc, target)
        per_seed = [
            first_step_reaching(c["step"], a, target) for a in c["test_accuracy"]
        ]
        reached = [s for s in per_seed if s is not None]
        ratio = steps / base_steps if steps is not None and base_steps else None
        if method == baseline or not np.array_equal(c["step"], base["step"]):
            aligned = None
        else:
            report = early_alignment(
                c["step"],
                mean_acc,
                mean_loss,
                base["test_accuracy"].mean(0),
                base["test_loss"].mean(0),
                target_accuracy=target,
                window=(0, half),
            )
            aligned = report.fraction_aligned
        row = {
            "method": method,
            "seeds": len(acc_final),
            "final_test_accuracy_mean": float(acc_final.mean()),
            "final_test_accuracy_std": float(acc_final.std()),
            "final_test_loss_mean": float(loss_final.mean()),
            "final_test_loss_std": float(loss_final.std()),
            "target_accuracy": target,
            "steps_to_target": steps,
            "ratio_vs_baseline": ratio,
            "per_seed_steps_to_target": per_seed,
            "aligned_fraction_first_half": aligned,
        }
        row["table"] = {
            "method": method,
            "final test acc": _fmt(100 * acc_final.mean(), 100 * acc_final.std(), 2),
            "final test loss": _fmt(loss_final.mean(), loss_final.std(), 4),
            "steps to SGD final acc": "never" if steps is None else f"{steps:.0f}",
            "ratio vs SGD": "-" if ratio is None else f"{ratio:.2f}",
            "seeds reaching": f"{len(reached)}/{len(per_seed)}",
            "aligned (1st half)": "-" if aligned is None else f"{aligned:.2f}",
            "wall s/run": f"{np.mean(c['elapsed_s']):.0f}",
        }
        rows.append(row)
    return rows, curves


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    """The formatted rows as a GitHub markdown table."""
    lines = [
        "| " + " | ".join(TABLE_COLUMNS) + " |",
        "|" + "|".join("---" for _ in TABLE_COLUMNS) + "|",
    ]
    lines += [
        "| " + " | ".join(r["table"][c] for c in TABLE_COLUMNS) + " |" for r in rows
    ]
    return "\n".join(lines)


def run_comparison(
    base: Config,
    workdir: str | os.PathLike,
    *,
    methods: Sequence[str] = DEFAULT_METHODS,
    seeds: int = 5,
) -> list[dict[str, Any]]:
    """Trains every method on seeds ``0..seeds-1`` and writes the results.

    Args:
      base: the shared configuration (its optimizer fields are replaced per method).
      workdir: output directory; each run goes to ``<workdir>/<method>/seed<k>``.
        With ``base.resume``, runs that already have a checkpoint there continue
        from it (a finished run is only reloaded) and the others start afresh, so an
        interrupted comparison picks up where it stopped.
      methods: keys of ``METHODS``; must include "sgd" (the baseline).
      seeds: number of seeds (> 0).

    Returns:
      The table rows (see :func:`summarize`).
    """
    from nsf_optax.examples import train

    if seeds <= 0:
        raise ValueError(f"seeds must be positive, got {seeds}.")
    methods = list(methods)
    for method in methods:
        method_config(base, method, 0)  # validates every name before training
    if BASELINE not in methods:
        raise ValueError(f"methods must include the baseline {BASELINE!r}.")
    workdir = os.fspath(workdir)
    histories: dict[str, list] = {}
    for method in methods:
        histories[method] = []
        for seed in range(seeds):
            run_dir = os.path.join(workdir, method, f"seed{seed}")
            config = dataclasses.replace(
                method_config(base, method, seed),
                resume=base.resume and checkpointing.has_checkpoint(run_dir),
            )
            result = train.train_and_evaluate(config, run_dir)
            last = result.history[-1]
            print(
                f"{method:>14} seed {seed}: test acc {last['test_accuracy']:.4f} "
                f"loss {last['test_loss']:.4f}",
                flush=True,
            )
            histories[method].append(result.history)
    rows, curves = summarize(histories)
    table = markdown_table(rows)
    title = (
        f"{base.model} on {base.dataset}, {base.num_steps} steps, {seeds} seeds "
        f"(mean ± std)"
    )
    with open(os.path.join(workdir, "results.md"), "w") as f:
        f.write(f"{title}\n\n{table}\n")
    with open(os.path.join(workdir, "results.json"), "w") as f:
        json.dump(
            {"config": dataclasses.asdict(base), "seeds": seeds, "rows": rows},
            f,
            indent=1,
            default=lambda x: None if isinstance(x, float) and math.isnan(x) else x,
        )
    with open(os.path.join(workdir, "results.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=TABLE_COLUMNS)
        writer.writeheader()
        writer.writerows(r["table"] for r in rows)
    plots.plot_comparison(curves, os.path.join(workdir, "comparison.png"), title=title)
    print(f"\n{title}\n\n{table}\n\nwritten to {os.path.abspath(workdir)}")
    return rows


def main(argv: list[str] | None = None) -> int:
    """Parses flags and runs :func:`run_comparison`. Returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m nsf_optax.examples.compare",
        description="NSF against optax baselines over several seeds.",
    )
    parser.add_argument(
        "--dataset",
        dest="preset",
        default="mnist1d",
        choices=[n for n in configs.CONFIG_NAMES if n != "default"],
        help="the preset config to start from (its dataset; 'tiny' is for tests)",
    )
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1")
    parser.add_argument(
        "--methods",
        default=",".join(DEFAULT_METHODS),
        help=f"comma-separated, from {', '.join(METHODS)}",
    )
    parser.add_argument(
        "--workdir", default=None, help="default: runs/compare-<dataset>"
    )
    configs.add_config_arguments(parser, exclude=("dataset",))
    args = parser.parse_args(argv)
    try:
        base = configs.config_from_args(configs.get_config(args.preset), args)
        base = dataclasses.replace(
            base, progress=base.progress and args.progress is True
        )
        run_comparison(
            base,
            args.workdir or os.path.join("runs", f"compare-{args.preset}"),
            methods=[m.strip() for m in args.methods.split(",") if m.strip()],
            seeds=args.seeds,
        )
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
