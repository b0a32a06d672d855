"""The baselines and peers a user would pick instead of NSF: each is its optax twin,
trains through compare, and is evaluated the way it is meant to be."""

import dataclasses
import json
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from nsf_optax.experiments.compare import command
from nsf_optax.experiments.resnet import (
    configs,
    evaluation,
    methods,
    optimizers,
    step_swing,
)
from nsf_optax.experiments.resnet import train as train_lib

TINY = configs.get_config("tiny")
PEERS = ("sgd-nesterov", "adam", "adamw", "lion", "schedule-free-adamw")


def _twin(config: optimizers.Config) -> optax.GradientTransformation:
    """The optax optimizer each name stands for, written out from optax's parts."""
    lr = optimizers.create_learning_rate_schedule(config)
    decay = optax.add_decayed_weights(config.weight_decay, mask=optimizers.decay_mask)
    b1, b2, eps = config.momentum, config.b2, config.eps
    twins = {
        "sgd-nesterov": lambda: optax.chain(
            decay, optax.sgd(lr, momentum=config.momentum, nesterov=True)
        ),
        "adam": lambda: optax.chain(decay, optax.adam(lr, b1, b2, eps)),
        "adamw": lambda: optax.adamw(
            lr,
            b1,
            b2,
            eps,
            weight_decay=config.weight_decay,
            mask=optimizers.decay_mask,
        ),
        "lion": lambda: optax.lion(
            lr,
            b1=config.momentum,
            b2=0.99,
            weight_decay=5 * config.weight_decay,
            mask=optimizers.decay_mask,
        ),
        # optax's own alias (no mask): the test tree holds kernels only.
        "schedule-free-adamw": lambda: optax.contrib.schedule_free_adamw(
            config.peak_learning_rate,
            warmup_steps=config.warmup_steps,
            b1=b1,
            b2=b2,
            eps=eps,
            weight_decay=config.weight_decay,
        ),
    }
    return twins[config.optimizer]()


@pytest.mark.parametrize("name", PEERS)
def test_each_peer_is_its_optax_twin(name):
    config = dataclasses.replace(TINY, optimizer=name, weight_decay=0.01)
    params = {
        "kernel": jnp.linspace(-1.0, 1.0, 6).reshape(3, 2),
        "k2": jnp.ones((2, 2)),
    }
    got_tx, want_tx = optimizers.create_optimizer(config), _twin(config)
    start = params
    got_state, want_state = got_tx.init(params), want_tx.init(params)
    for _ in range(4):
        grads = jax.tree.map(lambda x: jnp.sin(3 * x), params)
        got, got_state = got_tx.update(grads, got_state, params)
        want, want_state = want_tx.update(grads, want_state, params)
        chex.assert_trees_all_close(got, want, rtol=1e-6, atol=1e-9)
        params = optax.apply_updates(params, got)
    moved = jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()), params, start)
    assert min(jax.tree.leaves(moved)) > 1e-5


def test_adam_decays_the_gradient_and_adamw_the_weights():
    # Coupled decay passes through Adam's normalisation; decoupled decay does not.
    params = {"kernel": jnp.full((2, 2), 3.0)}
    zero = jax.tree.map(jnp.zeros_like, params)
    steps = {}
    for name in ("adam", "adamw"):
        config = dataclasses.replace(
            TINY, optimizer=name, weight_decay=0.1, warmup_steps=0, learning_rate=1.0
        )
        tx = optimizers.create_optimizer(config)
        updates, _ = tx.update(zero, tx.init(params), params)
        steps[name] = float(jax.tree.leaves(updates)[0][0, 0])
    lr0 = _at(optimizers.create_learning_rate_schedule(config), 0)
    # Adam: the decayed weight 0.3 is the gradient, normalised to a unit step.
    np.testing.assert_allclose(steps["adam"], -lr0, rtol=1e-5)
    # AdamW: a zero gradient gives no Adam step; the decay is lr * 0.1 * 3.
    np.testing.assert_allclose(steps["adamw"], -lr0 * 0.3, rtol=1e-6)


def test_peers_without_an_exponent_have_a_nan_p():
    for name in ("lion", "schedule-free-adamw"):
        config = dataclasses.replace(TINY, optimizer=name)
        assert math.isnan(_at(optimizers.create_p_schedule(config), 3))
        assert math.isnan(methods.OPTIMIZERS[name].p or 0.0)
    for name, want in (("sgd-nesterov", 0.0), ("adam", 0.5), ("adam-cyclic", 0.5)):
        config = dataclasses.replace(TINY, optimizer=name)
        assert _at(optimizers.create_p_schedule(config), 3) == want


def test_cyclic_labels_follow_the_p_schedule_registry():
    table = methods.methods()
    for base in ("sgd-cyclic", "adam-cyclic"):
        assert table[base] == dict(optimizer=base, p_schedule="pulse_tidal")
        assert table[f"{base}-cosine"] == dict(
            optimizer=base, p_schedule="cosine_tidal"
        )
        assert table[f"{base}-pulse"] == table[base]
        assert f"{base}-const" not in table  # a constant p has no cycle
    config = dataclasses.replace(
        TINY, optimizer="sgd-cyclic", p_schedule="cosine_tidal"
    )
    assert config.method == "sgd-cyclic-cosine"


def test_every_method_label_names_its_own_config():
    # The NSF labels of both flavours and gains are runnable methods, and each
    # label is the one its run's config reports.
    table = methods.methods()
    for name in ("nsf-pulse", "nsf-pulse-raw", "nsf-pulse-adam", "nsf-cosine-adam-raw"):
        assert name in table
    assert table["nsf-pulse-adam"] == dict(
        optimizer="nsf", p_schedule="pulse_tidal", nsf_flavour="adam"
    )
    for name, fields in table.items():
        # "sgd-cyclic" / "adam-cyclic" are the pulse cycle's short names.
        method = dataclasses.replace(TINY, **fields).method
        assert method == name or method == f"{name}-pulse"


def _at(schedule, step: int) -> float:
    return float(np.asarray(schedule(step)))


def _values(schedule, steps):
    return [_at(schedule, t) for t in steps]


def test_the_cosine_cycle_has_the_cosine_schedules_period_and_shape():
    config = dataclasses.replace(
        TINY,
        optimizer="sgd-cyclic",
        p_schedule="cosine_tidal",
        p_min=-0.25,
        p_max=0.25,
        p_period_steps=8,
        num_steps=16,
        cyclic_amplitude=2.0,
    )
    cycle = optimizers.create_lr_cycle(config)
    # p = 0.25 cos(2 pi t / 8): highest at 0 and 8, lowest at 4, centre at 2 and 6.
    np.testing.assert_allclose(
        _values(cycle, (0, 2, 4, 6, 8, 12)), [2.0, 1.0, 0.5, 1.0, 2.0, 0.5], rtol=1e-5
    )
    lr = optimizers.create_learning_rate_schedule(config)
    base = optimizers.create_learning_rate_schedule(
        dataclasses.replace(config, optimizer="sgd")
    )
    np.testing.assert_allclose(
        _values(lr, (1, 4, 8)),
        [2 ** (2**-0.5) * _at(base, 1), 0.5 * _at(base, 4), 2 * _at(base, 8)],
        rtol=1e-5,
    )


def test_the_pulse_cycle_has_the_pulse_schedules_period_and_shape():
    config = dataclasses.replace(
        TINY,
        optimizer="adam-cyclic",
        p_schedule="pulse_tidal",
        pulse_value=-0.25,
        pulse_steps=4,
        tidal_high_value=0.25,
        tidal_low_value=-0.25,
        tidal_every_steps=3,
        num_steps=20,
        cyclic_amplitude=3.0,
    )
    cycle = optimizers.create_lr_cycle(config)
    # The pulse (p low) for 4 steps, then high for 3, low for 3, high again...
    np.testing.assert_allclose(
        _values(cycle, (0, 3, 4, 6, 7, 9, 10, 13)),
        [1 / 3, 1 / 3, 3, 3, 1 / 3, 1 / 3, 3, 1 / 3],
        rtol=1e-5,
    )
    flat = dataclasses.replace(config, cyclic_amplitude=1.0)
    assert _values(optimizers.create_lr_cycle(flat), (0, 5)) == [1.0, 1.0]


def test_a_unit_amplitude_cycle_is_its_base_optimizer():
    params = {"kernel": jnp.linspace(-1.0, 1.0, 6).reshape(3, 2), "bias": jnp.ones(2)}
    grads = jax.tree.map(jnp.cos, params)
    for cyclic, base in (("sgd-cyclic", "sgd"), ("adam-cyclic", "adam")):
        got_tx, want_tx = (
            optimizers.create_optimizer(
                dataclasses.replace(TINY, optimizer=name, cyclic_amplitude=1.0)
            )
            for name in (cyclic, base)
        )
        got_state, want_state = got_tx.init(params), want_tx.init(params)
        for _ in range(3):
            got, got_state = got_tx.update(grads, got_state, params)
            want, want_state = want_tx.update(grads, want_state, params)
            chex.assert_trees_all_equal(got, want)


def test_schedule_free_is_evaluated_at_its_average(tmp_path):
    config = dataclasses.replace(
        TINY, optimizer="schedule-free-adamw", learning_rate=0.05, eval_every_steps=6
    )
    result = train_lib.train_and_evaluate(config, tmp_path / "run")
    model, optimizer = result.model, result.optimizer
    # A snapshot: nnx.state holds the model's own variables.
    y = evaluation.array_values(nnx.state(model, nnx.Param))
    x = optimizers.evaluation_params(
        config, y, evaluation.array_values(optimizer.opt_state)
    )
    distance = jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()), y, x)
    assert max(jax.tree.leaves(distance)) > 1e-4  # x and y differ
    data = train_lib.load_training_set(config)
    batches = [
        tuple(jnp.asarray(a) for a in batch)
        for batch in evaluation.eval_batches(data, config.eval_batch_size)
    ]
    n = len(data.y_test)
    at_y = evaluation.sum_test_batches(model, batches)[0] / n
    state = nnx.state(model, nnx.Param)
    nnx.replace_by_pure_dict(state, nnx.to_pure_dict(x))
    nnx.update(model, state)
    at_x = evaluation.sum_test_batches(model, batches)[0] / n
    recorded = result.history[-1]["test_loss"]
    np.testing.assert_allclose(recorded, at_x, rtol=1e-5)
    assert abs(recorded - at_y) > 1e-4
    # Evaluating at x leaves the training at y: the same run evaluated twice as
    # often ends with the same parameters.
    again = train_lib.train_and_evaluate(
        dataclasses.replace(config, eval_every_steps=3), tmp_path / "again"
    )
    chex.assert_trees_all_equal(
        evaluation.array_values(nnx.state(again.model, nnx.Param)), y
    )
    # evaluation_params leaves every other optimizer's parameters alone.
    assert optimizers.evaluation_params(TINY, y, None) is y


def test_every_peer_trains_through_compare(tmp_path):
    names = ["sgd", *PEERS, "sgd-cyclic", "adam-cyclic-cosine"]
    argv = ["--config", "tiny", "--seeds", "1", "--methods", ",".join(names)]
    argv += ["--workdir", str(tmp_path), "--checkpoint_every_steps", "0"]
    assert command.main(argv) == 0
    with open(tmp_path / "results.json") as f:
        rows = json.load(f)["rows"]
    assert [r["method"] for r in rows] == names
    for name in names:
        with open(tmp_path / name / "seed0" / "metrics.json") as f:
            history = json.load(f)
        assert [r["step"] for r in history] == [3, 6]
        for row in history:
            assert np.isfinite([row["train_loss"], row["test_loss"], row["lr"]]).all()
            assert 0.0 <= row["test_accuracy"] <= 1.0
        # The exponent, or null for an optimizer without one.
        fixed = methods.OPTIMIZERS[methods.overrides(name)["optimizer"]].p
        assert fixed is not None
        want = None if math.isnan(fixed) else fixed
        assert [row["p"] for row in history] == [want, want]


def test_the_cycle_position_spans_the_schedules_range():
    config = dataclasses.replace(
        TINY, p_schedule="cosine_tidal", p_min=-0.5, p_max=0.1, p_period_steps=4
    )
    position = optimizers.create_cycle_position(config)
    np.testing.assert_allclose(
        _values(position, (0, 1, 2, 4)), [1, 0, -1, 1], atol=1e-6
    )
    constant = dataclasses.replace(config, p_schedule="constant")
    assert _values(optimizers.create_cycle_position(constant), (0, 3)) == [0.0, 0.0]


def test_step_size_ratios_measure_the_gain_against_the_reference_p():
    base = dataclasses.replace(TINY, p_schedule="constant", optimizer="nsf")
    # At the reference p itself every ratio is 1 (step 0 has lr 0: no step).
    same = step_swing.step_size_ratios(dataclasses.replace(base, p_value=0.0), steps=4)
    np.testing.assert_allclose(same["rms"][1:], 1.0, rtol=1e-6)
    np.testing.assert_allclose(same["descent"][1:], 1.0, rtol=1e-6)
    assert list(same["s"]) == [0.0] * 4 and np.isfinite(same["loss"]).all()
    # The raw gain vhat**-p with vhat < 1 lengthens the step at p > 0; normalize
    # "rms" gives it back the reference's length.
    raw = step_swing.step_size_ratios(
        dataclasses.replace(base, p_value=0.25, normalize="none"), steps=4
    )
    assert (raw["rms"][1:] > 2.0).all()
    rms = step_swing.step_size_ratios(dataclasses.replace(base, p_value=0.25), steps=4)
    np.testing.assert_allclose(rms["rms"][1:], 1.0, rtol=1e-4)
    with pytest.raises(ValueError, match="needs optimizer 'nsf'"):
        step_swing.step_size_ratios(dataclasses.replace(base, optimizer="sgd"), steps=2)


def test_swing_amplitude_fits_the_log_ratio_against_the_position():
    s = np.array([0.0, 1.0, 0.0, -1.0, 1.0, -1.0])
    assert step_swing.swing_amplitude(3.0**s * 1.7, s) == pytest.approx(3.0)
    assert step_swing.swing_amplitude(0.5**s, s) == pytest.approx(0.5)
    # The skipped steps and the non-finite ratios (a step of length 0) are left out.
    ratios = np.concatenate([[100.0, np.nan], 2.0**s])
    position = np.concatenate([[-1.0, 1.0], s])
    assert step_swing.swing_amplitude(ratios, position, skip=1) == pytest.approx(2.0)
    assert step_swing.swing_amplitude(ratios, position) != pytest.approx(2.0)
    assert step_swing.swing_amplitude(np.ones(3), np.zeros(3)) == 1.0


def test_a_budget_scales_the_cycle_as_it_scales_nsfs_p_schedule():
    from nsf_optax.experiments.compare import budgets

    full = dataclasses.replace(
        configs.get_config("mnist1d"), optimizer="sgd-cyclic", cyclic_amplitude=2.0
    )
    quarter = budgets.budget_config(full, 0.25)
    assert (quarter.pulse_steps, quarter.tidal_every_steps) == (50, 50)
    cycle = optimizers.create_lr_cycle(quarter)
    np.testing.assert_allclose(
        _values(cycle, (0, 49, 50, 100)), [0.5, 0.5, 2.0, 0.5], rtol=1e-5
    )
    fixed = budgets.budget_config(full, 0.25, p_periods="fixed")
    assert fixed.pulse_steps == 200
