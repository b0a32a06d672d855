"""Tuning: every method tuned the same way on data held out from training.

* :mod:`.trials`: trains a list of trial configurations (:func:`.trials.run_trials`).
* :mod:`.protocol`: the search, the selection rule, the grid-edge check and the
  records that ``compare``, the landscape sweep and the budgets share.
"""
