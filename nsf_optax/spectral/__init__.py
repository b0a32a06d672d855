"""The paper's spectral analysis tools and low-dimensional experiments.

Imported explicitly (``import nsf_optax.spectral``); ``import nsf_optax`` does not
load it. Plotting helpers import matplotlib lazily.
"""

from nsf_optax.spectral._decay import (
    PAPER_MODES,
    PAPER_TABLE,
    SEARCH_GRID,
    DecayFit,
    DecaySettings,
    DecayTable,
    DecayTrace,
    compare_with_paper,
    decay_table,
    default_rows,
    fit_decay,
    format_table,
    robustness,
    search_settings,
    simulate_decay,
    spectral_trend,
    verdicts,
)
from nsf_optax.spectral._density import (
    DensityResult,
    DensityRun,
    DensitySettings,
    density,
    density_demo,
    density_target,
    eq14_prediction,
    simulate_density,
)
from nsf_optax.spectral.alignment import (
    AlignmentReport,
    early_alignment,
    first_step_reaching,
)

__all__ = [
    "PAPER_MODES",
    "PAPER_TABLE",
    "SEARCH_GRID",
    "AlignmentReport",
    "DecayFit",
    "DecaySettings",
    "DecayTable",
    "DecayTrace",
    "DensityResult",
    "DensityRun",
    "DensitySettings",
    "compare_with_paper",
    "decay_table",
    "default_rows",
    "density",
    "density_demo",
    "density_target",
    "early_alignment",
    "eq14_prediction",
    "first_step_reaching",
    "fit_decay",
    "format_table",
    "robustness",
    "search_settings",
    "simulate_decay",
    "simulate_density",
    "spectral_trend",
    "verdicts",
]
