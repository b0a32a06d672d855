"""The paper's density experiment (:mod:`.experiment`);
``python -m nsf_optax.experiments.density``."""
