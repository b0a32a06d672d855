"""CIFAR-10 read from a local directory of python-pickle batches, as data.

The batches are read as data: their unpickler admits only numpy's array and dtype
rebuilders, so a file that refers to any other global (``os.system``,
``builtins.exec``...) is refused before any of it runs.
"""

from __future__ import annotations

import os
import pickle
from typing import Any

import numpy as np

from nsf_optax.experiments.resnet._dataset import Dataset
from nsf_optax.experiments.runner.errors import DataError

_CIFAR_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
_CIFAR_TEST_FILE = "test_batch"
_CIFAR_MEAN = np.array([0.4914, 0.4822, 0.4465], np.float32)
_CIFAR_STD = np.array([0.2470, 0.2435, 0.2616], np.float32)


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
