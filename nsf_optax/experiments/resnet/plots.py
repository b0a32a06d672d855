"""PNG plots of one run and of a comparison (matplotlib, no display needed)."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

from nsf_optax.spectral import mean_ci


def plot_run(
    history: Sequence[Mapping[str, float]],
    workdir: str | os.PathLike,
    *,
    title: str,
    schedules: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> list[str]:
    """Writes ``curves.png`` (loss, accuracy) and ``schedules.png`` (lr, p).

    Args:
      history: evaluation rows with step, train/test loss and accuracy.
      workdir: output directory.
      title: figure title.
      schedules: ``(steps, lr, p)`` at every step (the values each step used).

    Returns:
      The paths written.
    """
    step = [r["step"] for r in history]
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax_loss, ax_acc = fig.subplots(1, 2)
    for split in ("train", "test"):
        ax_loss.plot(step, [r[f"{split}_loss"] for r in history], label=split)
        ax_acc.plot(step, [r[f"{split}_accuracy"] for r in history], label=split)
    ax_loss.set(xlabel="step", ylabel="cross-entropy", yscale="log", title="loss")
    ax_acc.set(xlabel="step", ylabel="accuracy", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.legend()
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    curves = os.path.join(os.fspath(workdir), "curves.png")
    fig.savefig(curves, dpi=100)

    fig = Figure(figsize=(10, 3.5), layout="constrained")
    ax_lr, ax_p = fig.subplots(1, 2)
    steps, lr, p = schedules
    ax_lr.plot(steps, lr)
    ax_lr.set(xlabel="step", ylabel="learning rate", title="lr(t)")
    ax_p.plot(steps, p, drawstyle="steps-post")
    ax_p.set(xlabel="step", ylabel="p", title="p(t)")
    for ax in (ax_lr, ax_p):
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    schedules_png = os.path.join(os.fspath(workdir), "schedules.png")
    fig.savefig(schedules_png, dpi=100)
    return [curves, schedules_png]


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


def plot_landscape(
    table: Sequence[Mapping[str, Any]],
    path: str | os.PathLike | None = None,
    *,
    title: str,
    flavour: str = "sgd",
    ax: Any = None,
) -> Any:
    """Final test accuracy against p, one line per label-noise level.

    Error bars are the 95 % Student-t intervals over seeds; the best p of each
    level is a star; the SGD (p = 0) and Adam (p = 1/2) endpoints are labelled
    vertical lines.

    Args:
      table: the rows of :func:`nsf_optax.experiments.landscape.stats.summarize`.
      path: the PNG to write (only when ``ax`` is None).
      title: the axes' title.
      flavour: "sgd" or "adam", for the endpoint labels.
      ax: a matplotlib ``Axes`` to draw into (e.g. a notebook's subplot).

    Returns:
      ``path`` when a file was written, else ``ax``.
    """
    from nsf_optax.experiments.landscape.stats import endpoint

    if ax is None and path is None:
        raise ValueError("plot_landscape needs a path or an ax to draw into.")
    fig = None
    if ax is None:
        fig = Figure(figsize=(6.5, 4.2), layout="constrained")
        ax = fig.subplots()
    for noise in sorted({r["label_noise"] for r in table}):
        level = sorted((r for r in table if r["label_noise"] == noise), key=_p)
        p = np.asarray([r["p"] for r in level])
        mean = 100 * np.asarray([r["accuracy_mean"] for r in level])
        half = 100 * np.asarray([r["accuracy_ci95"] for r in level])
        bars = ax.errorbar(
            p,
            mean,
            yerr=np.where(np.isfinite(half), half, 0.0),
            marker="o",
            markersize=4,
            capsize=3,
            label=f"label noise {noise:g}",
        )
        best = next(i for i, r in enumerate(level) if r["best"])
        ax.plot(p[best], mean[best], "*", markersize=14, color=bars[0].get_color())
    for value in (0.0, 0.5):
        ax.axvline(value, color="0.5", linestyle="--", linewidth=0.8)
        ax.annotate(
            f"{endpoint(value, flavour)} (p = {value:g})",
            (value, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(3, -12),
            textcoords="offset points",
            fontsize=8,
            color="0.35",
        )
    ax.set(xlabel="p (constant)", ylabel="final test accuracy (%)")
    ax.set_title(textwrap.fill(title, 70), fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    if fig is None:
        return ax
    assert path is not None
    fig.savefig(os.fspath(path), dpi=100)
    return os.fspath(path)


def _p(row: Mapping[str, Any]) -> float:
    return row["p"]
