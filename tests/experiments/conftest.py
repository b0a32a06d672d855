"""Fixtures for the example tests: a tiny CIFAR-10 directory in the pickle format."""

import pickle

import numpy as np
import pytest


def write_fake_cifar10(directory, per_batch: int = 8, seed: int = 0):
    """Writes data_batch_1..5 and test_batch with ``per_batch`` random images each."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {
            b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
            b"labels": rng.integers(0, 10, per_batch).tolist(),
        }
        with open(directory / name, "wb") as f:
            pickle.dump(batch, f)
    return directory


@pytest.fixture
def fake_cifar10(tmp_path):
    return write_fake_cifar10(tmp_path / "cifar-10-batches-py")
