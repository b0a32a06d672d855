"""What a command checks before it imports jax: its run directories' checkpoints.

Importing jax, orbax and flax takes seconds (tens of seconds on a loaded machine);
a run that is refused for its checkpoint directory needs none of them. The
checks here read directory listings, digests and file bytes only, and raise the
same :class:`~nsf_optax.experiments.runner.errors.CheckpointError` lines as the full
checks
that follow once jax is loaded (:func:`.lifecycle.find_resume`,
:meth:`.checkpointing.Checkpoints.find_resume`), which call them first.

A checkpoint is a step directory ``<workdir>/checkpoints/<step>/``, verified when
it holds ``digest.json`` (see :mod:`.checkpointing`). The digest records, besides
the arrays' digests, the SHA-256 of every file of the step's items
(:func:`file_digests`), so a file changed on disk is found before orbax parses
it: a corrupt file is refused in a fraction of a second, and orbax never starts
the concurrent reads whose failures it reports only as asyncio noise.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

from nsf_optax.experiments.runner import workdirs
from nsf_optax.experiments.runner.errors import CheckpointError

DIGEST_FILE = "digest.json"
DIGEST_FORMAT = "nsf-optax-checkpoint-digest/2"
# Format 1 (no file digests) still reads: its arrays are verified after orbax
# reads them.
READABLE_FORMATS = ("nsf-optax-checkpoint-digest/1", DIGEST_FORMAT)


def checkpoint_dir(workdir: str | os.PathLike) -> str:
    """``<workdir>/checkpoints`` as an absolute path."""
    return os.path.abspath(os.path.join(os.fspath(workdir), "checkpoints"))


def checkpoint_steps(directory: str | os.PathLike) -> list[int]:
    """Every finalised step directory in ``directory``, verified or not, ascending.

    orbax writes a step into a temporary directory and renames it when done, so
    only whole numbers count.
    """
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        return []
    return sorted(
        int(name)
        for name in os.listdir(directory)
        if name.isdigit() and os.path.isdir(os.path.join(directory, name))
    )


def verified_steps(directory: str | os.PathLike) -> list[int]:
    """The steps of ``directory`` whose digest was written, ascending."""
    directory = os.fspath(directory)
    return [
        s
        for s in checkpoint_steps(directory)
        if os.path.isfile(os.path.join(directory, str(s), DIGEST_FILE))
    ]


def check_checkpoints(
    directory: str | os.PathLike,
    *,
    resume: bool,
    resume_step: int | None = None,
    what: str = "run",
) -> None:
    """Refuses a start that the checkpoint directory cannot serve. Reads listings only.

    Args:
      directory: the run's checkpoint directory (:func:`checkpoint_dir`).
      resume: whether the run continues from a checkpoint.
      resume_step: the step to continue from (None: the newest verified one).
      what: the kind of run, for the message ("run", "sweep").

    Raises:
      CheckpointError: without ``resume``, for a directory that holds
        checkpoints (nothing is overwritten); with it, for a directory that holds
        none, holds no verified one (``resume_step`` None), or lacks
        ``resume_step``.
    """
    directory = os.path.abspath(os.fspath(directory))
    steps = checkpoint_steps(directory)
    if not resume:
        if steps:
            raise CheckpointError(
                f"{directory!r} already holds checkpoints; pass --resume to "
                f"continue that {what} or choose another --workdir (nothing is "
                "overwritten)."
            )
        return
    if not steps:
        raise CheckpointError(
            f"No checkpoint to resume from in {directory!r}; start without "
            "--resume or point --workdir at a run that saved one."
        )
    if resume_step is None:
        if not verified_steps(directory):
            raise CheckpointError(
                f"{directory!r} holds no verified checkpoint (steps {steps} were "
                "interrupted while saving); remove it to start afresh."
            )
    elif resume_step not in steps:
        raise CheckpointError(
            f"--resume_step {resume_step}: there is no such checkpoint in "
            f"{directory!r} (verified: {verified_steps(directory)})."
        )


def step_dir(directory: str | os.PathLike, step: int) -> str:
    """The step directory ``<directory>/<step>``."""
    return os.path.join(os.fspath(directory), str(step))


def file_digests(path: str | os.PathLike, items: Sequence[str]) -> dict[str, str]:
    """SHA-256 of every file under the ``items`` directories of step directory
    ``path``, keyed by its path relative to ``path`` ("/"-separated), sorted.

    Only the items' files: they hold the data, and nothing writes them after the
    save (orbax's step-level metadata is left out).
    """
    path = os.fspath(path)
    digests = {}
    for item in items:
        for root, dirs, files in os.walk(os.path.join(path, item)):
            dirs.sort()
            for name in sorted(files):
                full = os.path.join(root, name)
                key = os.path.relpath(full, path).replace(os.sep, "/")
                digests[key] = _file_sha256(full)
    return digests


def _file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_digest(directory: str | os.PathLike, step: int) -> dict[str, Any]:
    """The digest of checkpoint ``step`` in ``directory``.

    Raises:
      CheckpointError: when it is missing (an interrupted save), unreadable, or
        not a digest of a readable format for this step.
    """
    directory = os.path.abspath(os.fspath(directory))
    path = os.path.join(step_dir(directory, step), DIGEST_FILE)
    try:
        with open(path) as f:
            digest = json.load(f)
    except FileNotFoundError:
        raise CheckpointError(
            f"Checkpoint step {step} in {directory!r} was never verified "
            "(its save was interrupted)."
        ) from None
    except (OSError, json.JSONDecodeError) as e:
        raise CheckpointError(
            f"Checkpoint step {step}: its digest {path!r} cannot be read "
            f"({type(e).__name__}: {str(e).strip()[:160]})."
        ) from e
    if (
        not isinstance(digest, dict)
        or digest.get("format") not in READABLE_FORMATS
        or not isinstance(digest.get("items"), dict)
        or not isinstance(digest.get("files", {}), dict)
        or digest.get("step") != step
    ):
        raise CheckpointError(
            f"Checkpoint step {step}: {path!r} is not a digest of this format "
            f"({DIGEST_FORMAT}) and step."
        )
    return digest


def verify_files(directory: str | os.PathLike, step: int) -> dict[str, Any]:
    """Checks the files of checkpoint ``step`` against its digest; returns it.

    Raises:
      CheckpointError: see :func:`read_digest`, and for a file that is missing
        or differs from the one saved.
    """
    directory = os.path.abspath(os.fspath(directory))
    digest = read_digest(directory, step)
    saved: Mapping[str, str] = digest.get("files", {})
    if saved:
        tops = sorted({name.split("/")[0] for name in saved})
        now = file_digests(step_dir(directory, step), tops)
        changed = [name for name, sha in saved.items() if now.get(name) != sha]
        if changed:
            items = sorted({name.split("/")[0] for name in changed})
            more = f" and {len(changed) - 1} more" if len(changed) > 1 else ""
            raise CheckpointError(
                f"Checkpoint step {step} in {directory!r} fails verification: "
                f"{', '.join(items)} changed on disk since it was written (file "
                f"{changed[0]}{more})."
            )
    return digest


def fallback_text(older: Sequence[int]) -> str:
    """The way out of a refused checkpoint: the older verified ones, newest first."""
    if not older:
        return (
            "No older verified checkpoint is left; start afresh in another --workdir."
        )
    listed = ", ".join(str(s) for s in older)
    return (
        f"Older verified checkpoints: step {listed}; continue from one with "
        f"--resume_step {older[0]} (the newer ones are then moved aside, not "
        "deleted)."
    )


def check_start(
    workdir: str | os.PathLike,
    *,
    resume: bool,
    resume_step: int | None = None,
    what: str = "run",
) -> None:
    """:func:`check_checkpoints` on ``<workdir>/checkpoints``, then, with
    ``resume``, :func:`check_resume_files`: every refusal of a start that needs
    neither jax nor orbax.

    Raises:
      CheckpointError: see those two.
      WorkdirLockedError: instead, when a live run holds the workdir.
    """
    directory = checkpoint_dir(workdir)
    try:
        check_checkpoints(directory, resume=resume, resume_step=resume_step, what=what)
        if resume:
            check_resume_files(directory, resume_step=resume_step)
    except CheckpointError:
        # A live run changes its checkpoints under us: name it instead.
        workdirs.check_unlocked(workdir)
        raise


def check_resume_files(
    directory: str | os.PathLike, *, resume_step: int | None = None
) -> None:
    """Refuses, without orbax, a checkpoint to resume from whose files changed.

    Call it after :func:`check_checkpoints` (with ``resume``). The full check
    (:meth:`.checkpointing.Checkpoints.find_resume`, which also reads the
    arrays) follows once jax is loaded.

    Args:
      directory: the run's checkpoint directory.
      resume_step: the step to continue from (None: the newest verified one).

    Raises:
      CheckpointError: one line naming the step, the file, and the older
        checkpoints whose files verify and that hold finite values.
    """
    directory = os.path.abspath(os.fspath(directory))
    step = verified_steps(directory)[-1] if resume_step is None else resume_step
    try:
        verify_files(directory, step)
    except CheckpointError as e:
        older = []
        for s in reversed(verified_steps(directory)):
            if s >= step:
                continue
            try:
                digest = verify_files(directory, s)
            except CheckpointError:
                continue
            if not digest.get("nonfinite"):
                older.append(s)
        raise CheckpointError(
            f"{e} Nothing was changed. {fallback_text(older)}"
        ) from None
