"""Defensive branches, each with a test that fails when the branch is removed."""

import fcntl
import json
import os

import numpy as np
import pytest

from nsf_optax.experiments.runner import checkpointing, workdirs
from nsf_optax.experiments.runner.errors import CheckpointError, WorkdirLockedError


def test_array_digest_covers_the_dtype_of_identical_bytes():
    # Same key, shape and bytes; only the dtype differs.
    floats = np.array([1.0, -2.5, 0.0, 3e38], np.float32)
    ints = floats.view(np.int32)
    assert floats.tobytes() == ints.tobytes() and floats.shape == ints.shape
    assert checkpointing.array_digest({"a": floats}) != checkpointing.array_digest(
        {"a": ints}
    )


def _nan_checkpoint(directory):
    ckpts = checkpointing.Checkpoints(directory)
    w = np.linspace(0, 1, 64, dtype=np.float32)
    w[:3] = np.nan
    ckpts.save(1, {"model": {"w": w}}, {})
    ckpts.close()
    return ckpts


@pytest.mark.parametrize("recorded", [{}, {"model/w": 2}, {"model/w": 3, "model/b": 1}])
def test_load_refuses_non_finite_counts_that_differ_from_the_digest(tmp_path, recorded):
    ckpts = _nan_checkpoint(tmp_path)
    assert ckpts.load(1).nonfinite == {"model/w": 3}
    # A digest whose arrays still match but whose non-finite record was changed
    # (e.g. edited to hide a divergence) must not verify.
    path = tmp_path / "1" / checkpointing.DIGEST_FILE
    digest = json.loads(path.read_text())
    digest["nonfinite"] = recorded
    path.write_text(json.dumps(digest))
    with pytest.raises(CheckpointError, match="non-finite values differ") as info:
        ckpts.load(1)
    assert "step 1" in str(info.value) and "\n" not in str(info.value)


def test_lock_taken_on_a_file_unlinked_meanwhile_is_retried(tmp_path, monkeypatch):
    # The race: this process opens .lock, the holder releases (unlinks, then
    # closes), a third run creates a new .lock and locks it, and only then does
    # this process lock its now-unlinked file. It must see that and be refused by
    # the third run's lock rather than hold a lock that nobody else can see.
    real_flock = fcntl.flock
    third = workdirs.Lock(tmp_path)
    raced = []

    def flock_after_the_race(fd, operation):
        if not raced:
            raced.append(fd)
            (tmp_path / workdirs.LOCK_NAME).unlink()
            third.__enter__()
        return real_flock(fd, operation)

    monkeypatch.setattr(fcntl, "flock", flock_after_the_race)
    try:
        with pytest.raises(WorkdirLockedError, match="is in use by pid"):
            with workdirs.Lock(tmp_path):
                pass
        assert raced
    finally:
        monkeypatch.undo()
        third.__exit__(None, None, None)
    assert not (tmp_path / workdirs.LOCK_NAME).exists()


def test_lock_file_unlinked_before_the_lock_is_taken_is_recreated(
    tmp_path, monkeypatch
):
    # The same race with no third run: the lock must be on the file at the path.
    real_flock = fcntl.flock
    raced = []

    def flock_after_unlink(fd, operation):
        if not raced:
            raced.append(fd)
            (tmp_path / workdirs.LOCK_NAME).unlink()
        return real_flock(fd, operation)

    monkeypatch.setattr(fcntl, "flock", flock_after_unlink)
    with workdirs.Lock(tmp_path):
        monkeypatch.undo()
        path = tmp_path / workdirs.LOCK_NAME
        assert raced and json.loads(path.read_text())["pid"] == os.getpid()
        with pytest.raises(WorkdirLockedError, match=f"is in use by pid {os.getpid()}"):
            with workdirs.Lock(tmp_path):
                pass
