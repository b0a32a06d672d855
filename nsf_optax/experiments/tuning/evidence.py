"""Whether a training command's results are evidence: :func:`assess`.

A run is a smoke test, not evidence, when it uses the test-only ``tiny`` preset,
fewer than :data:`MIN_SEEDS` final seeds (too few for a paired interval that can
detect anything but large differences), learning rates that were not tuned by
:mod:`.protocol` (a method or p at someone else's learning rate is compared at a
handicap), or a quick size. The commands print :func:`line` and record
:func:`assess`'s answer in their JSON outputs.

Plain Python (no jax): the commands may call it before anything trains.
"""

from __future__ import annotations

from typing import Any

MIN_SEEDS = 5
SMOKE_PRESETS = ("tiny",)


def assess(*, preset: str, seeds: int, tuned: bool, quick: bool = False) -> dict:
    """Whether results of this design are evidence, and if not, why.

    Args:
      preset: the config preset the run started from (``"tiny"`` is for tests).
      seeds: the number of final seeds per method or p, an integer >= 1.
      tuned: whether the learning rates were tuned per method (or p, or budget)
        by the tuning protocol on a validation split.
      quick: whether the command ran at its quick (smoke-test) size.

    Returns:
      ``{"evidence": bool, "not_evidence_because": [reasons]}``; the reasons are
      short phrases, empty exactly when ``evidence`` is true.

    Raises:
      ValueError: for ``seeds`` not a positive integer.

    Examples:
      >>> assess(preset="mnist1d", seeds=5, tuned=True)
      {'evidence': True, 'not_evidence_because': []}
      >>> assess(preset="tiny", seeds=5, tuned=False)["not_evidence_because"]
      ['the tiny preset (for tests)', 'learning rates not tuned']
    """
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"seeds must be a positive integer, got {seeds!r}.")
    reasons = []
    if preset in SMOKE_PRESETS:
        reasons.append(f"the {preset} preset (for tests)")
    if seeds < MIN_SEEDS:
        noun = "seed" if seeds == 1 else "seeds"
        reasons.append(f"{seeds} final {noun} (fewer than {MIN_SEEDS})")
    if not tuned:
        reasons.append("learning rates not tuned")
    if quick:
        reasons.append("a quick size")
    return {"evidence": not reasons, "not_evidence_because": reasons}


def line(assessment: dict[str, Any]) -> str:
    """The one line a command prints about :func:`assess`'s answer.

    Args:
      assessment: :func:`assess`'s answer.

    Returns:
      ``"evidence: yes (...)"`` or ``"NOT EVIDENCE (a smoke test): <reasons>"``.

    Examples:
      >>> line(assess(preset="mnist1d", seeds=3, tuned=True))
      'NOT EVIDENCE (a smoke test): 3 final seeds (fewer than 5)'
    """
    if assessment["evidence"]:
        return "evidence: yes (tuned learning rates, enough seeds, a full preset)"
    return "NOT EVIDENCE (a smoke test): " + "; ".join(
        assessment["not_evidence_because"]
    )
