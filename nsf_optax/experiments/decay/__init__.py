"""The paper's decay experiment (:mod:`.experiment`);
``python -m nsf_optax.experiments.decay``."""
