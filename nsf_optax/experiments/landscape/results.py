"""The p-landscape's outputs: the rows of ``results.json``, the title, and
:func:`write_results` (``results.json``/``.csv``/``.md``, ``verdicts.json``,
``landscape.png``), shared by the sweep (:mod:`.sweep`) and its tuned form
(:mod:`.tuned`)."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from nsf_optax.experiments.resnet.configs.default import (
    Config,
    check_field,
    field_types,
)
from nsf_optax.experiments.runner import summary, workdirs
from nsf_optax.experiments.runner.errors import ConfigError
from nsf_optax.experiments.tuning import evidence

if TYPE_CHECKING:
    from nsf_optax.experiments.tuning.protocol import Tuned

RESULT_FIELDS = (
    "p",
    "seed",
    "label_noise",
    "learning_rate",
    "final_test_accuracy",
    "final_test_loss",
    "final_train_loss",
    "final_train_accuracy",
)


def check_values(ps: Sequence[float], seeds: int, label_noise: Sequence[float]) -> None:
    """Refuses repeated or non-finite p values, repeated or out-of-range noise
    levels and a seed count that is not a positive integer (``ConfigError``)."""
    if not ps or len(set(ps)) != len(ps):
        raise ConfigError(f"p values must be distinct, got {list(ps)}.", ("p",))
    if not label_noise or len(set(label_noise)) != len(label_noise):
        raise ConfigError(
            f"label_noise values must be distinct, got {list(label_noise)}.",
            ("label_noise",),
        )
    for p in ps:
        if not math.isfinite(p):
            raise ConfigError(f"Every p must be finite, got {p!r}.", ("p",))
    for noise in label_noise:
        check_field("label_noise", field_types()["label_noise"], noise)
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ConfigError(f"seeds must be a positive integer, got {seeds!r}.")


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def result_row(
    p: float, seed: int, noise: float, lr: float, last: Mapping[str, float]
) -> dict[str, Any]:
    """One run's row of ``results.json`` from its last evaluation ``last``."""
    return {
        "p": p,
        "seed": seed,
        "label_noise": noise,
        "learning_rate": lr,
        "final_test_accuracy": last["test_accuracy"],
        "final_test_loss": _finite(last["test_loss"]),
        "final_train_loss": _finite(last["train_loss"]),
        "final_train_accuracy": last["train_accuracy"],
    }


def title(config: Config, seeds: int, *, tuned: bool = False) -> str:
    """The sweep's one-line description (table header and figure title).

    Examples:
      >>> from nsf_optax.experiments.resnet.configs import get_config
      >>> title(get_config("digits"), seeds=5)  # doctest: +ELLIPSIS
      'resnet20 on digits, nsf/sgd, normalize=rms, lr 0.1, ..., 1000 steps, 5 seeds'
      >>> title(get_config("digits"), seeds=5, tuned=True)  # doctest: +ELLIPSIS
      '..., lr tuned per p and noise level, batch 128, ...'
    """
    lr = "tuned per p and noise level" if tuned else f"{config.peak_learning_rate:g}"
    width = f", width {config.num_filters}" if config.num_filters else ""
    subset = f" ({config.train_size} train)" if config.train_size else ""
    return (
        f"{config.model}{width} on {config.dataset}{subset}, nsf/{config.nsf_flavour}, "
        f"normalize={config.normalize}, lr {lr}, "
        f"batch {config.batch_size}, {config.num_steps} steps, {seeds} seeds"
    )


def write_results(
    rows: Sequence[dict[str, Any]],
    workdir: str | os.PathLike,
    *,
    config: Config,
    note: dict[str, Any] | None = None,
    tuned: Mapping[str, Tuned] | None = None,
) -> None:
    """Writes ``results.json``, ``results.csv``, ``results.md``,
    ``verdicts.json`` and ``landscape.png`` for the runs ``rows`` of a sweep
    with ``config``.

    Args:
      rows: the runs (see :data:`RESULT_FIELDS`).
      workdir: where to write.
      config: the sweep's shared config (the title).
      note: :func:`~nsf_optax.experiments.tuning.evidence.assess`'s answer,
        printed at the top of ``results.md`` and recorded in ``verdicts.json``
        (with the table, the per-level verdicts and, with two or more noise
        levels, :func:`.stats.best_p_trend`); None leaves both out.
      tuned: with ``--tune``, key -> tuning result (see :mod:`.tuned`):
        recorded in ``verdicts.json`` (``tuning``) and tabled in ``results.md``.
    """
    from nsf_optax.experiments.landscape import figures
    from nsf_optax.experiments.landscape import stats as landscape

    workdir = os.fspath(workdir)
    table, verdicts = landscape.summarize(rows)
    levels = {r["label_noise"] for r in rows}
    trend = landscape.best_p_trend(rows) if len(levels) > 1 else None
    seeds = len({r["seed"] for r in rows})
    head = title(config, seeds, tuned=tuned is not None)
    body = landscape.markdown(table, verdicts, flavour=config.nsf_flavour, trend=trend)
    record = {**(note or {}), "verdicts": verdicts, "trend": trend, "table": table}
    if tuned is not None:
        record["tuning"] = {k: t.to_json() for k, t in tuned.items()}
        body += "\n\n## Tuning\n\n" + markdown_tuning(tuned, sorted(levels))
    workdirs.write_text(
        os.path.join(workdir, "verdicts.json"),
        json.dumps(summary.strict_json(record), indent=1, allow_nan=False),
    )
    evidence_line = f"{evidence.line(note)}\n\n" if note else ""
    summary.write_summary(
        os.path.join(workdir, "results"),
        markdown=f"# p-landscape: {head}\n\n{evidence_line}Final test accuracy, "
        "mean ± 95 % t-interval over seeds; differences are paired by seed.\n\n"
        + body
        + "\n",
        record=list(rows),
        fields=RESULT_FIELDS,
        rows=rows,
    )
    figures.plot_landscape(
        table,
        os.path.join(workdir, "landscape.png"),
        title=head,
        flavour=config.nsf_flavour,
    )


def markdown_tuning(tuned: Mapping[str, Tuned], label_noise: Sequence[float]) -> str:
    """The trial tables of a tuned sweep, one per noise level (columns: p).

    Args:
      tuned: key (:func:`key`) -> its tuning result.
      label_noise: the noise levels.

    Returns:
      Markdown: per level a heading and :func:`.protocol.markdown_trials` of its
      keys, the columns named by p.
    """
    from nsf_optax.experiments.tuning import protocol

    out = []
    for noise in label_noise:
        suffix = f"@noise={noise:g}"
        level = {
            k.removesuffix(suffix): t for k, t in tuned.items() if k.endswith(suffix)
        }
        out.append(f"### tuning at label noise {noise:g}\n")
        out.append(protocol.markdown_trials(level) + "\n")
    return "\n".join(out)
