"""The decay experiment's figures (matplotlib is imported lazily)."""

from typing import Any

import numpy as np

from nsf_optax.experiments.decay.settings import PAPER_MODES
from nsf_optax.experiments.decay.table import PAPER_TABLE, DecayTable

__all__ = ["figures", "plot_decay_mosaic", "plot_lambda_vs_k"]


def plot_lambda_vs_k(table: DecayTable, *, paper: bool = True) -> Any:
    """lambda_k against k (log axis), one line per row; the paper's dashed beside.

    The decay constants are those of the table's protocol (``fit.lam``: against
    tau or t, as ``table.settings.regression`` says).

    Args:
      table: a :class:`DecayTable`.
      paper: overlay :data:`PAPER_TABLE` rows with the same labels.

    Returns:
      The matplotlib figure.

    Examples:
      >>> from nsf_optax.experiments.decay import experiment as decay
      >>> s = decay.DecaySettings(num_steps=100, window=(0.0, 1.0))
      >>> fig = plot_lambda_vs_k(decay.decay_table(s, {"p=0": 0.0}))
      >>> len(fig.axes)
      1
    """
    import matplotlib.pyplot as plt  # lazy: the package never needs it to import

    fig, ax = plt.subplots(figsize=(7, 4.5))
    k = np.asarray(table.modes)
    for i, (label, fit) in enumerate(table.rows.items()):
        color = f"C{i}"
        ax.plot(k, fit.lam, "o-", color=color, label=f"{label} (vs {fit.variable})")
        if paper and label in PAPER_TABLE and tuple(table.modes) == PAPER_MODES:
            ax.plot(k, PAPER_TABLE[label], "x--", color=color, alpha=0.6)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("mode k")
    ax.set_ylabel(r"early decay constant $\lambda_k$")
    ax.set_title("solid: this simulation, dashed: the paper's table")
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    return fig


def plot_decay_mosaic(table: DecayTable) -> Any:
    """:math:`|c_k|` traces (log axis) for every row against its regression variable.

    One panel per row; the horizontal axis is tau or t, the variable the
    protocol fits that row against, with the fit window shaded.

    Returns:
      The matplotlib figure.

    Examples:
      >>> from nsf_optax.experiments.decay import experiment as decay
      >>> s = decay.DecaySettings(num_steps=100, window=(0.0, 1.0))
      >>> fig = plot_decay_mosaic(decay.decay_table(s, {"p=0": 0.0}))
      >>> fig.axes[0].get_title()
      'p=0'
    """
    import matplotlib.pyplot as plt  # lazy: the package never needs it to import

    n = len(table.traces)
    cols = min(4, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(3.2 * cols, 2.6 * rows), sharey=True, squeeze=False
    )
    axes = axes.ravel()
    window = table.settings.window
    for ax, (label, trace) in zip(axes, table.traces.items(), strict=False):
        t = np.asarray(trace.times)
        on_tau = table.rows[label].variable == "tau"
        x = np.asarray(trace.tau) if on_tau else t
        c = np.abs(np.asarray(trace.coeffs))
        for j, k in enumerate(table.modes):
            ax.plot(x, c[:, j] / c[0, j], label=f"k={k}")
        inside = (t >= window[0] - 1e-6) & (t <= window[1] + 1e-6)
        ax.axvspan(x[inside].min(), x[inside].max(), color="0.9", zorder=0)
        ax.set_yscale("log")
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("tau" if on_tau else "t", fontsize=8)
    for ax in axes[n:]:
        ax.axis("off")
    axes[0].legend(fontsize=7)
    fig.suptitle("shaded: regression window", fontsize=9)
    fig.supylabel(r"$|c_k| / |c_k(0)|$")
    fig.tight_layout()
    return fig


def figures(table: DecayTable) -> dict[str, Any]:
    """``{file name: figure}`` of one table, for ``--plots``."""
    return {
        "decay_lambda_vs_k.png": plot_lambda_vs_k(table),
        "decay_mosaic.png": plot_decay_mosaic(table),
    }
