"""The p-landscape: final accuracy against p under label noise (:mod:`.sweep`, its
statistics in :mod:`.stats`); ``python -m nsf_optax.experiments.landscape``."""
