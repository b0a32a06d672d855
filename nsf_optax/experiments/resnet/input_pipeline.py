"""Offline datasets, deterministic batch order and jit-compatible augmentation.

Three sources, none of which touches the network:

* ``digits``: scikit-learn's embedded 8x8 handwritten digits (1797 images), split
  stratified 80/20 with a fixed seed (1437 train / 360 test).
* ``mnist1d``: MNIST-1D generated procedurally by ``mnist1d.data.make_dataset`` with its
  default arguments (the standard 4000 train / 1000 test split; its download path is
  never used).
* ``cifar10``: read from a local directory in the python-pickle batch format
  (``data_batch_1`` ... ``data_batch_5`` and ``test_batch``, as unpacked from
  ``cifar-10-python.tar.gz``). The batches are read as data: their unpickler admits
  only numpy's array and dtype rebuilders, so a file that refers to any other
  global (``os.system``, ``builtins.exec``...) is refused before any of it runs.

The batch order is a pure function of ``(seed, step)``: every epoch is a fresh
permutation drawn from ``numpy.random.default_rng([seed, epoch])``. A resumed run
therefore sees exactly the batches an uninterrupted run would, and every host of a
multi-host job computes the same global batch and keeps its own slice of it.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import pickle
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from nsf_optax.experiments.runner.errors import DataError

DATASETS = ("digits", "mnist1d", "cifar10")

_CIFAR_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
_CIFAR_TEST_FILE = "test_batch"
_CIFAR_MEAN = np.array([0.4914, 0.4822, 0.4465], np.float32)
_CIFAR_STD = np.array([0.2470, 0.2435, 0.2616], np.float32)


@dataclasses.dataclass(frozen=True)
class Dataset:
    """Arrays of one dataset, standardised, channels last.

    Attributes:
      x_train: float32 ``[N, *spatial, C]``.
      y_train: int32 ``[N]``.
      x_test: float32 ``[M, *spatial, C]``.
      y_test: int32 ``[M]``.
      num_classes: number of labels.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int

    @property
    def ndim(self) -> int:
        """Number of spatial dimensions (1 for sequences, 2 for images)."""
        return self.x_train.ndim - 2

    @property
    def in_features(self) -> int:
        """Number of input channels."""
        return self.x_train.shape[-1]


def _read_only(data: Dataset) -> Dataset:
    for array in (data.x_train, data.y_train, data.x_test, data.y_test):
        array.flags.writeable = False
    return data


def _standardise(x_train: np.ndarray, x_test: np.ndarray):
    # One mean and std over the training set, so the test set sees the same transform.
    mean, std = x_train.mean(), x_train.std()
    return (
        ((x_train - mean) / std).astype(np.float32),
        ((x_test - mean) / std).astype(np.float32),
    )


@functools.cache
def load_digits() -> Dataset:
    """scikit-learn's 8x8 digits, stratified 1437/360 split (seed 0), ``[N, 8, 8, 1]``.

    Returns:
      The standardised :class:`Dataset` (cached; its arrays are read-only).
    """
    from sklearn.datasets import load_digits as _load
    from sklearn.model_selection import train_test_split

    flat, target = _load(return_X_y=True)
    x = np.asarray(flat, np.float32).reshape(-1, 8, 8, 1)
    y = np.asarray(target, np.int32)
    x_train, x_test, y_train, y_test = (
        np.asarray(a)
        for a in train_test_split(x, y, test_size=0.2, random_state=0, stratify=y)
    )
    x_train, x_test = _standardise(x_train, x_test)
    return _read_only(Dataset(x_train, y_train, x_test, y_test, num_classes=10))


@functools.cache
def load_mnist1d() -> Dataset:
    """MNIST-1D generated offline with the default arguments, ``[N, 40, 1]``.

    Returns:
      The standardised :class:`Dataset` (cached; its arrays are read-only).
    """
    from mnist1d.data import get_dataset_args, make_dataset

    # make_dataset reseeds numpy's global generator; keep the caller's state intact.
    state = np.random.get_state()  # noqa: NPY002 -- mnist1d uses the legacy API.
    try:
        data = make_dataset(get_dataset_args())
    finally:
        np.random.set_state(state)  # noqa: NPY002
    x_train, x_test = _standardise(
        np.asarray(data["x"], np.float32)[..., None],
        np.asarray(data["x_test"], np.float32)[..., None],
    )
    return _read_only(
        Dataset(
            x_train,
            np.asarray(data["y"], np.int32),
            x_test,
            np.asarray(data["y_test"], np.int32),
            num_classes=10,
        )
    )


def _numpy_array_globals() -> dict[tuple[str, str], Any]:
    # Taken from numpy's own pickling rather than imported from its private modules,
    # whose path moved in numpy 2 (numpy.core -> numpy._core); files written under
    # either spelling name the same two functions.
    reconstruct = np.zeros(1, np.uint8).__reduce__()[0]
    frombuffer = np.zeros(1, np.uint8).__reduce_ex__(5)[0]
    admitted: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }
    for core in ("numpy.core", "numpy._core"):
        admitted[f"{core}.multiarray", "_reconstruct"] = reconstruct
        admitted[f"{core}.numeric", "_frombuffer"] = frombuffer
    return admitted


# Every global a CIFAR-10 batch refers to. The files of cifar-10-python.tar.gz were
# pickled by Python 2 (protocol 2): dicts, lists, str, ints and one uint8 array,
# rebuilt by ``_reconstruct(ndarray, ...)`` and ``dtype``. Pickles written since
# (protocol 4, or 5 by default from Python 3.14) use ``_frombuffer`` and ``dtype``.
_CIFAR_GLOBALS = _numpy_array_globals()


class _RefusedGlobal(pickle.UnpicklingError):
    """A pickle refers to a global that a CIFAR-10 batch never holds."""


class _CifarUnpickler(pickle.Unpickler):
    """Reads a CIFAR-10 batch as data: only :data:`_CIFAR_GLOBALS` resolve.

    Every way a pickle can reach code (``GLOBAL``, ``STACK_GLOBAL``, ``INST``,
    ``EXT*``) resolves its callable through :meth:`find_class`, which refuses any
    other global before it is imported or called.
    """

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _CIFAR_GLOBALS[module, name]
        except KeyError:
            raise _RefusedGlobal(f"{module}.{name}") from None


def _read_cifar_batch(path: str) -> tuple[np.ndarray, np.ndarray]:
    expected = (
        "expected a pickled dict with b'data' (uint8 [N, 3072]) and b'labels' (N ints "
        "in 0..9) as in cifar-10-python.tar.gz"
    )
    try:
        with open(path, "rb") as f:
            # Python 2's str keys come back as bytes, as the format documents them.
            batch = _CifarUnpickler(f, encoding="bytes").load()
    except _RefusedGlobal as e:
        raise DataError(
            f"Refused CIFAR-10 batch file {path!r}: it refers to the global '{e}', "
            "which a CIFAR-10 batch never holds (only dicts, lists, bytes, str, ints "
            "and numpy arrays); nothing in the file was run."
        ) from None
    # What unpickling a file that is not a pickle raises.
    except (
        OSError,
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        AttributeError,
        IndexError,
        KeyError,
    ) as e:
        raise DataError(
            f"Malformed CIFAR-10 batch file {path!r}: {expected} "
            f"({type(e).__name__}: {e})."
        ) from e
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise DataError(f"Malformed CIFAR-10 batch file {path!r}: {expected}.")
    data = np.asarray(batch[b"data"])
    labels = np.asarray(batch[b"labels"])
    if (
        data.dtype != np.uint8
        or data.ndim != 2
        or data.shape[1] != 3072
        or labels.shape != (len(data),)
        or not np.issubdtype(labels.dtype, np.integer)
        or (len(labels) and (labels.min() < 0 or labels.max() > 9))
    ):
        raise DataError(
            f"Malformed CIFAR-10 batch file {path!r}: {expected}; got data "
            f"{data.dtype} {data.shape}, labels {labels.dtype} {labels.shape}."
        )
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return images, labels.astype(np.int32)


def cifar10_dir(data_dir: str | os.PathLike | None) -> str:
    """The directory holding the CIFAR-10 batch files; checks they exist.

    Reads nothing but the directory listing.

    Args:
      data_dir: the directory holding ``data_batch_1``..``data_batch_5`` and
        ``test_batch``, or its parent holding ``cifar-10-batches-py/``.

    Returns:
      The directory with the batch files.

    Raises:
      DataError: when the directory is not given, does not exist or lacks a
        batch file.
    """
    if data_dir is None or str(data_dir) == "":
        raise DataError(
            "dataset 'cifar10' needs data_dir (--data_dir): a local directory with the "
            "python-pickle batches of cifar-10-python.tar.gz; nothing is downloaded."
        )
    data_dir = os.fspath(data_dir)
    if not os.path.isdir(data_dir):
        raise DataError(f"CIFAR-10 --data_dir {data_dir!r} does not exist.")
    nested = os.path.join(data_dir, "cifar-10-batches-py")
    if not os.path.exists(os.path.join(data_dir, _CIFAR_TEST_FILE)) and os.path.isdir(
        nested
    ):
        data_dir = nested
    expected = (*_CIFAR_TRAIN_FILES, _CIFAR_TEST_FILE)
    missing = [f for f in expected if not os.path.isfile(os.path.join(data_dir, f))]
    if missing:
        raise DataError(
            f"CIFAR-10 --data_dir {data_dir!r} lacks {missing}; expected the files "
            f"{list(expected)} of cifar-10-python.tar.gz."
        )
    return data_dir


def load_cifar10(data_dir: str | os.PathLike | None) -> Dataset:
    """CIFAR-10 from a local python-pickle directory, ``[N, 32, 32, 3]``.

    Args:
      data_dir: the directory holding ``data_batch_1``..``data_batch_5`` and
        ``test_batch``, or its parent holding ``cifar-10-batches-py/``.

    Returns:
      The dataset, standardised with the usual per-channel CIFAR-10 mean and std.

    Raises:
      DataError: when the directory is not given, does not exist, lacks a batch file
        or holds a malformed one.
    """
    data_dir = cifar10_dir(data_dir)
    train = [_read_cifar_batch(os.path.join(data_dir, f)) for f in _CIFAR_TRAIN_FILES]
    x_test, y_test = _read_cifar_batch(os.path.join(data_dir, _CIFAR_TEST_FILE))
    x_train = np.concatenate([x for x, _ in train])
    y_train = np.concatenate([y for _, y in train])

    def norm(x: np.ndarray) -> np.ndarray:
        return ((x.astype(np.float32) / 255.0 - _CIFAR_MEAN) / _CIFAR_STD).astype(
            np.float32
        )

    return Dataset(norm(x_train), y_train, norm(x_test), y_test, num_classes=10)


def check_source(name: str, data_dir: str | os.PathLike | None = None) -> None:
    """Checks, without loading, that dataset ``name`` can be read.

    Args:
      name: one of ``DATASETS``.
      data_dir: the CIFAR-10 directory (cifar10 only).

    Raises:
      DataError: for an unknown name or a missing CIFAR-10 directory or file.
    """
    if name not in DATASETS:
        raise DataError(f"Unknown dataset {name!r}; choose one of {list(DATASETS)}.")
    if name == "cifar10":
        cifar10_dir(data_dir)


def load_dataset(name: str, data_dir: str | os.PathLike | None = None) -> Dataset:
    """Loads one of ``DATASETS`` by name.

    Args:
      name: "digits", "mnist1d" or "cifar10".
      data_dir: local CIFAR-10 directory; used only by "cifar10".

    Returns:
      The :class:`Dataset`.
    """
    if name == "digits":
        return load_digits()
    if name == "mnist1d":
        return load_mnist1d()
    if name == "cifar10":
        return load_cifar10(data_dir)
    raise DataError(f"Unknown dataset {name!r}; choose one of {list(DATASETS)}.")


def training_set(
    data: Dataset, *, train_size: int | None, label_noise: float, seed: int
) -> Dataset:
    """The training set a run sees: a seeded subset with seeded label noise.

    The subset is the first ``train_size`` examples of the permutation
    ``default_rng([seed, 0])``; then exactly ``round(label_noise * n)`` of its
    labels, chosen by ``default_rng([seed, 1])``, are replaced by a class drawn
    uniformly from the *other* classes. The test set is returned unchanged.

    Args:
      data: the full dataset.
      train_size: the number of training examples to keep (None: all).
      label_noise: the fraction of training labels to corrupt, in ``[0, 1)``.
      seed: the data seed (independent of the runs' seeds).

    Returns:
      A :class:`Dataset` (the input itself when neither option is set).

    Raises:
      DataError: when ``train_size`` exceeds the training set.

    Examples:
      >>> import numpy as np
      >>> from nsf_optax.experiments.resnet import input_pipeline
      >>> y = np.arange(1000, dtype=np.int32) % 10
      >>> x = np.zeros((1000, 4, 1), np.float32)
      >>> data = input_pipeline.Dataset(x, y, x[:10], y[:10], num_classes=10)
      >>> noisy = input_pipeline.training_set(
      ...     data, train_size=None, label_noise=0.2, seed=0)
      >>> float(np.mean(noisy.y_train != y)), bool((noisy.y_test == y[:10]).all())
      (0.2, True)
    """
    x, y = data.x_train, data.y_train
    if train_size is not None:
        if train_size > len(y):
            raise DataError(
                f"train_size ({train_size}) exceeds the {len(y)} training examples."
            )
        perm = np.random.default_rng([seed, 0]).permutation(len(y))
        keep = np.sort(perm[:train_size])
        x, y = x[keep], y[keep]
    if label_noise > 0:
        rng = np.random.default_rng([seed, 1])
        flip = rng.permutation(len(y))[: round(label_noise * len(y))]
        shift = rng.integers(1, data.num_classes, len(flip))
        y = y.copy()
        y[flip] = (y[flip] + shift) % data.num_classes
    if x is data.x_train and y is data.y_train:
        return data
    return _read_only(
        Dataset(x, y.astype(np.int32), data.x_test, data.y_test, data.num_classes)
    )


def steps_per_epoch(num_examples: int, batch_size: int) -> int:
    """Full batches per epoch (the remainder of each permutation is dropped)."""
    return num_examples // batch_size


def batch_indices(
    seed: int, step: int, num_examples: int, batch_size: int
) -> np.ndarray:
    """Indices of the global training batch at ``step`` (0-based).

    Args:
      seed: the data-order seed.
      step: the training step.
      num_examples: size of the training set (>= batch_size).
      batch_size: global batch size.

    Returns:
      int64 ``[batch_size]``: epoch ``step // steps_per_epoch`` is the permutation
      ``default_rng([seed, epoch]).permutation(num_examples)``, cut into full batches.
    """
    per_epoch = steps_per_epoch(num_examples, batch_size)
    epoch, position = divmod(step, per_epoch)
    perm = np.random.default_rng([seed, epoch]).permutation(num_examples)
    return perm[position * batch_size : (position + 1) * batch_size]


def process_slice(batch_size: int) -> slice:
    """This host's slice of a global batch (the whole batch on a single host)."""
    per_process = batch_size // jax.process_count()
    start = jax.process_index() * per_process
    return slice(start, start + per_process)


def augment(
    key: jax.Array, x: jax.Array, *, crop_padding: int, flip: bool
) -> jax.Array:
    """Random crop (after zero padding) and optional horizontal flip, per example.

    Jit-compatible and deterministic in ``key``. Zero padding is the dataset mean since
    inputs are standardised.

    Args:
      key: a PRNG key.
      x: ``[B, *spatial, C]`` with 1 or 2 spatial dimensions.
      crop_padding: pad each spatial side by this many pixels, then crop back to the
        input size at a random offset (0 disables cropping).
      flip: flip the last spatial axis (width) with probability 1/2.

    Returns:
      The augmented batch, same shape and dtype as ``x``.
    """
    ndim = x.ndim - 2
    crop_key, flip_key = jax.random.split(key)
    if crop_padding > 0:
        pad = [(0, 0)] + [(crop_padding, crop_padding)] * ndim + [(0, 0)]
        padded = jnp.pad(x, pad)
        offsets = jax.random.randint(
            crop_key, (x.shape[0], ndim), 0, 2 * crop_padding + 1
        )

        def crop(image: jax.Array, offset: jax.Array) -> jax.Array:
            start = (*(offset[i] for i in range(ndim)), 0)
            return jax.lax.dynamic_slice(image, start, x.shape[1:])

        x = jax.vmap(crop)(padded, offsets)
    if flip:
        mask = jax.random.bernoulli(flip_key, 0.5, (x.shape[0],))
        mask = mask.reshape((-1,) + (1,) * (x.ndim - 1))
        x = jnp.where(mask, jnp.flip(x, axis=ndim), x)
    return x
