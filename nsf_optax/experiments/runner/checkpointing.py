"""Verified orbax checkpoints of named pytrees: written, read back, digested, kept.

A checkpoint is one orbax step directory ``<directory>/<step>/`` holding one item
per named pytree (``{"model": nnx.state(model), "optimizer": ...}``: plain
``StandardSave`` items, so the usual restore code reads them, e.g.
``ocp.StandardCheckpointer().restore(<step>/model, nnx.state(abstract_model))``), a
JSON item ``meta``, and ``digest.json``. The digest is written last, after the
arrays have been read back from disk and found identical to what was saved: a step
directory without it is an interrupted save. It records, per item, a SHA-256 over
every array's path, dtype, shape and bytes in a fixed (sorted) order, the SHA-256
of the canonical JSON of ``meta`` (the config travels in it), the non-finite
counts, and the SHA-256 of every file the items and ``meta`` were written to
(checked before orbax reads them: :func:`.preflight.verify_files`).

Before a run continues, :meth:`Checkpoints.find_resume` reads the checkpoint,
recomputes the digest and checks finiteness; a mismatch is one
:class:`~nsf_optax.experiments.runner.errors.CheckpointError` line naming the step, the
older
checkpoints that still verify, and ``--resume_step`` to continue from one of them.
Nothing is written while checking. Retention keeps the ``keep`` newest verified
checkpoints and deletes an older one only after a newer one is verified, so a
crash, a full disk or a corrupt write never leaves a run without its newest
verified checkpoint.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import shutil
import warnings
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import numpy as np
import orbax.checkpoint as ocp
from etils import epath

from nsf_optax.experiments.runner import preflight
from nsf_optax.experiments.runner.errors import CheckpointError

DIGEST_FILE = preflight.DIGEST_FILE
DIGEST_FORMAT = preflight.DIGEST_FORMAT
# "meta" is ours; orbax's CheckpointManager reserves "metrics".
RESERVED_NAMES = ("meta", "metrics")

FlatArrays = dict[str, np.ndarray]


def key_string(path: tuple[Any, ...]) -> str:
    """A pytree key path as "a/b/0/value" (dict keys, attributes, indices)."""
    parts = []
    for entry in path:
        for attr in ("key", "name", "idx"):  # DictKey, GetAttrKey, SequenceKey
            if hasattr(entry, attr):
                parts.append(str(getattr(entry, attr)))
                break
        else:
            parts.append(str(entry))
    return "/".join(parts)


def flatten(tree: Any) -> FlatArrays:
    """A pytree as ``{"a/b/0/value": host array}`` (the keys orbax's items get)."""
    leaves, _ = jax.tree_util.tree_flatten_with_path(tree)
    return {key_string(path): np.asarray(leaf) for path, leaf in leaves}


def array_digest(flat: Mapping[str, np.ndarray]) -> str:
    """SHA-256 over each array's key, dtype, shape and bytes, keys sorted."""
    h = hashlib.sha256()
    for key in sorted(flat):
        array = np.ascontiguousarray(flat[key])
        h.update(json.dumps([key, array.dtype.name, list(array.shape)]).encode())
        h.update(array.tobytes())
    return h.hexdigest()


def json_digest(obj: Any) -> str:
    """SHA-256 of the canonical JSON of ``obj`` (sorted keys, no spaces)."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(text.encode()).hexdigest()


def nonfinite_counts(flat: Mapping[str, np.ndarray]) -> dict[str, int]:
    """``{key: count}`` of the inexact arrays holding NaN or infinite elements."""
    counts = {}
    for key, array in flat.items():
        if np.issubdtype(array.dtype, np.inexact):
            count = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
            if count:
                counts[key] = count
    return counts


class Loaded(NamedTuple):
    """A checkpoint read from disk and verified against its digest."""

    step: int
    items: dict[str, FlatArrays]  # item -> flat arrays (see flatten)
    meta: dict[str, Any]
    nonfinite: dict[str, int]  # "item/key" -> non-finite count
    newer: tuple[int, ...]  # step directories newer than this one (to set aside)


# What orbax and tensorstore raise for missing, truncated or garbled files.
_READ_ERRORS = (OSError, ValueError, KeyError, TypeError)


def _read_failure(error: BaseException | None) -> str | None:
    """One line describing a checkpoint read failure; None for anything else."""
    while error is not None:
        if isinstance(error, _READ_ERRORS):
            return _first_line(error)
        error = error.__cause__
    return None


def _collect_abandoned_reads() -> None:
    # A failed read leaves orbax's sibling read coroutines un-awaited; collect them
    # now, quietly, rather than as "never awaited" warnings at some later moment.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        gc.collect()


def _first_line(error: BaseException, limit: int = 160) -> str:
    text = str(error).strip().splitlines()
    line = text[0] if text else ""
    return f"{type(error).__name__}: {line[:limit]}{'...' if len(line) > limit else ''}"


class Checkpoints:
    """The verified checkpoints of one run, in one directory.

    Args:
      directory: where the step directories live (created on the first save).
      keep: how many verified checkpoints to keep (>= 1).
      primary: whether this process writes the digest and deletes old checkpoints
        (host 0 of a multi-host run; orbax itself coordinates the array writes).
    """

    def __init__(
        self, directory: str | os.PathLike, *, keep: int = 2, primary: bool = True
    ):
        if keep < 1:
            raise ValueError(f"keep must be >= 1, got {keep}.")
        self.directory = os.path.abspath(os.fspath(directory))
        self.keep = keep
        self.primary = primary
        self._manager: ocp.CheckpointManager | None = None

    # Listing --------------------------------------------------------------------

    def steps(self) -> list[int]:
        """Every finalised step directory, verified or not, ascending."""
        return preflight.checkpoint_steps(self.directory)

    def verified_steps(self) -> list[int]:
        """The steps whose digest was written (verified when saved), ascending."""
        return preflight.verified_steps(self.directory)

    def _path(self, step: int, *parts: str) -> str:
        return os.path.join(self.directory, str(step), *parts)

    # Saving ---------------------------------------------------------------------

    def save(
        self, step: int, items: Mapping[str, Any], meta: Mapping[str, Any]
    ) -> None:
        """Saves, reads back, verifies and digests a checkpoint; then prunes.

        Args:
          step: the number of completed training steps (a new step).
          items: name -> pytree of arrays, each with at least one container (e.g.
            ``{"model": nnx.state(model), "rng": {"key": key_data}}``).
          meta: JSON-serialisable metadata (the config, the history...).

        Raises:
          CheckpointError: when the checkpoint read back differs from what was
            saved (it stays unverified; no older checkpoint is deleted).
        """
        bad = [name for name in items if name in RESERVED_NAMES]
        if bad:
            raise ValueError(f"Item names {bad} are reserved ({RESERVED_NAMES}).")
        meta = json.loads(json.dumps(dict(meta)))  # as it reads back from JSON
        flat = {name: flatten(tree) for name, tree in items.items()}
        digest = {
            "format": DIGEST_FORMAT,
            "step": step,
            "items": {name: array_digest(arrays) for name, arrays in flat.items()},
            "meta": json_digest(meta),
            "nonfinite": {
                f"{name}/{key}": count
                for name, arrays in flat.items()
                for key, count in nonfinite_counts(arrays).items()
            },
        }
        manager = self._get_manager()
        manager.save(
            step,
            args=ocp.args.Composite(
                meta=ocp.args.JsonSave(meta),
                **{name: ocp.args.StandardSave(tree) for name, tree in items.items()},
            ),
            force=True,
        )
        manager.wait_until_finished()
        try:
            items_back, meta_back = self._read(step, tuple(items))
        except CheckpointError as e:
            raise CheckpointError(
                f"{e} It was just written: the disk may be failing; the older "
                f"verified checkpoints {self.verified_steps()} are kept."
            ) from e
        differ = [
            name
            for name, arrays in items_back.items()
            if array_digest(arrays) != digest["items"][name]
        ]
        if json_digest(meta_back) != digest["meta"]:
            differ.append("meta")
        if differ:
            raise CheckpointError(
                f"Checkpoint step {step} in {self.directory!r} read back different "
                f"from what was written ({', '.join(differ)}); it stays unverified "
                f"and the older verified checkpoints {self.verified_steps()} are kept."
            )
        if self.primary:
            digest["files"] = preflight.file_digests(self._path(step), [*items, "meta"])
            _write_atomically(self._path(step, DIGEST_FILE), json.dumps(digest))
            self._prune(step)

    def _get_manager(self) -> ocp.CheckpointManager:
        if self._manager is None:
            options = ocp.CheckpointManagerOptions(
                max_to_keep=None,  # retention is ours: see _prune
                create=True,
                enable_async_checkpointing=False,
            )
            self._manager = ocp.CheckpointManager(self.directory, options=options)
        return self._manager

    def _prune(self, newest: int) -> None:
        keepers = set(self.verified_steps()[-self.keep :]) | {newest}
        for step in self.steps():
            if step < newest and step not in keepers:
                shutil.rmtree(self._path(step))

    def close(self) -> None:
        """Closes the orbax manager (if a save opened one)."""
        if self._manager is not None:
            self._manager.close()
            self._manager = None

    # Loading --------------------------------------------------------------------

    def _read(
        self, step: int, names: tuple[str, ...]
    ) -> tuple[dict[str, FlatArrays], dict[str, Any]]:
        try:
            args = ocp.args.Composite(
                meta=ocp.args.JsonRestore(),
                **{
                    name: ocp.args.StandardRestore(self._host_target(step, name))
                    for name in names
                },
            )
            with ocp.Checkpointer(ocp.CompositeCheckpointHandler()) as checkpointer:
                restored = checkpointer.restore(self._path(step), args=args)
            items = {name: flatten(restored[name]) for name in names}
            meta = restored["meta"]
        # orbax wraps a failed array read in a bare Exception whose cause is the
        # tensorstore error: a read failure is recognised by the types in its chain.
        except Exception as e:
            failure = _read_failure(e)
            if failure is None:
                raise
            _collect_abandoned_reads()
            raise CheckpointError(
                f"Checkpoint step {step} in {self.directory!r} cannot be read "
                f"({failure})."
            ) from None
        if not isinstance(meta, dict):
            raise CheckpointError(
                f"Checkpoint step {step} in {self.directory!r}: its meta is not a "
                "JSON object."
            )
        return items, meta

    def _host_target(self, step: int, name: str) -> Any:
        # The item's tree of host (numpy) arrays, from its metadata: it reads back
        # whatever the process and device count it was saved with.
        handler = ocp.StandardCheckpointHandler()
        metadata = handler.metadata(epath.Path(self._path(step, name)))
        tree = getattr(metadata, "tree", metadata)
        return jax.tree.map(lambda m: np.empty(m.shape, m.dtype), tree)

    def load(self, step: int) -> Loaded:
        """Reads checkpoint ``step`` and verifies it against its digest.

        Args:
          step: a step directory of :meth:`steps`.

        Returns:
          The :class:`Loaded` arrays and meta (``newer`` left empty).

        Raises:
          CheckpointError: when it has no digest, a file differs from the one
            saved, it cannot be read, or its arrays or meta differ from the
            digest.
        """
        # The files first: a changed file is refused before orbax parses it.
        digest = preflight.verify_files(self.directory, step)
        names = tuple(digest["items"])
        items, meta = self._read(step, names)
        differ = [n for n in names if array_digest(items[n]) != digest["items"][n]]
        if json_digest(meta) != digest.get("meta"):
            differ.append("meta")
        if differ:
            raise CheckpointError(
                f"Checkpoint step {step} in {self.directory!r} fails verification: "
                f"{', '.join(differ)} changed on disk since it was written."
            )
        nonfinite = {
            f"{name}/{key}": count
            for name, arrays in items.items()
            for key, count in nonfinite_counts(arrays).items()
        }
        if nonfinite != digest.get("nonfinite", {}):
            raise CheckpointError(
                f"Checkpoint step {step} in {self.directory!r} fails verification: "
                "its non-finite values differ from those it was saved with."
            )
        return Loaded(step, items, meta, nonfinite, ())

    def _fallbacks(self, below: int) -> str:
        # The older checkpoints that verify and hold finite values.
        older = []
        for step in reversed(self.verified_steps()):
            if step >= below:
                continue
            try:
                loaded = self.load(step)
            except CheckpointError:
                continue
            if not loaded.nonfinite:
                older.append(step)
        return preflight.fallback_text(older)

    def find_resume(
        self, step: int | None = None, *, nonfinite_from: int | None = None
    ) -> Loaded:
        """The verified checkpoint to continue from: ``step``, or the newest.

        Reads and verifies without writing anything.

        Args:
          step: the step to resume from; None: the newest verified one (newer
            interrupted saves are then skipped).
          nonfinite_from: a checkpoint holding non-finite values is refused
          unless its step is at least this (e.g. a finished run, reloaded only for
          its history); None refuses them all.

        Returns:
          The :class:`Loaded` checkpoint; ``newer`` lists the step directories
          after it, which the caller moves aside (:meth:`set_aside`) once it is
          sure to continue.

        Raises:
          CheckpointError: one line naming the step, why, and the older verified
            checkpoints with ``--resume_step`` to continue from one.
        """
        preflight.check_checkpoints(self.directory, resume=True, resume_step=step)
        steps = self.steps()
        if step is None:
            step = self.verified_steps()[-1]
        try:
            loaded = self.load(step)
        except CheckpointError as e:
            raise CheckpointError(
                f"{e} Nothing was changed. {self._fallbacks(step)}"
            ) from e
        if loaded.nonfinite and (nonfinite_from is None or step < nonfinite_from):
            (key, count), *_ = loaded.nonfinite.items()
            raise CheckpointError(
                f"Checkpoint step {step} in {self.directory!r} holds non-finite "
                f"values ({count} in {key}): the run had diverged by then. Nothing "
                f"was changed. {self._fallbacks(step)}"
            )
        return loaded._replace(newer=tuple(s for s in steps if s > step))

    def set_aside(self, steps: tuple[int, ...], into: str | os.PathLike) -> list[str]:
        """Moves step directories out of the way (into ``into``), never deleting.

        Args:
          steps: step directories of :meth:`steps`.
          into: the directory to move them to (created when needed).

        Returns:
          Their new paths.
        """
        moved = []
        if not self.primary:
            return moved
        for step in steps:
            target = os.path.join(os.fspath(into), str(step))
            suffix = 0
            while os.path.exists(target):
                suffix += 1
                target = os.path.join(os.fspath(into), f"{step}.{suffix}")
            os.makedirs(os.fspath(into), exist_ok=True)
            os.replace(self._path(step), target)
            moved.append(target)
        return moved


def restore_into(arrays: FlatArrays, target: Any, *, name: str) -> Any:
    """The flat ``arrays`` of an item in the structure of ``target``.

    Args:
      arrays: a :class:`Loaded` item.
      target: a pytree with the expected keys, shapes and dtypes (e.g. the freshly
        built ``nnx.state(model)``; only its structure is used).
      name: the item's name, for messages.

    Returns:
      ``target``'s structure holding the loaded arrays.

    Raises:
      CheckpointError: when keys, shapes or dtypes differ.
    """
    paths, treedef = jax.tree_util.tree_flatten_with_path(target)
    keys = [key_string(p) for p, _ in paths]
    missing = sorted(set(keys) - set(arrays))
    extra = sorted(set(arrays) - set(keys))
    reshaped = [
        k
        for (_, leaf), k in zip(paths, keys, strict=True)
        if k in arrays
        and (
            np.shape(leaf) != arrays[k].shape or np.dtype(leaf.dtype) != arrays[k].dtype
        )
    ]
    if missing or extra or reshaped:
        detail = "; ".join(
            f"{what} {found[:3]}{'...' if len(found) > 3 else ''}"
            for what, found in (
                ("missing", missing),
                ("unexpected", extra),
                ("other shape or dtype", reshaped),
            )
            if found
        )
        raise CheckpointError(
            f"The checkpoint's {name!r} does not match this model and optimizer "
            f"({detail})."
        )
    return jax.tree_util.tree_unflatten(treedef, [arrays[k] for k in keys])


def _write_atomically(path: str, text: str) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
