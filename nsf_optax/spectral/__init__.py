"""Spectral diagnostics for NSF: the reusable library.

What other code imports to measure an optimizer: alignment between two training
runs (:func:`early_alignment`), the error of a fit per frequency band
(:func:`frequency_error`, :func:`time_to_learn`) and confidence intervals over
seeds (:func:`mean_ci`) with the smallest difference a design can detect
(:func:`detectable_difference`). It is imported explicitly
(``import nsf_optax.spectral``); ``import nsf_optax`` does not load it, and it
imports nothing from the experiments.
"""

from nsf_optax.spectral._frequency import frequency_error, time_to_learn
from nsf_optax.spectral._stats import detectable_difference, mean_ci
from nsf_optax.spectral.alignment import (
    AlignmentReport,
    early_alignment,
    first_step_reaching,
)

__all__ = [
    "AlignmentReport",
    "detectable_difference",
    "early_alignment",
    "first_step_reaching",
    "frequency_error",
    "mean_ci",
    "time_to_learn",
]
