"""The paper's 1-D spectral decay table (Sec. 4.1.2): run it, report it.

Usage::

  python -m nsf_optax.experiments.decay              # the table and the verdicts
  python -m nsf_optax.experiments.decay --readings   # + the text's other readings
  python -m nsf_optax.experiments.decay --search --robustness  # + verdicts over
  settings
  python -m nsf_optax.experiments.decay --t_fit      # the earlier table, all on t
  python -m nsf_optax.experiments.decay --json       # everything as JSON
  python -m nsf_optax.experiments.decay --quick      # a smoke test

This module is the experiment's public face. The settings live in
:mod:`~nsf_optax.experiments.decay.settings`, the model (the error ODE and the
fit) in :mod:`~nsf_optax.experiments.decay.model`, the table and its comparison
with the paper in :mod:`~nsf_optax.experiments.decay.table`, the verdicts in
:mod:`~nsf_optax.experiments.decay.verdicts`, the settings search and the
verdicts over its settings in :mod:`~nsf_optax.experiments.decay.search`, the
robustness band in :mod:`~nsf_optax.experiments.decay.band`, the figures in
:mod:`~nsf_optax.experiments.decay.figures`, the command line's run and report
in :mod:`~nsf_optax.experiments.decay.command`.
"""

import argparse
from collections.abc import Sequence

from nsf_optax.experiments import report
from nsf_optax.experiments.decay import command
from nsf_optax.experiments.decay.band import BAND_FIELDS, robustness_band
from nsf_optax.experiments.decay.command import DecayOptions, DecayReport, run_options
from nsf_optax.experiments.decay.model import (
    DecayFit,
    DecayTrace,
    fit_decay,
    simulate_decay,
)
from nsf_optax.experiments.decay.search import (
    FIT_MAX_ABS_DIFF,
    SEARCH_GRID,
    TOP_FRACTION,
    DecaySearch,
    refine_settings,
    search_settings,
)
from nsf_optax.experiments.decay.settings import (
    PAPER_MODES,
    T_FIT_SETTINGS,
    DecaySettings,
)
from nsf_optax.experiments.decay.table import (
    PAPER_TABLE,
    DecayRow,
    DecayTable,
    compare_with_paper,
    decay_table,
    default_rows,
    format_table,
    readings,
)
from nsf_optax.experiments.decay.verdicts import spectral_trend, verdicts

__all__ = [
    "BAND_FIELDS",
    "EXPERIMENT",
    "FIT_MAX_ABS_DIFF",
    "PAPER_MODES",
    "PAPER_TABLE",
    "SEARCH_GRID",
    "TOP_FRACTION",
    "T_FIT_SETTINGS",
    "DecayFit",
    "DecayOptions",
    "DecayReport",
    "DecayRow",
    "DecaySearch",
    "DecaySettings",
    "DecayTable",
    "DecayTrace",
    "compare_with_paper",
    "decay_table",
    "default_rows",
    "fit_decay",
    "format_table",
    "main",
    "parse_settings",
    "readings",
    "refine_settings",
    "robustness_band",
    "run_options",
    "search_settings",
    "simulate_decay",
    "spectral_trend",
    "verdicts",
]

EXPERIMENT = command.EXPERIMENT


def _parser() -> argparse.ArgumentParser:
    return report.parser(EXPERIMENT)


def parse_settings(args: argparse.Namespace) -> DecaySettings:
    """Builds :class:`DecaySettings` from parsed command-line arguments.

    Options left unset keep the defaults (``T_FIT_SETTINGS``' with ``--t_fit``;
    with ``--quick``, a shorter horizon and window).

    Examples:
      >>> parse_settings(_parser().parse_args(["--eps", "0.5"])).eps
      0.5
      >>> parse_settings(_parser().parse_args(["--t_fit"])).regression
      't'
    """
    return command.protocol(args)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit status.

    Examples:
      >>> main(["--num_steps", "200", "--window", "0", "1", "--json"])
      ... # doctest: +ELLIPSIS
      {...}
      0
    """
    return report.main(EXPERIMENT, argv)
