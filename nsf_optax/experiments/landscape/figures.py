"""The p-landscape's figure: final accuracy against p per label-noise level
(matplotlib, no display needed)."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from nsf_optax.experiments.landscape.stats import endpoint


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
