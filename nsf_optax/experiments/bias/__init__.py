"""The paper's bias experiment (:mod:`.experiment`);
``python -m nsf_optax.experiments.bias``."""
