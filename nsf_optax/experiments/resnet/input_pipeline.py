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

The sources are one table, :data:`DATASETS` (name -> :class:`Source`: its loader,
its check without loading, its shape facts), which ``Config.dataset``'s choices
come from: adding a data set is one entry here. This module loads numpy and jax only
where they are used, so that the command lines read the table (and refuse a
mistake) before either loads.

The batch order is a pure function of ``(seed, step)``: every epoch is a fresh
permutation drawn from ``numpy.random.default_rng([seed, epoch])``. A resumed run
therefore sees exactly the batches an uninterrupted run would, and every host of a
multi-host job computes the same global batch and keeps its own slice of it.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from nsf_optax.experiments.resnet._dataset import Dataset
from nsf_optax.experiments.runner.errors import ConfigError, DataError

if TYPE_CHECKING:
    import jax
    import numpy as np


def _read_only(data: Dataset) -> Dataset:
    for array in (data.x_train, data.y_train, data.x_test, data.y_test):
        array.flags.writeable = False
    return data


def _standardise(x_train: np.ndarray, x_test: np.ndarray):
    # One mean and std over the training set, so the test set sees the same transform.
    import numpy as np

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
    import numpy as np
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
    import numpy as np
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


@dataclasses.dataclass(frozen=True)
class Source:
    """One data set of :data:`DATASETS`: how to check and load it, and its shape.

    Attributes:
      load: ``load(data_dir)`` returns the :class:`Dataset`.
      check: ``check(data_dir)`` checks, without loading, that it can be read;
        raises :class:`DataError`.
      ndim: its spatial dimensions (1 for sequences, 2 for images).
      data_dir: what ``data_dir`` must hold ("" when the source needs none).
      help: one line for ``--help``.
      train_examples: the size of its training set when known without loading
        it (None: known once loaded, e.g. a directory's files), so that sizes
        are checked before jax loads.
    """

    load: Callable[[str | os.PathLike | None], Dataset]
    check: Callable[[str | os.PathLike | None], None]
    ndim: int
    data_dir: str
    help: str
    train_examples: int | None = None


def _no_check(data_dir: str | os.PathLike | None) -> None:
    del data_dir  # generated or embedded: nothing to read


def _check_cifar10(data_dir: str | os.PathLike | None) -> None:
    cifar10_dir(data_dir)


def cifar10_dir(data_dir: str | os.PathLike | None) -> str:
    """See :func:`._cifar10.cifar10_dir` (reads the directory listing only)."""
    from nsf_optax.experiments.resnet import _cifar10

    return _cifar10.cifar10_dir(data_dir)


def load_cifar10(data_dir: str | os.PathLike | None) -> Dataset:
    """See :func:`._cifar10.load_cifar10` (CIFAR-10 from a local directory)."""
    from nsf_optax.experiments.resnet import _cifar10

    return _cifar10.load_cifar10(data_dir)


DATASETS: dict[str, Source] = {
    "digits": Source(
        lambda data_dir: load_digits(),
        _no_check,
        ndim=2,
        data_dir="",
        help="scikit-learn's 8x8 digits",
        train_examples=1437,
    ),
    "mnist1d": Source(
        lambda data_dir: load_mnist1d(),
        _no_check,
        ndim=1,
        data_dir="",
        help="MNIST-1D, generated procedurally",
        train_examples=4000,
    ),
    "cifar10": Source(
        load_cifar10,
        _check_cifar10,
        ndim=2,
        data_dir="a local directory with the python-pickle batches of "
        "cifar-10-python.tar.gz",
        help="CIFAR-10 read from data_dir",
    ),
}


def get_source(name: str) -> Source:
    """The :data:`DATASETS` entry ``name``.

    Raises:
      DataError: for an unknown name, naming the choices.
    """
    if name not in DATASETS:
        raise DataError(f"Unknown dataset {name!r}; choose one of {list(DATASETS)}.")
    return DATASETS[name]


def check_source(name: str, data_dir: str | os.PathLike | None = None) -> None:
    """Checks, without loading, that dataset ``name`` can be read.

    Args:
      name: a key of ``DATASETS``.
      data_dir: the data directory (for the sources that read one).

    Raises:
      DataError: for an unknown name or a source that cannot be read (a missing
        CIFAR-10 directory or file).
    """
    get_source(name).check(data_dir)


def load_dataset(name: str, data_dir: str | os.PathLike | None = None) -> Dataset:
    """Loads one of ``DATASETS`` by name.

    Args:
      name: "digits", "mnist1d", "cifar10" or another key of ``DATASETS``.
      data_dir: the data directory (for the sources that read one).

    Returns:
      The :class:`Dataset`.

    Raises:
      DataError: for an unknown name (naming the choices) or an unreadable source.
    """
    return get_source(name).load(data_dir)


def training_set(
    data: Dataset,
    *,
    train_size: int | None,
    label_noise: float,
    seed: int,
    val_fraction: float = 0.0,
) -> Dataset:
    """The training set a run sees: a seeded subset with seeded label noise, and
    optionally a held-out validation part in place of the test set.

    The subset is the first ``train_size`` examples of the permutation
    ``default_rng([seed, 0])``; then exactly ``round(label_noise * n)`` of its
    labels, chosen by ``default_rng([seed, 1])``, are replaced by a class drawn
    uniformly from the *other* classes. With ``val_fraction`` > 0, the first
    ``round(val_fraction * n)`` examples of the permutation
    ``default_rng([seed, 2])`` of that (noisy) subset are held out: they become
    the returned test arrays (so evaluation scores the held-out part) and the run
    trains on the rest. Otherwise the test set is returned unchanged.

    Args:
      data: the full dataset.
      train_size: the number of training examples to keep (None: all).
      label_noise: the fraction of training labels to corrupt, in ``[0, 1)``.
      seed: the data seed (independent of the runs' seeds).
      val_fraction: the fraction of the (subset, noisy) training set held out
        for validation, in ``[0, 0.5)``; 0 keeps the test set.

    Returns:
      A :class:`Dataset` (the input itself when no option is set).

    Raises:
      DataError: when ``train_size`` exceeds the training set.

    Examples:
      >>> from nsf_optax.experiments.resnet import input_pipeline
      >>> import numpy as np
      >>> y = np.arange(1000, dtype=np.int32) % 10
      >>> x = np.zeros((1000, 4, 1), np.float32)
      >>> data = input_pipeline.Dataset(x, y, x[:10], y[:10], num_classes=10)
      >>> noisy = input_pipeline.training_set(
      ...     data, train_size=None, label_noise=0.2, seed=0)
      >>> float(np.mean(noisy.y_train != y)), bool((noisy.y_test == y[:10]).all())
      (0.2, True)
      >>> split = input_pipeline.training_set(
      ...     data, train_size=None, label_noise=0.0, seed=0, val_fraction=0.1)
      >>> len(split.y_train), len(split.y_test)
      (900, 100)
    """
    import numpy as np

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
    x_test, y_test = data.x_test, data.y_test
    if val_fraction > 0:
        perm = np.random.default_rng([seed, 2]).permutation(len(y))
        held = np.sort(perm[: round(val_fraction * len(y))])
        rest = np.sort(perm[round(val_fraction * len(y)) :])
        x_test, y_test = x[held], y[held]
        x, y = x[rest], y[rest]
    if x is data.x_train and y is data.y_train:
        return data
    return _read_only(
        Dataset(
            x,
            y.astype(np.int32, copy=False),
            x_test,
            y_test.astype(np.int32, copy=False),
            data.num_classes,
        )
    )


def split_sizes(num_examples: int, val_fraction: float) -> tuple[int, int]:
    """``(train, held_out)``: how :func:`training_set` splits ``num_examples``.

    Examples:
      >>> split_sizes(1437, 0.1)
      (1293, 144)
    """
    held = round(val_fraction * num_examples)
    return num_examples - held, held


def check_split(num_examples: int, val_fraction: float, batch_size: int) -> None:
    """Refuses a split of ``num_examples`` (after ``train_size``) whose held-out
    part (with ``val_fraction`` > 0) is empty or whose training part is smaller
    than ``batch_size``. A held-out part smaller than the evaluation batch is one
    padded batch, as the test set's last one is.

    Raises:
      ConfigError: naming ``val_fraction`` or ``batch_size``.
    """
    train, held = split_sizes(num_examples, val_fraction)
    if val_fraction > 0 and held < 1:
        raise ConfigError(
            f"val_fraction ({val_fraction:g}) holds out {held} of the "
            f"{num_examples} training examples; it must hold out at least one.",
            ("val_fraction",),
        )
    if batch_size > train:
        rest = " left after val_fraction" if val_fraction > 0 else ""
        raise ConfigError(
            f"batch_size ({batch_size}) exceeds the {train} training examples{rest}.",
            ("batch_size",),
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
    import numpy as np

    per_epoch = steps_per_epoch(num_examples, batch_size)
    epoch, position = divmod(step, per_epoch)
    perm = np.random.default_rng([seed, epoch]).permutation(num_examples)
    return perm[position * batch_size : (position + 1) * batch_size]


def process_slice(batch_size: int) -> slice:
    """This host's slice of a global batch (the whole batch on a single host)."""
    import jax

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
    import jax
    import jax.numpy as jnp

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
