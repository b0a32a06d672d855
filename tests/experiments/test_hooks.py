"""The cadence hooks of the training loop, on a stand-in for the runs."""

import signal
from typing import Any

import pytest

from nsf_optax.experiments.runner import hooks, loop, preemption


class _Runs:
    def __init__(self):
        self.trained = []

    def train_step(self, step):
        self.trained.append(step)
        return float(step)

    def evaluate(self, step):
        return [{"value": step}]

    def items(self):
        return {"step": len(self.trained)}

    def postfix(self, step, loss):
        return {"loss": str(loss)}


class _Checkpoints:
    def __init__(self):
        self.saved = []

    def save(self, step, items, meta):
        self.saved.append((step, items, meta))


class _Stop:
    def __init__(self, at):
        self.at = at
        self.step = 0

    def agreed(self):
        self.step += 1
        return signal.SIGTERM if self.step == self.at else None


# The stand-ins are typed Any: they are not the real runs, checkpoints or signals.
def _runs() -> Any:
    return _Runs()


def _ckpts() -> Any:
    return _Checkpoints()


def _stop(at: int) -> Any:
    return _Stop(at)


def test_periodic_action_acts_every_n_steps_and_at_named_steps():
    acted = []

    class Record(hooks.PeriodicAction):
        def _apply(self, step, loss):
            acted.append(step)

    record = Record(3, at=(7,))
    assert loop.train_loop(_runs(), [record], step=0, last=7) == 7
    assert acted == [3, 6, 7]
    assert record.last_step == 7
    acted.clear()
    loop.train_loop(_runs(), [Record(0)], step=0, last=5)  # 0: never
    assert acted == []


def test_evaluations_and_checkpoints_follow_their_periods():
    runs, ckpts, histories = _runs(), _ckpts(), [[]]
    evaluate = hooks.EvaluateEvery(4, runs, histories, num_steps=10, steps_per_epoch=5)
    checkpoint = hooks.CheckpointEvery(3, ckpts, runs, lambda s: {"s": s}, last=8)
    loop.train_loop(runs, [evaluate, checkpoint], step=2, last=8)
    assert runs.trained == [2, 3, 4, 5, 6, 7]
    assert [(r["step"], r["epoch"], r["value"]) for r in histories[0]] == [
        (4, 0.8, 4),
        (8, 1.6, 8),
    ]
    assert [s for s, _, _ in ckpts.saved] == [3, 6, 8]  # every 3, and the last


def test_a_signal_stops_after_its_step_with_one_checkpoint():
    runs, ckpts = _runs(), _ckpts()
    checkpoint = hooks.CheckpointEvery(2, ckpts, runs, lambda s: {}, last=10)
    stop = hooks.StopOnPreemption(_stop(at=2), checkpoint)  # after step 2
    with pytest.raises(preemption.Preempted):
        loop.train_loop(runs, [checkpoint, stop], step=0, last=10)
    assert [s for s, _, _ in ckpts.saved] == [2]  # the periodic one, not twice
    ckpts.saved.clear()
    stop = hooks.StopOnPreemption(_stop(at=3), checkpoint)  # after step 3
    with pytest.raises(preemption.Preempted):
        loop.train_loop(runs, [checkpoint, stop], step=0, last=10)
    assert [s for s, _, _ in ckpts.saved] == [2, 3]
