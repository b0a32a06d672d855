"""The density demo's figures (matplotlib is imported lazily)."""

from typing import Any

import numpy as np

from nsf_optax.experiments.density.model import density_target
from nsf_optax.experiments.density.settings import DensityResult

__all__ = ["figures", "plot_density_panels"]


def plot_density_panels(result: DensityResult) -> Any:
    """Predictions at the checkpoints against the target, one panel per (p, s).

    Returns:
      The matplotlib figure.
    """
    import matplotlib.pyplot as plt  # lazy: the package never needs it to import

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


def figures(result: DensityResult) -> dict[str, Any]:
    """``{file name: figure}`` for ``--plots``."""
    return {"density_panels.png": plot_density_panels(result)}
