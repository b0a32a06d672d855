"""Offline data sources, batch order and augmentation."""

import builtins
import dataclasses
import os
import pickle
import struct

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nsf_optax.experiments.resnet import input_pipeline
from nsf_optax.experiments.runner.errors import DataError


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
    # legacy=True: the (name, keys, ...) tuple, not the dict.
    before = np.random.get_state(legacy=True)  # noqa: NPY002 -- mnist1d's API.
    input_pipeline.load_mnist1d()
    after = np.random.get_state(legacy=True)  # noqa: NPY002
    assert isinstance(before, tuple) and isinstance(after, tuple)
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


def _py2_str(b: bytes) -> bytes:
    # A Python 2 str, as cPickle wrote it (bytes under encoding="bytes").
    if len(b) < 256:
        return pickle.SHORT_BINSTRING + bytes([len(b)]) + b
    return pickle.BINSTRING + struct.pack("<i", len(b)) + b


def _py2_int(i: int) -> bytes:
    if 0 <= i < 256:
        return pickle.BININT1 + bytes([i])
    if 0 <= i < 65536:
        return pickle.BININT2 + struct.pack("<H", i)
    return pickle.BININT + struct.pack("<i", i)


def _py2_cifar_batch(data: np.ndarray, labels: list[int]) -> bytes:
    """A batch opcode for opcode as Python 2 pickled cifar-10-python.tar.gz."""
    dtype = (
        pickle.GLOBAL + b"numpy\ndtype\n"
        + _py2_str(b"u1") + _py2_int(0) + _py2_int(1) + pickle.TUPLE3 + pickle.REDUCE
        + pickle.MARK + _py2_int(3) + _py2_str(b"|") + pickle.NONE * 3
        + (pickle.BININT + struct.pack("<i", -1)) * 2 + _py2_int(0)
        + pickle.TUPLE + pickle.BUILD
    )  # fmt: skip
    array = (
        pickle.GLOBAL + b"numpy.core.multiarray\n_reconstruct\n"
        + pickle.GLOBAL + b"numpy\nndarray\n"
        + _py2_int(0) + pickle.TUPLE1 + _py2_str(b"b") + pickle.TUPLE3 + pickle.REDUCE
        + pickle.MARK + _py2_int(1)
        + _py2_int(data.shape[0]) + _py2_int(data.shape[1]) + pickle.TUPLE2
        + dtype + pickle.NEWFALSE + _py2_str(data.tobytes())
        + pickle.TUPLE + pickle.BUILD
    )  # fmt: skip
    names = [b"img_%d.png" % i for i in range(len(labels))]
    return (
        pickle.PROTO + b"\x02" + pickle.EMPTY_DICT + pickle.MARK
        + _py2_str(b"batch_label") + _py2_str(b"training batch 1 of 5")
        + _py2_str(b"data") + array
        + _py2_str(b"labels") + pickle.EMPTY_LIST + pickle.MARK
        + b"".join(_py2_int(y) for y in labels) + pickle.APPENDS
        + _py2_str(b"filenames") + pickle.EMPTY_LIST + pickle.MARK
        + b"".join(_py2_str(n) for n in names) + pickle.APPENDS
        + pickle.SETITEMS + pickle.STOP
    )  # fmt: skip


def test_cifar10_reads_python2_batches_and_every_protocol(fake_cifar10):
    rng = np.random.default_rng(1)
    data = rng.integers(0, 256, (8, 3072), dtype=np.uint8)
    labels = rng.integers(0, 10, 8).tolist()
    (fake_cifar10 / "data_batch_1").write_bytes(_py2_cifar_batch(data, labels))
    for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
        with open(fake_cifar10 / "test_batch", "wb") as f:
            pickle.dump({b"data": data, b"labels": labels}, f, protocol=protocol)
        if protocol == 2:  # Python 3 writes its bytes keys through _codecs.encode
            with pytest.raises(DataError, match=r"'_codecs\.encode'"):
                input_pipeline.load_cifar10(fake_cifar10)
            continue
        loaded = input_pipeline.load_cifar10(fake_cifar10)
        np.testing.assert_array_equal(loaded.x_train[:8], loaded.x_test)
        np.testing.assert_array_equal(loaded.y_train[:8], labels)


class _Payload:
    """Unpickles as ``function(*args)``: what a hostile data file holds."""

    def __init__(self, function, *args):
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


@pytest.mark.parametrize(
    ("where", "protocol"),
    # Protocols 0-2 write a Python 3 array's bytes through '_codecs.encode', which
    # is refused first: the payload comes after an array only from protocol 3 on.
    [("whole", 0), ("whole", 2), ("whole", 4), ("in_labels", 4), ("in_labels", 5)],
)
@pytest.mark.parametrize("function", [os.system, builtins.exec])
def test_cifar10_batch_that_would_run_code_is_refused(
    fake_cifar10, tmp_path, function, where, protocol
):
    created = tmp_path / "created_by_the_data_file"
    if function is os.system:
        payload = _Payload(os.system, f"touch {created}")
    else:
        payload = _Payload(builtins.exec, f"open({str(created)!r}, 'w').close()")
    labels: list[object] = list(range(8))
    if where == "in_labels":  # after a legitimate array, deep in the data
        labels[5] = payload
    batch = {b"data": np.zeros((8, 3072), np.uint8), b"labels": labels}
    path = fake_cifar10 / "data_batch_2"
    with open(path, "wb") as f:
        pickle.dump(payload if where == "whole" else batch, f, protocol=protocol)
    with pytest.raises(DataError) as info:
        input_pipeline.load_cifar10(fake_cifar10)
    assert not created.exists()
    message = str(info.value)
    assert "\n" not in message
    assert repr(str(path)) in message
    module = function.__module__
    if module == "builtins" and protocol < 3:
        module = "__builtin__"  # protocols 0-2 write Python 2's module names
    assert f"'{module}.{function.__name__}'" in message
    assert "nothing in the file was run" in message


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
    from nsf_optax.experiments.resnet.configs import get_config

    assert get_config("tiny").label_noise == 0.0
    with pytest.raises(ValueError, match="label_noise"):
        dataclasses.replace(get_config("tiny"), label_noise=1.0)


def test_held_out_part_is_disjoint_seeded_and_replaces_the_test_set():
    data = _labelled()
    split = input_pipeline.training_set(
        data, train_size=400, label_noise=0.1, seed=1, val_fraction=0.25
    )
    subset = input_pipeline.training_set(data, train_size=400, label_noise=0.1, seed=1)
    assert (len(split.y_train), len(split.y_test)) == (300, 100)
    train_ids = split.x_train[:, 0, 0].astype(int)
    held_ids = split.x_test[:, 0, 0].astype(int)
    assert not set(train_ids) & set(held_ids)
    # Together they are the (noisy) subset, labels included.
    both = np.concatenate([train_ids, held_ids])
    np.testing.assert_array_equal(np.sort(both), subset.x_train[:, 0, 0].astype(int))
    labels = dict(zip(subset.x_train[:, 0, 0].astype(int), subset.y_train, strict=True))
    assert [labels[i] for i in held_ids] == split.y_test.tolist()
    # The held-out choice is default_rng([data_seed, 2]) over the subset.
    perm = np.random.default_rng([1, 2]).permutation(400)
    expected = np.sort(subset.x_train[perm[:100], 0, 0].astype(int))
    np.testing.assert_array_equal(held_ids, expected)
    again = input_pipeline.training_set(
        data, train_size=400, label_noise=0.1, seed=1, val_fraction=0.25
    )
    np.testing.assert_array_equal(again.x_test, split.x_test)
    other = input_pipeline.training_set(
        data, train_size=400, label_noise=0.1, seed=2, val_fraction=0.25
    )
    assert not np.array_equal(other.x_test, split.x_test)
    # The real test set is left alone.
    assert data.x_test.shape == (50, 1, 1)
    assert input_pipeline.split_sizes(400, 0.25) == (300, 100)


def test_val_fraction_is_a_checked_field_refused_before_any_data_loads():
    from nsf_optax.experiments.resnet.configs import get_config

    tiny = get_config("tiny")
    assert tiny.val_fraction == 0.0
    with pytest.raises(ValueError, match=r"val_fraction must be in \[0, 0.5\)"):
        dataclasses.replace(tiny, val_fraction=0.5)
    # 0.3 of 60 rounds to none held out; 72 of 1437 is one padded eval batch.
    with pytest.raises(ValueError, match=r"holds out 0 of the 60 training"):
        dataclasses.replace(tiny, train_size=60, val_fraction=0.005)
    assert dataclasses.replace(tiny, val_fraction=0.05).val_fraction == 0.05
    with pytest.raises(ValueError, match=r"batch_size \(32\) exceeds the 31 training"):
        dataclasses.replace(tiny, train_size=60, val_fraction=0.49, eval_batch_size=20)


def test_run_evaluates_on_the_held_out_part_the_same_for_every_seed(tmp_path):
    from nsf_optax.experiments.resnet import evaluation, train
    from nsf_optax.experiments.resnet.configs import get_config

    config = dataclasses.replace(get_config("tiny"), val_fraction=0.1)
    data = train.load_training_set(config)
    other_seed = train.load_training_set(dataclasses.replace(config, seed=7))
    np.testing.assert_array_equal(data.x_test, other_seed.x_test)
    full = input_pipeline.load_dataset("digits")
    assert (len(data.y_train), len(data.y_test)) == (1293, 144)
    assert sum(float(w.sum()) for *_, w in evaluation.eval_batches(data, 120)) == 144
    history = train.train_and_evaluate(config, tmp_path / "run").history
    # Accuracies over the 144 held-out examples, not the 360 test ones.
    correct = np.asarray([row["test_accuracy"] for row in history]) * 144
    np.testing.assert_allclose(correct, np.round(correct), atol=1e-3)
    assert full.x_test.shape[0] == 360


def test_val_fraction_flag_refuses_an_empty_held_out_part_before_jax(tmp_path):
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from nsf_optax.experiments.resnet.__main__ import main\n"
        f"rc = main(['--config', 'tiny', '--workdir', {str(tmp_path / 'r')!r}, "
        "'--train_size', '60', '--val_fraction', '0.005'])\n"
        "print(rc, 'jax' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == ["2", "False"]
    (line,) = done.stderr.strip().splitlines()
    assert "val_fraction (0.005) holds out 0 of the 60" in line
    assert not (tmp_path / "r").exists()
