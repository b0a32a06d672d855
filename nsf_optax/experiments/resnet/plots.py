"""PNG plots of one run (matplotlib, no display needed)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure


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
      schedules: ``(steps, lr, p)`` at every step (the values each step used);
        ``p`` all NaN for an optimizer without an exponent (an empty panel).

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
    # NaN throughout: an optimizer without a second-moment exponent (lion...).
    no_exponent = bool(np.isnan(np.asarray(p, np.float64)).all())
    ax_p.set(
        xlabel="step",
        ylabel="p",
        title="p(t): none (no exponent)" if no_exponent else "p(t)",
    )
    for ax in (ax_lr, ax_p):
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    schedules_png = os.path.join(os.fspath(workdir), "schedules.png")
    fig.savefig(schedules_png, dpi=100)
    return [curves, schedules_png]
