"""The training loop that one run and a population of runs share.

:func:`train_loop` steps a :class:`~.hooks.Runs` (one run, :mod:`.train`, data
parallel over a ``"data"`` mesh axis, or a population, :mod:`.population`, the runs
sharded over a ``"pop"`` mesh axis) and after every step calls its hooks
(:mod:`.hooks`): progress, evaluation, checkpoints and the preemption check each
decide themselves when to act. :mod:`.lifecycle` builds the hooks and the loop's
surroundings (lock, resume, final checkpoint).
"""

from __future__ import annotations

from collections.abc import Sequence

from nsf_optax.experiments.runner.hooks import Hook, Runs


def train_loop(runs: Runs, hooks: Sequence[Hook], *, step: int, last: int) -> int:
    """Trains ``runs`` from ``step`` to ``last``, calling ``hooks`` after each step.

    Args:
      runs: what to train.
      hooks: called in order after every step with the number of steps done and
        the step's loss (see :mod:`.hooks`).
      step: the number of steps already done.
      last: stop after this step.

    Returns:
      The number of steps done (``last``).

    Raises:
      Whatever a hook raises, e.g. ``Preempted``.
    """
    while step < last:
        loss = runs.train_step(step)
        step += 1
        for hook in hooks:
            hook(step, loss)
    return step
