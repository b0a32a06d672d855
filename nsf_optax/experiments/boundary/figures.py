"""The decision-boundary demo's figures (matplotlib is imported lazily)."""

from typing import Any

import numpy as np

from nsf_optax.experiments.boundary.settings import BoundaryResult
from nsf_optax.spectral._stats import mean_ci

__all__ = ["figures", "plot_accuracy_curves", "plot_boundary_grid"]


def plot_boundary_grid(result: BoundaryResult) -> Any:
    """Decision-boundary evolution: rows are p settings, columns checkpoints.

    Training points are coloured by class; the top 10 % per class by effective
    update norm are drawn with a black edge.

    Returns:
      The matplotlib figure.
    """
    import matplotlib.pyplot as plt  # lazy: the package never needs it to import

    labels = [label for label in result.labels if label in result.snapshots]
    cols = len(result.settings.checkpoints)
    fig, axes = plt.subplots(
        len(labels),
        cols,
        figsize=(2.2 * cols, 2.2 * len(labels)),
        sharex=True,
        sharey=True,
        squeeze=False,
    )
    x, y, _ = result.train_data
    gx, gy = np.meshgrid(result.grid, result.grid)
    for i, label in enumerate(labels):
        for j, snap in enumerate(result.snapshots[label]):
            ax = axes[i, j]
            ax.contourf(
                gx, gy, snap.prob, levels=[0, 0.5, 1], colors=["C0", "C1"], alpha=0.25
            )
            ax.contour(gx, gy, snap.prob, levels=[0.5], colors="k", linewidths=1)
            ax.scatter(x[:, 0], x[:, 1], c=np.where(y == 1, "C1", "C0"), s=4)
            ax.scatter(
                x[snap.top, 0],
                x[snap.top, 1],
                facecolors="none",
                edgecolors="k",
                s=22,
                linewidths=0.8,
            )
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(f"step {snap.step}", fontsize=9)
            if j == 0:
                ax.set_ylabel(label, fontsize=9)
    fig.tight_layout()
    return fig


def plot_accuracy_curves(result: BoundaryResult) -> Any:
    """Test accuracy and train loss against step, seed mean with 95 % bands.

    Returns:
      The matplotlib figure.
    """
    import matplotlib.pyplot as plt  # lazy: the package never needs it to import

    fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(11, 4))
    steps = result.eval_steps
    for i, label in enumerate(result.labels):
        for ax, data in ((ax_acc, result.accuracy), (ax_loss, result.train_loss)):
            m, h = mean_ci(data[i], axis=0)
            ax.plot(steps, m, color=f"C{i}", label=label)
            ax.fill_between(steps, m - h, m + h, color=f"C{i}", alpha=0.2)
    ax_acc.set_xscale("symlog", linthresh=10)
    ax_loss.set_xscale("symlog", linthresh=10)
    ax_loss.set_yscale("log")
    ax_acc.set_ylabel("test accuracy")
    ax_loss.set_ylabel("train cross-entropy")
    for ax in (ax_acc, ax_loss):
        ax.set_xlabel("step")
    ax_acc.legend(fontsize=8)
    fig.tight_layout()
    return fig


def figures(result: BoundaryResult) -> dict[str, Any]:
    """``{file name: figure}`` for ``--plots`` (the grid needs the snapshots)."""
    out = {"boundary_accuracy.png": plot_accuracy_curves(result)}
    if result.snapshots:
        out["boundary_grid.png"] = plot_boundary_grid(result)
    return out
