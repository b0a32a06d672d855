"""Moved to :mod:`nsf_optax.experiments`; the old commands forward for one release.

``python -m nsf_optax.examples`` runs ``python -m nsf_optax.experiments.resnet``,
``python -m nsf_optax.examples.compare`` runs ``... experiments.compare`` and
``python -m nsf_optax.examples.sweep`` runs ``... experiments.landscape``, each
after a one-line notice.
"""

__all__: list[str] = []
