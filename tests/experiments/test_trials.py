"""Trials: groups train as one population, equal to the trials one after another,
with one compiled step per group, and resume after an interruption."""

import dataclasses
import json
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nsf_optax.experiments.resnet import population, population_programs, train
from nsf_optax.experiments.resnet.configs import get_config
from nsf_optax.experiments.runner.errors import CheckpointError
from nsf_optax.experiments.tuning import trials

TINY = get_config("tiny")
SGD = dataclasses.replace(TINY, optimizer="sgd")
ADAM = dataclasses.replace(TINY, optimizer="adam")
NSF = dataclasses.replace(TINY, optimizer="nsf", p_schedule="constant")
# Per optimizer: two peak learning rates, two seeds, and for nsf two exponents.
CONFIGS = [
    dataclasses.replace(SGD, learning_rate=0.05, seed=0),
    dataclasses.replace(ADAM, learning_rate=1e-3, seed=0),
    dataclasses.replace(NSF, learning_rate=0.05, seed=1, p_value=0.5),
    dataclasses.replace(SGD, learning_rate=0.2, seed=1),
    dataclasses.replace(ADAM, learning_rate=3e-3, seed=1),
    dataclasses.replace(NSF, learning_rate=0.1, seed=0, p_value=-0.25),
    dataclasses.replace(TINY, optimizer="padam", seed=3),  # a group of one
]
VALUES = ("train_loss", "train_accuracy", "test_loss", "test_accuracy")


def _assert_same_history(got, want, rtol):
    assert [r["step"] for r in got] == [r["step"] for r in want]
    for a, b in zip(got, want, strict=True):
        assert a["p"] == b["p"] and a["epoch"] == b["epoch"]
        np.testing.assert_allclose(a["lr"], b["lr"], rtol=1e-6)
        for key in VALUES:
            np.testing.assert_allclose(a[key], b[key], rtol=rtol, err_msg=key)


def test_groups_are_the_configs_that_differ_in_lr_seed_and_p():
    assert trials.groups(CONFIGS) == [[0, 3], [1, 4], [2, 5], [6]]
    names = [d.rsplit("/", 1)[-1] for d in trials.run_dirs(CONFIGS, "w")]
    groups = ["group0", "group1", "group2"]
    assert names == [*groups, *groups, "trial6"]
    other_noise = dataclasses.replace(CONFIGS[3], label_noise=0.1)
    assert trials.groups([CONFIGS[0], other_noise]) == [[0], [1]]
    cosine = dataclasses.replace(TINY, optimizer="nsf", p_schedule="cosine_tidal")
    # Only a constant p is traced: another p schedule's parameters split groups.
    assert trials.groups([cosine, dataclasses.replace(cosine, seed=4)]) == [[0, 1]]


def test_named_trials_train_their_groups_next_to_their_first_trial():
    names = ["sgd/a", "adam/a", "nsf/a", "sgd/b", "adam/b", "nsf/b", "padam/a"]
    got = trials.run_dirs(CONFIGS, "w", names)
    assert got == [
        "w/sgd/group", "w/adam/group", "w/nsf/group",
        "w/sgd/group", "w/adam/group", "w/nsf/group",
        "w/padam/a",  # alone: a single run in its own directory
    ]  # fmt: skip
    with pytest.raises(ValueError, match="its own directory"):
        trials.run_dirs(CONFIGS[:2], "w", ["x", "x"])
    with pytest.raises(ValueError, match="its own directory"):
        trials.run_dirs(CONFIGS[:2], "w", ["x"])
    # The sgd and adam groups' first trials in one directory: refused.
    with pytest.raises(ValueError, match="two groups in one directory"):
        trials.run_dirs(CONFIGS[:2] + CONFIGS[3:5], "w", ["d/a", "d/b", "e/a", "e/b"])


def test_a_population_of_trials_refuses_configs_of_two_groups():
    data = train.load_training_set(TINY)
    with pytest.raises(ValueError, match="differ in more than lr, seed and p"):
        population.Population.of_trials(CONFIGS[:2], data, 1)  # sgd and adam


@pytest.fixture(scope="module")
def grouped(tmp_path_factory):
    """The trials through run_trials, counting the compiled single-run steps."""
    made = []
    original = population_programs.run_programs

    def counting(*args):
        made.append(original(*args))
        return made[-1]

    population_programs.run_programs = counting
    try:
        workdir = tmp_path_factory.mktemp("trials")
        histories = trials.run_trials(CONFIGS, workdir)
    finally:
        population_programs.run_programs = original
    return workdir, histories, made


def test_trials_equal_the_runs_one_after_another(grouped, tmp_path):
    """sgd, adam (optax.adamw) and nsf with traced lr and p: every history value
    within rtol 1e-5 of the single run, the float32 rounding the traced peak
    times the schedule's shape (and the traced p's power) may bring; measured
    bit for bit equal on this CPU. The group of one is the single run itself."""
    _, histories, _ = grouped
    assert len(histories) == len(CONFIGS)
    for index, config in enumerate(CONFIGS):
        single = train.train_and_evaluate(config, tmp_path / f"single{index}")
        assert len(single.history) == 2  # evaluations at steps 3 and 6
        rtol = 0.0 if index == 6 else 1e-5
        _assert_same_history(histories[index], single.history, rtol)


def test_one_compiled_step_per_group(grouped):
    workdir, _, made = grouped
    assert len(made) == 3  # the three groups of several trials
    assert len({id(m) for m in made}) == 3  # sgd, adam, nsf: three programs
    for programs in made:
        assert programs.step._cache_size() == 1  # every lr, seed and p
        assert programs.evaluate._cache_size() == 1
    with open(workdir / "group2" / "population.json") as f:
        described = json.load(f)["trials"]
    assert [(t["trial"], t["learning_rate"], t["seed"]) for t in described] == [
        (2, 0.05, 1),
        (5, 0.1, 0),
    ]
    assert [t["p_value"] for t in described] == [0.5, -0.25]
    with open(workdir / "trial5" / "metrics.json") as f:
        assert json.load(f)[-1]["p"] == -0.25
    assert (workdir / "trial6" / "checkpoints").is_dir()  # the single run


def test_an_interrupted_tuning_run_resumes_bit_for_bit(grouped, tmp_path, monkeypatch):
    _, uninterrupted, _ = grouped
    configs = CONFIGS[:2] + CONFIGS[3:5]  # the sgd and adam groups
    partial = trials.run_trials(configs, tmp_path, max_steps_this_run=4)
    assert [len(h) for h in partial] == [1, 1, 1, 1]  # evaluated at step 3 only
    with pytest.raises(CheckpointError, match="resume"):  # before any training
        trials.run_trials(configs, tmp_path)
    resumed = trials.run_trials(configs, tmp_path, resume=True)
    for got, index in zip(resumed, (0, 1, 3, 4), strict=True):
        want = uninterrupted[index]
        for a, b in zip(got, want, strict=True):
            assert {k: a[k] for k in VALUES} == {k: b[k] for k in VALUES}

    def refuse(self, step):
        raise AssertionError("a finished group trained again")

    monkeypatch.setattr(population.Population, "train_step", refuse)
    again = trials.run_trials(configs, tmp_path, resume=True)
    assert again == resumed


def test_run_trials_refuses_a_bad_max_steps(tmp_path):
    with pytest.raises(ValueError, match="max_steps_this_run"):
        trials.run_trials(CONFIGS[:1], tmp_path, max_steps_this_run=0)


def _three_steps(pop):
    pop.place()
    for step in range(3):
        pop.train_step(step)
    return pop.evaluate(3)


@pytest.mark.slow  # vmapped convolutions on CPU: 2 minutes each, loaded 2 cores
@pytest.mark.parametrize("optimizer", ["sgd", "nsf"])
def test_stacked_runs_equal_separate_runs(optimizer):
    """The programs of stacked runs (``map_batch_size`` 2: ``lax.map`` over pairs
    of vmapped runs, as on several devices or an accelerator) with lr (and p)
    traced give the separate runs' evaluations to float32 rounding."""
    configs = [c for c in CONFIGS if c.optimizer == optimizer]
    data = train.load_training_set(configs[0])
    separate = population.Population.of_trials(configs, data, 1)
    stacked = population.Population.of_trials(configs, data, 2)
    assert stacked.separate is None and stacked.map_batch_size == 2
    want, got = _three_steps(separate), _three_steps(stacked)
    assert separate.separate is not None
    for a, b in zip(got, want, strict=True):
        assert a["lr"] == b["lr"] and a["p"] == b["p"]
        for key in VALUES:
            np.testing.assert_allclose(a[key], b[key], rtol=1e-5, err_msg=key)
    hyper = stacked.items()["optimizer"]["opt_state"]["hyperparams"]
    np.testing.assert_allclose(
        np.asarray(hyper["learning_rate"][...]),
        [c.peak_learning_rate for c in configs],
        rtol=1e-7,
    )


def test_runs_are_evaluated_with_the_evaluation_params(monkeypatch):
    """A population evaluates ``optimizers.evaluation_params`` of each run: with
    every parameter zeroed there, the logits are 0 and the test loss is ln 10."""
    from nsf_optax.experiments.resnet import optimizers

    def zeros(config, params, opt_state):
        return jax.tree.map(jnp.zeros_like, params)

    monkeypatch.setattr(optimizers, "evaluation_params", zeros)
    population_programs.run_programs.cache_clear()  # traced afresh, patched
    try:
        data = train.load_training_set(CONFIGS[0])
        rows = _three_steps(population.Population.of_trials(CONFIGS[0:4:3], data, 1))
    finally:
        population_programs.run_programs.cache_clear()
    for row in rows:
        np.testing.assert_allclose(row["test_loss"], np.log(10), rtol=1e-6)
        assert row["train_loss"] != pytest.approx(np.log(10), rel=1e-6)


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "padam", "nsf"])
def test_an_injected_learning_rate_is_the_schedule_at_that_peak(optimizer):
    """create_optimizer(inject_learning_rate=True): the state carries the peak;
    three updates equal the usual optimizer's to float32 rounding (rtol 1e-6)."""
    from nsf_optax.experiments.resnet import optimizers

    config = dataclasses.replace(TINY, optimizer=optimizer, learning_rate=0.3)
    if optimizer == "nsf":
        config = dataclasses.replace(config, p_schedule="constant", p_value=0.25)
    usual = optimizers.create_optimizer(config)
    injected = optimizers.create_optimizer(
        config, inject_learning_rate=True, inject_p=optimizer == "nsf"
    )
    params = {"w": jnp.linspace(-1.0, 1.0, 12).reshape(3, 4), "b": jnp.ones(4)}
    states: list[Any] = [usual.init(params), injected.init(params)]
    hyper = states[1].hyperparams
    assert float(hyper["learning_rate"]) == pytest.approx(0.3, rel=1e-7)
    assert ("p" in hyper) == (optimizer == "nsf")
    updates: list[Any] = [None, None]
    for step in range(3):
        grads = jax.tree.map(lambda x, s=step: jnp.cos(x * (s + 1)), params)
        for k, tx in enumerate((usual, injected)):
            updates[k], states[k] = tx.update(grads, states[k], params)
        for a, b in zip(*map(jax.tree.leaves, updates[::-1]), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)
    assert np.abs(np.asarray(updates[0]["w"])).max() > 1e-4  # past the warmup's 0


@pytest.mark.parametrize("optimizer", ["schedule-free-adamw", "lion"])
def test_peers_train_as_a_population_like_their_single_runs(optimizer, tmp_path):
    """A population wraps the optimizer in inject_hyperparams: the peers whose
    state the examples read (schedule-free's average x, evaluated) or whose
    history has no exponent (p NaN) still give their single runs' histories."""
    configs = [
        dataclasses.replace(TINY, optimizer=optimizer, learning_rate=lr, seed=seed)
        for lr, seed in ((1e-3, 0), (3e-4, 1))
    ]
    histories = trials.run_trials(configs, tmp_path / "group")
    assert trials.groups(configs) == [[0, 1]]
    for index, config in enumerate(configs):
        single = train.train_and_evaluate(config, tmp_path / f"single{index}").history
        for a, b in zip(histories[index], single, strict=True):
            assert np.isnan(a["p"]) and np.isnan(b["p"])
            for key in VALUES:
                np.testing.assert_allclose(a[key], b[key], rtol=1e-5, err_msg=key)
