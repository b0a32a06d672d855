"""Methods compared over seeds and step budgets (:mod:`.compare`, :mod:`.budgets`);
``python -m nsf_optax.experiments.compare``."""
