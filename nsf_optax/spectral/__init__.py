"""The paper's spectral analysis tools and low-dimensional experiments.

Imported explicitly (``import nsf_optax.spectral``); ``import nsf_optax`` does not
load it. Plotting helpers import matplotlib lazily.
"""

from nsf_optax.spectral.alignment import (
    AlignmentReport,
    early_alignment,
    first_step_reaching,
)

__all__ = [
    "AlignmentReport",
    "early_alignment",
    "first_step_reaching",
]
