"""One or two steps per data source, optimizers by name, resume, checkpoints, errors,
the step under vmap."""

import dataclasses
import functools
import json
import os

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import nsf_optax
from nsf_optax.experiments.resnet import __main__ as cli
from nsf_optax.experiments.resnet import (
    input_pipeline,
    methods,
    models,
    optimizers,
    train,
)
from nsf_optax.experiments.resnet.configs import CONFIG_NAMES, Config, get_config
from nsf_optax.experiments.runner.errors import CheckpointError, ConfigError, DataError

from ._files import snapshot

TINY = get_config("tiny")


def _leaves(result):
    return jax.tree.leaves(nnx.state((result.model, result.optimizer)))


@pytest.mark.parametrize(
    "overrides",
    [
        dict(dataset="digits"),
        dict(
            dataset="mnist1d",
            batch_size=16,
            eval_batch_size=500,
            num_steps=2,
            warmup_steps=1,
        ),
        "cifar10",
    ],
    ids=["digits", "mnist1d", "cifar10"],
)
def test_tiny_model_trains_on_each_data_source(overrides, tmp_path, fake_cifar10):
    if overrides == "cifar10":
        overrides = dict(
            dataset="cifar10",
            data_dir=str(fake_cifar10),
            batch_size=8,
            eval_batch_size=8,
            num_steps=2,
            warmup_steps=1,
            crop_padding=4,
            flip=True,
        )
    config = dataclasses.replace(TINY, eval_every_steps=1, **overrides)
    result = train.train_and_evaluate(config, tmp_path / "run")
    assert [r["step"] for r in result.history] == list(range(1, config.num_steps + 1))
    for row in result.history:
        assert set(row) == set(train.HISTORY_FIELDS)
        assert np.isfinite([row["train_loss"], row["test_loss"]]).all()
        assert 0.0 <= row["test_accuracy"] <= 1.0
    for name in ("metrics.csv", "metrics.json", "config.json"):
        assert (tmp_path / "run" / name).is_file()
    for name in ("curves.png", "schedules.png"):
        assert (tmp_path / "run" / name).read_bytes()[:4] == b"\x89PNG"
    with open(tmp_path / "run" / "metrics.json") as f:
        assert len(json.load(f)) == config.num_steps


@pytest.mark.parametrize(
    "overrides",
    [
        dict(optimizer="sgd"),
        dict(optimizer="adam"),
        dict(optimizer="padam"),
        dict(optimizer="nsf", p_schedule="constant"),
        dict(optimizer="nsf", p_schedule="cosine_tidal"),
        dict(optimizer="nsf", p_schedule="pulse_tidal"),
        dict(optimizer="nsf", p_schedule="pulse_tidal", normalize="none"),
        dict(optimizer="nsf", nsf_flavour="adam"),
        dict(optimizer="sgd", lr_schedule="piecewise"),
    ],
)
def test_optimizers_by_name(overrides):
    config = dataclasses.replace(TINY, **overrides)
    tx = optimizers.create_optimizer(config)
    params = {"kernel": jnp.ones((3, 2)), "bias": jnp.ones((2,))}
    state = tx.init(params)
    update = jax.jit(tx.update)
    for _ in range(3):
        updates, state = update(jax.tree.map(jnp.sin, params), state, params)
        params = optax.apply_updates(params, updates)
    assert all(np.isfinite(x).all() for x in jax.tree.leaves(params))


@pytest.mark.parametrize("normalize", ["rms", "none"])
def test_adam_flavoured_optimizers_are_nsfw(normalize):
    """padam: static p = 1/8, never normalized; nsf (adam): the p schedule."""
    config = dataclasses.replace(TINY, normalize=normalize, nsf_flavour="adam")
    lr = optimizers.create_learning_rate_schedule(config)
    common = dict(
        b1=config.momentum,
        b2=config.b2,
        eps=config.eps,
        weight_decay=config.weight_decay,
        mask=optimizers.decay_mask,
    )
    expected = {
        "padam": nsf_optax.nsfw(lr, p=methods.OPTIMIZERS["padam"].p, **common),
        "nsf": nsf_optax.nsfw(
            lr,
            p=optimizers.create_p_schedule(
                dataclasses.replace(config, optimizer="nsf")
            ),
            normalize=None if normalize == "none" else normalize,
            **common,
        ),
    }
    params = {"kernel": jnp.ones((3, 2)), "bias": jnp.ones((2,))}
    grads = jax.tree.map(jnp.sin, params)
    for name, want_tx in expected.items():
        got_tx = optimizers.create_optimizer(
            dataclasses.replace(config, optimizer=name)
        )
        got_state, want_state = got_tx.init(params), want_tx.init(params)
        for _ in range(3):
            got, got_state = got_tx.update(grads, got_state, params)
            want, want_state = want_tx.update(grads, want_state, params)
            chex.assert_trees_all_equal(got, want)


def test_schedules():
    config = dataclasses.replace(
        get_config("default"), optimizer="nsf", p_schedule="pulse_tidal"
    )
    p = optimizers.create_p_schedule(config)
    # Pulse for 200 steps, then the sign alternates every 200 steps.
    assert [float(p(t)) for t in (0, 199, 200, 399, 400, 600)] == [
        -0.25,
        -0.25,
        0.25,
        0.25,
        -0.25,
        0.25,
    ]
    cosine = optimizers.create_p_schedule(
        dataclasses.replace(config, p_schedule="cosine_tidal")
    )
    assert float(cosine(0)) == pytest.approx(0.25)
    assert float(cosine(200)) == pytest.approx(-0.25)
    for name, value in (("sgd", 0.0), ("adam", 0.5), ("padam", 0.125)):
        fixed = dataclasses.replace(config, optimizer=name)
        assert float(optimizers.create_p_schedule(fixed)(123)) == value
    lr = optimizers.create_learning_rate_schedule(config)
    assert float(lr(0)) == 0.0 and float(lr(100)) == pytest.approx(0.1)
    assert float(lr(config.num_steps)) == pytest.approx(0.0)
    piecewise = optimizers.create_learning_rate_schedule(
        dataclasses.replace(config, lr_schedule="piecewise")
    )
    assert [float(piecewise(t)) for t in (0, 999, 1000, 1500)] == pytest.approx(
        [0.1, 0.1, 0.01, 0.001]
    )


def test_nsf_at_p_zero_is_the_sgd_baseline():
    sgd = optimizers.create_optimizer(dataclasses.replace(TINY, optimizer="sgd"))
    nsf = optimizers.create_optimizer(
        dataclasses.replace(TINY, optimizer="nsf", p_schedule="constant", p_value=0.0)
    )
    params = {"kernel": jnp.linspace(-1.0, 1.0, 6).reshape(3, 2), "bias": jnp.ones(2)}
    states = [tx.init(params) for tx in (sgd, nsf)]
    for step in range(4):
        grads = jax.tree.map(lambda x, s=step: jnp.cos(x * (s + 1)), params)
        (u_sgd, states[0]), (u_nsf, states[1]) = (
            jax.jit(tx.update)(grads, st, params)
            for tx, st in zip((sgd, nsf), states, strict=True)
        )
        for a, b in zip(jax.tree.leaves(u_sgd), jax.tree.leaves(u_nsf), strict=True):
            np.testing.assert_array_equal(a, b)
        params = optax.apply_updates(params, u_sgd)


def test_resume_equals_uninterrupted_bitwise(tmp_path):
    config = dataclasses.replace(TINY, checkpoint_every_steps=0)
    full = train.train_and_evaluate(config, tmp_path / "full")
    train.train_and_evaluate(config, tmp_path / "split", max_steps_this_run=4)
    resumed = train.train_and_evaluate(
        dataclasses.replace(config, resume=True), tmp_path / "split"
    )
    for a, b in zip(_leaves(full), _leaves(resumed), strict=True):
        np.testing.assert_array_equal(a, b)
    drop = lambda h: [{k: v for k, v in r.items() if k != "elapsed_s"} for r in h]  # noqa: E731
    assert drop(full.history) == drop(resumed.history)
    # The optimizer's schedule count travelled with the checkpoint.
    counts = [
        x
        for x in jax.tree.leaves(nnx.state(resumed.optimizer))
        if x.ndim == 0 and jnp.issubdtype(x.dtype, jnp.integer)
    ]
    assert {int(c) for c in counts} == {config.num_steps}


def test_checkpoint_errors_overwrite_nothing(tmp_path):
    workdir = tmp_path / "run"
    config = dataclasses.replace(TINY, checkpoint_every_steps=0)
    with pytest.raises(CheckpointError, match="No checkpoint"):
        train.train_and_evaluate(dataclasses.replace(config, resume=True), workdir)
    assert not workdir.exists()
    train.train_and_evaluate(config, workdir)
    with pytest.raises(CheckpointError, match="already holds checkpoints"):
        train.train_and_evaluate(config, workdir)
    with pytest.raises(CheckpointError, match="different config"):
        train.train_and_evaluate(
            dataclasses.replace(config, resume=True, num_steps=8), workdir
        )
    # Garbage in every file of the newest checkpoint's model.
    for root, _, files in os.walk(workdir / "checkpoints" / "6" / "model"):
        for name in files:
            with open(os.path.join(root, name), "wb") as f:
                f.write(b"garbage")
    before = snapshot(workdir)
    # Refused by the file digest, before orbax parses the files.
    with pytest.raises(CheckpointError, match=r"step 6 .* fails verification: model"):
        train.train_and_evaluate(dataclasses.replace(config, resume=True), workdir)
    assert snapshot(workdir) == before


def test_missing_and_bad_data_dir_at_train_time(tmp_path):
    config = dataclasses.replace(TINY, dataset="cifar10", data_dir=str(tmp_path / "x"))
    with pytest.raises(DataError, match="does not exist"):
        train.train_and_evaluate(config, tmp_path / "run")
    assert not (tmp_path / "run").exists()
    with pytest.raises(ConfigError, match="exceeds the 1437 training examples"):
        train.train_and_evaluate(
            dataclasses.replace(TINY, batch_size=2000), tmp_path / "run"
        )
    assert not (tmp_path / "run").exists()


def test_cli_prints_the_table(capsys, tmp_path):
    argv = ["--config", "tiny", "--workdir", str(tmp_path / "w")]
    assert cli.main([*argv, "--checkpoint_every_steps", "0"]) == 0
    out = capsys.readouterr().out
    assert "| step | lr | p | train loss | test loss | test accuracy |" in out
    assert "| 6 |" in out  # the last evaluation is always shown


@pytest.mark.slow  # three compilations: ~15 s on a loaded 2-core machine
def test_train_step_runs_a_population_under_vmap():
    """The single run's step, vmapped over two seeds, matches two single runs."""
    data = input_pipeline.load_dataset(TINY.dataset)
    tx = optimizers.create_optimizer(TINY)
    shape = dict(num_classes=10, in_features=1, ndim=2)

    def create(key):  # nnx.Rngs(seed) draws from jax.random.key(seed)
        model = models.create_model(TINY.model, seed=key, **shape)
        return model, nnx.Optimizer(model, tx, wrt=nnx.Param), train.create_metrics()

    step = functools.partial(
        train.train_step, crop_padding=TINY.crop_padding, flip=TINY.flip
    )
    rngs = jax.vmap(jax.random.key)(jnp.arange(2))
    population = nnx.jit(nnx.vmap(create))(rngs)
    x, y = data.x_train[:32], data.y_train[:32]
    pop_step = nnx.jit(nnx.vmap(step, in_axes=(0, 0, 0, None, None, 0)))
    losses, _ = pop_step(*population, x, y, rngs)
    single_step = train.make_train_step(TINY)
    for seed in range(2):
        single = create(jax.random.key(seed))
        loss, _ = single_step(*single, x, y, jax.random.key(seed))
        np.testing.assert_allclose(losses[seed], loss, rtol=1e-5)
        np.testing.assert_allclose(
            nnx.state(population[0], nnx.Param)["head"]["kernel"][...][seed],
            nnx.state(single[0], nnx.Param)["head"]["kernel"][...],
            rtol=1e-5,
            atol=1e-6,
        )


@pytest.mark.parametrize("name", sorted(models.MODELS))
def test_model_presets(name):
    ndim = 1 if name == "resnet1d" else 2
    shape = (2, 40, 1) if ndim == 1 else (2, 16, 16, 3)
    abstract = nnx.eval_shape(
        lambda: models.create_model(
            name, num_classes=10, in_features=shape[-1], ndim=ndim, seed=0
        )
    )
    graphdef, state = nnx.split(abstract)

    def apply(state, x):
        model = nnx.merge(graphdef, state)
        model.eval()
        return model(x)

    logits = jax.eval_shape(apply, state, jax.ShapeDtypeStruct(shape, jnp.float32))
    assert logits.shape == (2, 10)


def test_resnet_parameter_counts():
    def count(name, **kwargs):
        model = nnx.eval_shape(lambda: models.create_model(name, seed=0, **kwargs))
        return sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param)))

    # He et al. (2016): ResNet-20 0.27M; the CIFAR ResNet-18: 11.2M.
    assert count("resnet20", num_classes=10, in_features=3, ndim=2) == 272_474
    assert count("resnet18", num_classes=10, in_features=3, ndim=2) == 11_173_962
    assert set(CONFIG_NAMES) >= {"default", "digits", "mnist1d", "cifar10", "tiny"}
    assert isinstance(get_config(), Config)
