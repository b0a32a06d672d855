"""Figures for the spectral experiments (matplotlib is imported lazily)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from nsf_optax.experiments.bias.experiment import BiasResult
from nsf_optax.experiments.boundary.experiment import BoundaryResult
from nsf_optax.experiments.decay.experiment import PAPER_MODES, PAPER_TABLE, DecayTable
from nsf_optax.experiments.density.experiment import DensityResult, density_target
from nsf_optax.spectral._stats import mean_ci

__all__ = [
    "plot_accuracy_curves",
    "plot_bias_heatmaps",
    "plot_boundary_grid",
    "plot_decay_mosaic",
    "plot_density_panels",
    "plot_eq4_bridge",
    "plot_lambda_vs_k",
    "plot_time_to_learn",
]


def _plt():
    import matplotlib.pyplot as plt  # lazy: the package never needs it to import

    return plt


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
    plt = _plt()
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
    plt = _plt()
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


def plot_density_panels(result: DensityResult) -> Any:
    """Predictions at the checkpoints against the target, one panel per (p, s).

    Returns:
      The matplotlib figure.
    """
    plt = _plt()
    s = result.settings
    fig, axes = plt.subplots(
        len(s.ps),
        len(s.slopes),
        figsize=(3.2 * len(s.slopes), 2.2 * len(s.ps)),
        sharex=True,
        sharey=True,
        squeeze=False,
    )
    for i, p in enumerate(s.ps):
        for j, slope in enumerate(s.slopes):
            ax = axes[i, j]
            run = result.runs[(p, slope)]
            x = np.asarray(run.x)
            ax.plot(x, np.asarray(density_target(run.x)), "k--", lw=1)
            for c, snap in zip(s.checkpoints, np.asarray(run.snapshots), strict=True):
                ax.plot(x, snap, lw=1, label=f"n={c}")
            ax.axvspan(*s.region, color="0.9", zorder=0)
            ax.set_title(
                f"p={p:g}, s={slope:g}: fRMSE {result.final_frmse[(p, slope)]:.1e}",
                fontsize=8,
            )
    axes[0, 0].legend(fontsize=6)
    fig.supxlabel("x (shaded: fRMSE region)")
    fig.tight_layout()
    return fig


def plot_boundary_grid(result: BoundaryResult) -> Any:
    """Decision-boundary evolution: rows are p settings, columns checkpoints.

    Training points are coloured by class; the top 10 % per class by effective
    update norm are drawn with a black edge.

    Returns:
      The matplotlib figure.
    """
    plt = _plt()
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
    plt = _plt()
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


# ----------------------------------------------------------------------------
# Spectral bias of a ReLU MLP (nsf_optax.experiments.bias.experiment).


def plot_bias_heatmaps(result: BiasResult, *, max_columns: int = 400) -> Any:
    """Relative error over (step, k), seed mean, one panel per setting.

    Rows are the ``normalize`` variants, columns the p schedules; the colour is
    the seed mean of log10 relative error (seeds that diverged are left out),
    averaged over blocks of steps; the white line is the threshold.

    Args:
      result: a :class:`~nsf_optax.experiments.bias.experiment.BiasResult`.
      max_columns: step blocks drawn per panel.

    Returns:
      The matplotlib figure.
    """
    plt = _plt()
    s = result.settings
    schedules = list(dict.fromkeys(row.schedule for row in result.rows))
    norms = list(dict.fromkeys(row.normalize for row in result.rows))
    keys = {(row.schedule, row.normalize): row.key for row in result.rows}
    fig, axes = plt.subplots(
        len(norms),
        len(schedules),
        figsize=(2.3 * len(schedules), 2.3 * len(norms) + 0.6),
        sharex=True,
        sharey=True,
        squeeze=False,
    )
    stride = max(1, (s.num_steps + 1) // max_columns)
    blocks = (s.num_steps + 1) // stride
    steps = (np.arange(blocks) + 0.5) * stride
    k = np.asarray(s.freqs)
    image = None
    for i, norm in enumerate(norms):
        for j, label in enumerate(schedules):
            ax = axes[i, j]
            err = result.errors[keys[(label, norm)]][:, : blocks * stride]
            with np.errstate(divide="ignore", invalid="ignore"):
                log_err = np.log10(np.maximum(err, 1e-4))
            # Block means over steps, then the seed mean of log10 error (a
            # geometric mean; a diverged seed is left out).
            log_err = log_err.reshape(err.shape[0], blocks, stride, -1).mean(2)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                log_err = np.nanmean(log_err, axis=0).T
            image = ax.pcolormesh(
                steps, k, log_err, vmin=-2, vmax=0.3, cmap="viridis", shading="nearest"
            )
            ax.contour(
                steps,
                k,
                log_err,
                levels=[np.log10(s.threshold)],
                colors="w",
                linewidths=0.8,
            )
            ax.set_title(f"{label}" + ("" if norm is None else f", {norm}"), fontsize=8)
    fig.supxlabel("step")
    fig.supylabel("frequency k")
    assert image is not None  # at least one row and one normalize were drawn
    fig.colorbar(image, ax=axes, shrink=0.8, label="log10 relative error")
    return fig


def plot_time_to_learn(result: BiasResult) -> Any:
    """Time to learn each frequency against k, with 95 % intervals over seeds.

    One panel per ``normalize``; constant p solid (one colour per p), the tidal
    schedules dashed. The mean and interval are taken on log10 steps (a
    frequency never learned counts as ``num_steps``).

    Returns:
      The matplotlib figure.
    """
    plt = _plt()
    s = result.settings
    norms = list(dict.fromkeys(row.normalize for row in result.rows))
    fig, axes = plt.subplots(
        1, len(norms), figsize=(5.5 * len(norms), 4), sharey=True, squeeze=False
    )
    k = np.asarray(s.freqs)
    for ax, norm in zip(axes[0], norms, strict=True):
        rows = [row for row in result.rows if row.normalize == norm]
        for i, row in enumerate(rows):
            ttl = result.time_to_learn[row.key]
            logt = np.log10(np.maximum(np.where(np.isnan(ttl), s.num_steps, ttl), 1))
            m, h = mean_ci(logt, axis=0)
            style = "-" if row.description["kind"] == "constant" else "--"
            ax.plot(
                k, 10**m, style, marker="o", ms=3, color=f"C{i}", label=row.schedule
            )
            ax.fill_between(k, 10 ** (m - h), 10 ** (m + h), color=f"C{i}", alpha=0.15)
        ax.axhline(s.num_steps, color="0.5", lw=0.8, ls=":")
        ax.set_yscale("log")
        ax.set_xlabel("frequency k")
        ax.set_title(
            "normalize=" + ("None" if norm is None else repr(norm)), fontsize=9
        )
    axes[0, 0].set_ylabel(f"steps until relative error < {s.threshold:g}")
    axes[0, -1].legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_eq4_bridge(result: BiasResult) -> Any:
    """The paper's Eq. 4 bridge, measured: where each frequency's tangent lives.

    Left: the tangent-energy-weighted mean of log10 vhat per frequency; Eq. 4
    assumes it rises with k. Right: log10 of the energy-weighted mean gain per
    frequency, relative to the lowest frequency; Eq. 4 predicts a fall with k
    for p > 0 and a rise for p < 0. Constant-p runs without ``normalize``,
    averaged over probes and seeds.

    Returns:
      The matplotlib figure.
    """
    plt = _plt()
    s = result.settings
    k = np.asarray(s.freqs)
    fig, (ax_nu, ax_gain) = plt.subplots(1, 2, figsize=(11, 4))
    rows = [
        row
        for row in result.rows
        if row.normalize is None and row.description["kind"] == "constant"
    ]
    for i, row in enumerate(rows):
        nu = result.log_nu[row.key].mean(1)
        with np.errstate(divide="ignore", invalid="ignore"):
            gain = np.log10(result.kernel_gain[row.key] / result.kernel[row.key]).mean(
                1
            )
        gain = gain - gain[:, :1]
        for ax, data in ((ax_nu, nu), (ax_gain, gain)):
            m, h = mean_ci(data, axis=0)
            ax.plot(k, m, "o-", ms=3, color=f"C{i}", label=row.schedule)
            ax.fill_between(k, m - h, m + h, color=f"C{i}", alpha=0.15)
    ax_nu.set_ylabel("log10 vhat, weighted by the tangent energy |J_ki|^2")
    ax_gain.set_ylabel("log10 effective gain at k, minus at the lowest k")
    for ax in (ax_nu, ax_gain):
        ax.set_xlabel("frequency k")
    ax_gain.legend(fontsize=8)
    fig.tight_layout()
    return fig
