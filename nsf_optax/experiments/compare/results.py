"""The comparison's result files: ``results.md``, ``.json``, ``.csv`` and
``comparison.png``, with the tuning's trial table or the note that the learning
rates were not tuned."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from nsf_optax.experiments.resnet.configs.default import Config
from nsf_optax.experiments.runner import summary
from nsf_optax.experiments.tuning import evidence, protocol

UNTUNED_NOTE = (
    "Learning rates not tuned: each method ran at the preset's rate (pass --tune "
    "to tune every method by the same search on held-out data)."
)


def tuning_text(tuned: dict[str, protocol.Tuned] | None) -> str:
    """The results' tuning paragraph: the trial table, or :data:`UNTUNED_NOTE`."""
    if tuned is None:
        return UNTUNED_NOTE
    edges = [f"{key} ({t.edge})" for key, t in tuned.items() if t.edge]
    flagged = f" At the grid's edge: {', '.join(edges)}." if edges else ""
    return (
        "Learning rates tuned on held-out data (cells: learning rate: mean final "
        "validation accuracy in % over the tuning seeds; bold: chosen; a choice "
        "at the grid's first or last point extends the grid beyond it, up to "
        "the search's limit; one still there is flagged)."
        f"{flagged}\n\n{protocol.markdown_trials(tuned)}"
    )


def write_results(
    base: Config,
    workdir: str,
    seeds: int,
    rows: list[dict[str, Any]],
    curves: dict[str, dict[str, np.ndarray]],
    tuned: dict[str, protocol.Tuned] | None,
    *,
    table: str,
    fields: Sequence[str],
    search: protocol.Search | None = None,
    note: dict[str, Any] | None = None,
) -> str:
    """Writes the results files; returns the markdown.

    Args:
      base: the shared configuration.
      workdir: the comparison's directory.
      seeds: final seeds per method.
      rows: the table rows (tuned: each gets its method's ``chosen``,
        ``trials``, ``grid``, ``edge`` and ``val_target``).
      curves: method -> its test curves, for the plot.
      tuned: method -> its tuning result; None when not tuned.
      table: the markdown table of ``rows``.
      fields: its columns (the CSV's).
      search: the search that tuned them (recorded in ``results.json``).
      note: :func:`~nsf_optax.experiments.tuning.evidence.assess`'s answer: its
        line heads ``results.md``, its keys go into ``results.json``.

    Returns:
      The text of ``results.md``.
    """
    import dataclasses

    from nsf_optax.experiments.compare import figures

    title = (
        f"{base.model} on {base.dataset}, {base.num_steps} steps, {seeds} seeds "
        "(mean ± sample std; Δ: paired by seed with its 95 % t interval)"
    )
    if tuned is not None:
        for row in rows:
            row.update(tuned[row["method"]].to_json())
    head = f"{evidence.line(note)}\n\n" if note else ""
    text = f"{head}{title}\n\n{table}\n\n{tuning_text(tuned)}\n"
    summary.write_summary(
        os.path.join(workdir, "results"),
        markdown=text,
        record={
            **(note or {}),
            "config": base.asdict(),
            "seeds": seeds,
            "tuned": tuned is not None,
            "search": None if search is None else dataclasses.asdict(search),
            "rows": rows,
        },
        fields=fields,
        rows=[r["table"] for r in rows],
    )
    figures.plot_comparison(
        curves, os.path.join(workdir, "comparison.png"), title=title
    )
    return text
