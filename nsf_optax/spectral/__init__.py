"""Spectral diagnostics for NSF, and the paper's low-dimensional experiments.

The package itself is the reusable library: what other code imports to measure an
optimizer (alignment between two training runs, confidence intervals over seeds).
It is imported explicitly (``import nsf_optax.spectral``); ``import nsf_optax`` does
not load it.

The paper's experiments are modules of their own, each with a command line, and
are not imported by the library:

* :mod:`nsf_optax.spectral.decay`: the 1-D spectral decay table (Sec. 4.1),
  ``python -m nsf_optax.spectral.decay``;
* :mod:`nsf_optax.spectral.density`: the 1-D density demo (Sec. 4.2.1),
  ``python -m nsf_optax.spectral.density``;
* :mod:`nsf_optax.spectral.boundary`: the 2-D decision-boundary demo (Sec. 4.2.2),
  ``python -m nsf_optax.spectral.boundary``;
* :mod:`nsf_optax.spectral.bias`: does ``p`` steer a ReLU MLP's spectral bias
  (Rahaman et al.'s setting, the paper's Sec. 3.2 thesis),
  ``python -m nsf_optax.spectral.bias``;
* :mod:`nsf_optax.spectral.plots`: their figures (needs matplotlib).
"""

from nsf_optax.spectral._frequency import frequency_error, time_to_learn
from nsf_optax.spectral._stats import mean_ci
from nsf_optax.spectral.alignment import (
    AlignmentReport,
    early_alignment,
    first_step_reaching,
)

__all__ = [
    "AlignmentReport",
    "early_alignment",
    "first_step_reaching",
    "frequency_error",
    "mean_ci",
    "time_to_learn",
]
