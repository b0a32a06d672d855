"""The comparison's figures: curves over seeds and accuracy against budget
(matplotlib, no display needed)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

from nsf_optax.spectral import mean_ci


def plot_comparison(
    curves: Mapping[str, Mapping[str, np.ndarray]],
    path: str | os.PathLike,
    *,
    title: str,
) -> str:
    """Seed-mean test accuracy and loss per method against step, with 95 % bands.

    The band is the Student-t 95 % interval of the mean over seeds
    (``nsf_optax.spectral.mean_ci``); with one seed only the mean is drawn.

    Args:
      curves: method -> {"step": [n], "test_accuracy": [seeds, n], "test_loss":
        [seeds, n]}.
      path: the PNG to write.
      title: figure title.

    Returns:
      ``path``.
    """
    fig = Figure(figsize=(11, 4), layout="constrained")
    ax_acc, ax_loss = fig.subplots(1, 2)
    for method, c in curves.items():
        for ax, key in ((ax_acc, "test_accuracy"), (ax_loss, "test_loss")):
            mean, half = mean_ci(np.asarray(c[key]), axis=0)
            (line,) = ax.plot(c["step"], mean, label=method)
            if np.all(np.isfinite(half)):
                ax.fill_between(
                    c["step"],
                    mean - half,
                    mean + half,
                    color=line.get_color(),
                    alpha=0.2,
                )
    ax_acc.set(xlabel="step", ylabel="test accuracy", title="test accuracy")
    ax_loss.set(xlabel="step", ylabel="test cross-entropy", title="test loss")
    ax_loss.set_yscale("log")
    for ax in (ax_acc, ax_loss):
        ax.grid(alpha=0.3)
    ax_acc.legend(fontsize=8)
    fig.suptitle(title)
    fig.savefig(os.fspath(path), dpi=100)
    return os.fspath(path)


def plot_budgets(
    rows: Sequence[Mapping],
    steps: Sequence[int],
    path: str | os.PathLike,
    *,
    title: str,
) -> str:
    """Final test accuracy and loss against training budget, one line per method.

    Error bars are the Student-t 95 % intervals of the means over seeds; the dashed
    line is SGD's full-budget mean accuracy (the target of the budget statistic).

    Args:
      rows: from :func:`nsf_optax.experiments.compare.budgets.summarize_budgets`.
      steps: the step count of each budget (the x axis).
      path: the PNG to write.
      title: figure title.

    Returns:
      ``path``.

    Examples:
      >>> import os, tempfile
      >>> from nsf_optax.experiments.compare.budgets import summarize_budgets
      >>> runs = lambda *a: [{"test_accuracy": x, "test_loss": 1 - x} for x in a]
      >>> rows = summarize_budgets({"sgd": {0.5: runs(0.7, 0.8), 1.0: runs(0.8, 0.9)}})
      >>> path = os.path.join(tempfile.mkdtemp(), "budgets.png")
      >>> os.path.getsize(plot_budgets(rows, [300, 600], path, title="sgd")) > 0
      True
    """
    fig = Figure(figsize=(11, 4), layout="constrained")
    ax_acc, ax_loss = fig.subplots(1, 2)
    for row in rows:
        for ax, key in ((ax_acc, "test_accuracy"), (ax_loss, "test_loss")):
            mean = np.asarray([s["mean"] for s in row[key]])
            half = np.asarray([s["ci95"] for s in row[key]])
            ax.errorbar(
                steps,
                mean,
                yerr=half if np.all(np.isfinite(half)) else None,
                marker="o",
                capsize=3,
                label=row["method"],
            )
    target = next((r for r in rows if r["method"] == "sgd"), None)
    if target is not None:
        ax_acc.axhline(
            target["test_accuracy"][-1]["mean"],
            color="gray",
            linestyle="--",
            linewidth=1,
            label="SGD, full budget",
        )
    ax_acc.set(xlabel="budget (steps)", ylabel="final test accuracy")
    ax_loss.set(xlabel="budget (steps)", ylabel="final test cross-entropy")
    ax_loss.set_yscale("log")
    for ax in (ax_acc, ax_loss):
        ax.set_xscale("log", base=2)
        ax.set_xticks(list(steps), [str(s) for s in steps])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.grid(alpha=0.3)
    ax_acc.legend(fontsize=8)
    fig.suptitle(title)
    fig.savefig(os.fspath(path), dpi=100)
    return os.fspath(path)
