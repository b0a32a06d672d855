"""The spectral-bias experiment's figures (matplotlib is imported lazily)."""

import warnings
from typing import Any

import numpy as np

from nsf_optax.experiments.bias.settings import BiasResult
from nsf_optax.spectral._stats import mean_ci

__all__ = ["figures", "plot_bias_heatmaps", "plot_eq4_bridge", "plot_time_to_learn"]


def plot_bias_heatmaps(result: BiasResult, *, max_columns: int = 400) -> Any:
    """Relative error over (step, k), seed mean, one panel per setting.

    Rows are the ``normalize`` variants, columns the p schedules; the colour is
    the seed mean of log10 relative error (seeds that diverged are left out),
    averaged over blocks of steps; the white line is the threshold.

    Args:
      result: a :class:`~nsf_optax.experiments.bias.settings.BiasResult`.
      max_columns: step blocks drawn per panel.

    Returns:
      The matplotlib figure.
    """
    import matplotlib.pyplot as plt  # lazy: the package never needs it to import

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
    import matplotlib.pyplot as plt  # lazy: the package never needs it to import

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
    import matplotlib.pyplot as plt  # lazy: the package never needs it to import

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


def figures(result: BiasResult) -> dict[str, Any]:
    """``{file name: figure}`` for ``--plots``."""
    return {
        "bias_heatmaps.png": plot_bias_heatmaps(result),
        "bias_time_to_learn.png": plot_time_to_learn(result),
        "bias_eq4.png": plot_eq4_bridge(result),
    }
