"""Tests for nsf_optax.spectral.alignment."""

import subprocess
import sys

import numpy as np
import pytest

from nsf_optax.spectral import alignment


def test_identical_runs_are_never_aligned():
    steps = np.arange(10)
    acc = np.linspace(0.1, 0.9, 10)
    loss = np.linspace(2.0, 0.5, 10)
    rep = alignment.early_alignment(steps, acc, loss, acc, loss)
    assert not rep.aligned.any()
    assert rep.first_aligned_step is None
    assert rep.fraction_aligned == 0.0
    assert rep.earlier_fraction == 0.0


def test_lead_with_lower_loss_is_not_alignment():
    steps = np.arange(5)
    rep = alignment.early_alignment(steps, [0.5] * 5, [1.0] * 5, [0.4] * 5, [1.5] * 5)
    assert not rep.aligned.any()
    # ... unless the loss margin tolerates it.
    rep = alignment.early_alignment(
        steps, [0.5] * 5, [1.0] * 5, [0.4] * 5, [1.5] * 5, loss_margin=0.6
    )
    assert rep.aligned.all()


def test_window_margin_and_target():
    steps = np.arange(1, 11, dtype=float)
    acc_b = np.linspace(0.1, 0.6, 10)
    acc_a = np.minimum(acc_b + 0.1, 0.7)
    loss_b = np.linspace(2.0, 1.0, 10)
    loss_a = loss_b + 0.05
    rep = alignment.early_alignment(
        steps, acc_a, loss_a, acc_b, loss_b, window=(1, 5), acc_margin=0.05
    )
    assert rep.steps.tolist() == [1, 2, 3, 4, 5]
    assert rep.aligned.all()
    assert rep.longest_aligned_steps == 4.0
    assert rep.mean_loss_lag_aligned == pytest.approx(0.05)
    full = alignment.early_alignment(steps, acc_a, loss_a, acc_b, loss_b)
    assert full.target_accuracy == pytest.approx(0.6)
    assert full.step_to_target_b == 10.0
    assert full.step_to_target_a < 10.0
    assert 0.0 < full.earlier_fraction < 1.0


def test_first_step_reaching_none():
    assert alignment.first_step_reaching([1, 2], [0.1, 0.2], 0.5) is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"accuracy_a": [0.1, 0.2]},
        {"steps": [0, 0, 1]},
        {"steps": [0], "accuracy_a": [0.1]},
        {"acc_margin": -1.0},
        {"loss_margin": -1.0},
        {"smooth": 0},
        {"window": (10, 20)},
    ],
)
def test_bad_input(kwargs):
    args = {
        "steps": [0, 1, 2],
        "accuracy_a": [0.1, 0.2, 0.3],
        "loss_a": [1.0, 0.9, 0.8],
        "accuracy_b": [0.1, 0.2, 0.3],
        "loss_b": [1.0, 0.9, 0.8],
    }
    args.update(kwargs)
    if len(args["steps"]) != len(args["accuracy_a"]) or len(args["steps"]) < 2:
        args["loss_a"] = args["accuracy_b"] = args["loss_b"] = args["accuracy_a"]
    with pytest.raises(ValueError):
        alignment.early_alignment(**args)


def test_smoothing_reduces_noise():
    rng = np.random.default_rng(0)
    steps = np.arange(200)
    acc_b = np.linspace(0, 0.5, 200)
    acc_a = acc_b + 0.05 + 0.2 * rng.standard_normal(200)
    loss = np.ones(200)
    raw = alignment.early_alignment(steps, acc_a, loss, acc_b, loss)
    smoothed = alignment.early_alignment(steps, acc_a, loss, acc_b, loss, smooth=50)
    assert smoothed.fraction_aligned > raw.fraction_aligned


def test_spectral_import_is_light():
    # The package must not pull matplotlib (or flax/sklearn) at import time.
    code = (
        "import sys, nsf_optax.spectral; "
        "bad = [m for m in ('matplotlib', 'flax', 'sklearn') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
