"""Offline data sources, batch order and augmentation."""

import dataclasses
import pickle

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nsf_optax.examples import input_pipeline
from nsf_optax.examples.errors import DataError


@pytest.mark.parametrize(
    ("name", "shape", "sizes"),
    [("digits", (8, 8, 1), (1437, 360)), ("mnist1d", (40, 1), (4000, 1000))],
)
def test_embedded_datasets(name, shape, sizes):
    data = input_pipeline.load_dataset(name)
    assert data.x_train.shape == (sizes[0], *shape)
    assert data.x_test.shape == (sizes[1], *shape)
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int32
    assert set(np.unique(data.y_test)) == set(range(10))
    assert abs(float(data.x_train.mean())) < 1e-4
    assert data.ndim == len(shape) - 1 and data.in_features == 1


def test_mnist1d_leaves_global_numpy_state_alone():
    input_pipeline.load_mnist1d.cache_clear()
    before = np.random.get_state()  # noqa: NPY002 -- mnist1d uses the legacy API.
    input_pipeline.load_mnist1d()
    after = np.random.get_state()  # noqa: NPY002
    assert before[0] == after[0] and np.array_equal(before[1], after[1])


def test_cifar10_from_pickle_dir(fake_cifar10):
    for path in (fake_cifar10, fake_cifar10.parent):  # the dir or its parent
        data = input_pipeline.load_dataset("cifar10", path)
        assert data.x_train.shape == (40, 32, 32, 3)
        assert data.x_test.shape == (8, 32, 32, 3)
        assert data.y_train.dtype == np.int32


def test_cifar10_errors(tmp_path, fake_cifar10):
    with pytest.raises(ValueError, match="needs data_dir"):
        input_pipeline.load_cifar10(None)
    with pytest.raises(ValueError, match="does not exist"):
        input_pipeline.load_cifar10(tmp_path / "nowhere")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="lacks"):
        input_pipeline.load_cifar10(empty)
    (fake_cifar10 / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="Malformed CIFAR-10 batch file"):
        input_pipeline.load_cifar10(fake_cifar10)
    with open(fake_cifar10 / "data_batch_3", "wb") as f:
        pickle.dump({b"data": np.zeros((2, 10), np.uint8), b"labels": [0, 1]}, f)
    with pytest.raises(ValueError, match="Malformed"):
        input_pipeline.load_cifar10(fake_cifar10)


def test_unknown_dataset():
    with pytest.raises(ValueError, match="Unknown dataset"):
        input_pipeline.load_dataset("imagenet")


def test_batch_order_is_a_function_of_seed_and_step():
    a = input_pipeline.batch_indices(0, 7, 100, 32)
    np.testing.assert_array_equal(a, input_pipeline.batch_indices(0, 7, 100, 32))
    assert not np.array_equal(a, input_pipeline.batch_indices(1, 7, 100, 32))
    epoch = np.concatenate(
        [input_pipeline.batch_indices(0, s, 100, 32) for s in range(3)]
    )
    assert len(np.unique(epoch)) == 96  # one epoch: no repeats, remainder dropped


@pytest.mark.parametrize("shape", [(4, 8, 8, 3), (4, 40, 1)])
def test_augment_is_jittable_seeded_and_a_crop(shape):
    x = jnp.arange(np.prod(shape), dtype=jnp.float32).reshape(shape)
    fn = jax.jit(lambda k, x: input_pipeline.augment(k, x, crop_padding=2, flip=True))
    key = jax.random.key(0)
    y = fn(key, x)
    assert y.shape == x.shape and y.dtype == x.dtype
    np.testing.assert_array_equal(y, fn(key, x))
    assert not np.array_equal(y, fn(jax.random.key(1), x))
    # Every output value is an input value of the same example, or zero padding.
    for i in range(shape[0]):
        assert set(np.asarray(y[i]).ravel()) <= set(np.asarray(x[i]).ravel()) | {0.0}
    unchanged = input_pipeline.augment(key, x, crop_padding=0, flip=False)
    np.testing.assert_array_equal(unchanged, x)


def _labelled(n=1000, classes=10):
    y = (np.arange(n) % classes).astype(np.int32)
    x = np.arange(n, dtype=np.float32).reshape(n, 1, 1)
    return input_pipeline.Dataset(x, y, x[:50], y[:50], num_classes=classes)


@pytest.mark.parametrize("fraction", [0.0, 0.2, 0.4, 0.9])
def test_label_noise_fraction_other_class_and_clean_test_set(fraction):
    data = _labelled()
    noisy = input_pipeline.training_set(
        data, train_size=None, label_noise=fraction, seed=3
    )
    changed = noisy.y_train != data.y_train
    assert changed.sum() == round(fraction * len(data.y_train))
    assert noisy.y_train.min() >= 0 and noisy.y_train.max() < data.num_classes
    np.testing.assert_array_equal(noisy.x_train, data.x_train)
    assert noisy.x_test is data.x_test and noisy.y_test is data.y_test
    if fraction:
        # Uniform over the other classes: every wrong class is used.
        wrong = (noisy.y_train[changed] - data.y_train[changed]) % data.num_classes
        assert set(wrong.tolist()) == set(range(1, data.num_classes))


def test_label_noise_and_subset_are_deterministic_in_the_data_seed():
    data = _labelled()
    a = input_pipeline.training_set(data, train_size=300, label_noise=0.2, seed=1)
    b = input_pipeline.training_set(data, train_size=300, label_noise=0.2, seed=1)
    c = input_pipeline.training_set(data, train_size=300, label_noise=0.2, seed=2)
    np.testing.assert_array_equal(a.y_train, b.y_train)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert not np.array_equal(a.x_train, c.x_train)
    assert len(a.y_train) == 300 and len(np.unique(a.x_train)) == 300
    # The subset keeps the examples' (x, clean y) pairs, in dataset order.
    idx = a.x_train[:, 0, 0].astype(int)
    assert np.all(np.diff(idx) > 0)
    assert np.sum(a.y_train != data.y_train[idx]) == 60


def test_training_set_unchanged_without_options_and_refuses_a_large_subset():
    data = _labelled()
    assert (
        input_pipeline.training_set(data, train_size=None, label_noise=0.0, seed=0)
        is data
    )
    with pytest.raises(DataError, match="train_size"):
        input_pipeline.training_set(data, train_size=1001, label_noise=0.0, seed=0)


def test_label_noise_is_a_checked_config_field():
    from nsf_optax.examples.configs import get_config

    assert get_config("tiny").label_noise == 0.0
    with pytest.raises(ValueError, match="label_noise"):
        dataclasses.replace(get_config("tiny"), label_noise=1.0)
