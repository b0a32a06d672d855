"""Verified checkpoints: digest, read-back, retention, standard orbax restore."""

import json
import os
import shutil

import jax
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest
from flax import nnx

from nsf_optax.experiments.resnet import models
from nsf_optax.experiments.runner import checkpointing
from nsf_optax.experiments.runner.errors import CheckpointError

from ._files import snapshot


def _items(value: float = 0.0):
    # One array large enough for orbax to store it out of line, as real weights.
    return {
        "model": {"w": np.linspace(0, 1, 20_000, dtype=np.float32) + value},
        "rng": {"key": np.array([0, value], np.uint32)},
    }


def _largest_file(directory):
    files = [os.path.join(r, f) for r, _, fs in os.walk(directory) for f in fs]
    return max(files, key=os.path.getsize)


def test_save_verifies_digests_and_keeps_the_newest(tmp_path):
    ckpts = checkpointing.Checkpoints(tmp_path, keep=2)
    for step in (1, 2, 3):
        ckpts.save(step, _items(step), {"step": step, "config": {"seed": 0}})
    ckpts.close()
    assert ckpts.steps() == ckpts.verified_steps() == [2, 3]
    with open(tmp_path / "3" / checkpointing.DIGEST_FILE) as f:
        digest = json.load(f)
    flat = checkpointing.flatten(_items(3)["model"])
    assert digest["items"]["model"] == checkpointing.array_digest(flat)
    loaded = ckpts.find_resume()
    assert loaded.step == 3 and loaded.newer == () and loaded.nonfinite == {}
    np.testing.assert_array_equal(loaded.items["model"]["w"], flat["w"])
    assert loaded.meta == {"step": 3, "config": {"seed": 0}}


def test_digest_covers_bytes_shapes_dtypes_and_keys():
    base = {"a": np.arange(4, dtype=np.float32)}
    digest = checkpointing.array_digest(base)
    for other in (
        {"a": np.arange(4, dtype=np.float32)[::-1]},
        {"a": np.arange(4, dtype=np.float32).reshape(2, 2)},
        {"a": np.arange(4, dtype=np.int32)},
        {"b": np.arange(4, dtype=np.float32)},
    ):
        assert checkpointing.array_digest(other) != digest
    assert checkpointing.array_digest(dict(base)) == digest


def test_a_failed_write_deletes_nothing(tmp_path, monkeypatch):
    ckpts = checkpointing.Checkpoints(tmp_path, keep=1)
    ckpts.save(1, _items(1), {})
    real_read = checkpointing.Checkpoints._read

    def bad_read(self, step, names):
        items, meta = real_read(self, step, names)
        items["model"]["w"] = items["model"]["w"] + 1  # what a failing disk returns
        return items, meta

    monkeypatch.setattr(checkpointing.Checkpoints, "_read", bad_read)
    with pytest.raises(CheckpointError, match=r"read back different .* \[1\] are kept"):
        ckpts.save(2, _items(2), {})
    monkeypatch.undo()
    ckpts.close()
    # Step 1 (the newest verified) survives; step 2 stays unverified.
    assert ckpts.steps() == [1, 2] and ckpts.verified_steps() == [1]
    loaded = ckpts.find_resume()
    assert loaded.step == 1 and loaded.newer == (2,)


def test_a_crash_before_the_digest_keeps_the_older_checkpoint(tmp_path, monkeypatch):
    ckpts = checkpointing.Checkpoints(tmp_path, keep=1)
    ckpts.save(1, _items(1), {})

    def crash(path, text):
        raise KeyboardInterrupt  # killed between the arrays and the digest

    monkeypatch.setattr(checkpointing, "_write_atomically", crash)
    with pytest.raises(KeyboardInterrupt):
        ckpts.save(2, _items(2), {})
    ckpts.close()
    assert ckpts.verified_steps() == [1] and ckpts.steps() == [1, 2]


def test_silently_changed_arrays_fail_verification(tmp_path):
    ckpts = checkpointing.Checkpoints(tmp_path)
    ckpts.save(1, _items(1), {})
    ckpts.save(2, _items(2), {})
    ckpts.close()
    # A readable item with other values: what flipped bytes inside an uncompressed
    # chunk give back (no read error, wrong numbers).
    other = _items(2)
    other["model"]["w"][123] = 3e38
    scratch = checkpointing.Checkpoints(tmp_path.parent / f"{tmp_path.name}-scratch")
    scratch.save(2, other, {})
    scratch.close()
    shutil.rmtree(tmp_path / "2" / "model")
    shutil.copytree(
        os.path.join(scratch.directory, "2", "model"), tmp_path / "2" / "model"
    )
    before = snapshot(tmp_path)
    with pytest.raises(CheckpointError) as info:
        ckpts.find_resume()
    message = str(info.value)
    assert "\n" not in message
    assert "step 2" in message and "model changed on disk" in message
    assert "Older verified checkpoints: step 1" in message
    assert "--resume_step 1" in message
    assert snapshot(tmp_path) == before
    # The named fallback works, and the corrupt step is moved aside, not deleted.
    loaded = ckpts.find_resume(1)
    assert loaded.step == 1 and loaded.newer == (2,)
    moved = ckpts.set_aside(loaded.newer, tmp_path / "aside")
    assert moved == [str(tmp_path / "aside" / "2")] and ckpts.steps() == [1]


def _as_format_1(step_dir):
    # A digest written before file digests: orbax's read meets the bad file.
    path = step_dir / checkpointing.DIGEST_FILE
    digest = json.loads(path.read_text())
    del digest["files"]
    digest["format"] = "nsf-optax-checkpoint-digest/1"
    path.write_text(json.dumps(digest))


def test_unreadable_data_is_one_line_and_other_errors_propagate(tmp_path, monkeypatch):
    ckpts = checkpointing.Checkpoints(tmp_path)
    ckpts.save(1, _items(1), {})
    ckpts.close()
    data = _largest_file(tmp_path / "1" / "model")
    with open(data, "r+b") as f:
        f.write(bytes(os.path.getsize(data)))  # zeros: no longer a zstd frame
    with pytest.raises(
        CheckpointError,
        match=r"model changed on disk since it was written \(file model/",
    ):
        ckpts.find_resume()  # the file digest, before orbax reads
    _as_format_1(tmp_path / "1")
    before = snapshot(tmp_path)
    with pytest.raises(CheckpointError) as info:
        ckpts.find_resume()
    # orbax raises a bare Exception (with a 60-line spec) caused by a ValueError.
    assert "cannot be read (ValueError: " in str(info.value)
    assert "\n" not in str(info.value) and len(str(info.value)) < 500
    assert snapshot(tmp_path) == before

    def bug(*args, **kwargs):
        raise RuntimeError("a bug, not a bad file")

    monkeypatch.setattr(ocp.Checkpointer, "restore", bug)
    with pytest.raises(RuntimeError, match="a bug"):
        ckpts.find_resume()


def test_unreadable_and_missing_checkpoints_are_one_line(tmp_path):
    ckpts = checkpointing.Checkpoints(tmp_path)
    with pytest.raises(CheckpointError, match="No checkpoint to resume from"):
        ckpts.find_resume()
    ckpts.save(1, _items(1), {})
    ckpts.close()
    os.remove(tmp_path / "1" / "model" / "_METADATA")
    with pytest.raises(CheckpointError, match="model changed on disk"):
        ckpts.find_resume()  # the file digest
    _as_format_1(tmp_path / "1")
    with pytest.raises(CheckpointError) as info:
        ckpts.find_resume()
    assert "cannot be read (FileNotFoundError" in str(info.value)
    assert "\n" not in str(info.value) and len(str(info.value)) < 400
    with pytest.raises(CheckpointError, match="--resume_step 5: there is no such"):
        ckpts.find_resume(5)


def test_non_finite_checkpoints_are_refused_unless_finished(tmp_path):
    ckpts = checkpointing.Checkpoints(tmp_path)
    ckpts.save(1, _items(1), {})
    diverged = _items(2)
    diverged["model"]["w"][:3] = np.nan
    ckpts.save(2, diverged, {})
    ckpts.close()
    with pytest.raises(CheckpointError, match=r"non-finite values \(3 in model/w\)"):
        ckpts.find_resume()
    assert ckpts.find_resume(nonfinite_from=2).nonfinite == {"model/w": 3}


def test_reserved_names_and_keep():
    with pytest.raises(ValueError, match="keep"):
        checkpointing.Checkpoints("unused", keep=0)
    with pytest.raises(ValueError, match="reserved"):
        checkpointing.Checkpoints("unused").save(1, {"metrics": {"a": np.ones(2)}}, {})


def _tiny_model(seed):
    return models.create_model("tiny", num_classes=10, in_features=1, ndim=2, seed=seed)


def _assert_same(a, b):
    leaves_a, leaves_b = jax.tree.leaves(nnx.state(a)), jax.tree.leaves(nnx.state(b))
    for x, y in zip(leaves_a, leaves_b, strict=True):
        np.testing.assert_array_equal(x, y)


def test_standard_orbax_restore_reads_the_model(tmp_path):
    model = _tiny_model(seed=0)
    optimizer = nnx.Optimizer(model, optax.adam(1e-3), wrt=nnx.Param)
    ckpts = checkpointing.Checkpoints(tmp_path)
    ckpts.save(
        7, {"model": nnx.state(model), "optimizer": nnx.state(optimizer)}, {"step": 7}
    )
    ckpts.close()
    # The flax checkpointing guide's restore, untouched.
    abstract = nnx.eval_shape(lambda: _tiny_model(seed=1))
    graphdef, abstract_state = nnx.split(abstract)
    state = ocp.StandardCheckpointer().restore(tmp_path / "7" / "model", abstract_state)
    restored = nnx.merge(graphdef, state)
    _assert_same(restored, model)
    # And our own loader puts the arrays back into a fresh model's structure.
    loaded = ckpts.find_resume()
    arrays = checkpointing.restore_into(
        loaded.items["model"], abstract_state, name="model"
    )
    _assert_same(nnx.merge(graphdef, arrays), model)
    wider = nnx.eval_shape(
        lambda: models.create_model(
            "tiny", num_classes=10, in_features=1, ndim=2, seed=0, num_filters=8
        )
    )
    with pytest.raises(CheckpointError, match="other shape or dtype"):
        checkpointing.restore_into(
            loaded.items["model"], nnx.state(wider), name="model"
        )
