"""The paper's boundary experiment (:mod:`.experiment`);
``python -m nsf_optax.experiments.boundary``."""
