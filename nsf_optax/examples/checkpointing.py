"""Orbax checkpoints of a whole training state: model, optimizer, RNG, step, order.

A checkpoint is one orbax step directory ``<workdir>/checkpoints/<step>/`` with two
items: ``state`` (the arrays: every model and optimizer-state leaf, including the
schedule counts, and the training PRNG key) and ``meta`` (JSON: the config, the step,
the data-order position and the metrics logged so far). Leaves are stored as a flat
list in ``jax.tree.leaves`` order and restored against the abstract shapes of a
freshly built model and optimizer, so a checkpoint written by another configuration
is refused rather than silently reshaped.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt or belongs to another configuration."""


def checkpoint_dir(workdir: str | os.PathLike) -> str:
    """``<workdir>/checkpoints`` as an absolute path (orbax needs one)."""
    return os.path.abspath(os.path.join(os.fspath(workdir), "checkpoints"))


def _step_dirs(directory: str) -> list[int]:
    if not os.path.isdir(directory):
        return []
    return sorted(int(name) for name in os.listdir(directory) if name.isdigit())


def has_checkpoint(workdir: str | os.PathLike) -> bool:
    """Whether the workdir holds at least one (finalised or not) step directory."""
    return bool(_step_dirs(checkpoint_dir(workdir)))


def manager(workdir: str | os.PathLike, *, create: bool) -> ocp.CheckpointManager:
    """A synchronous orbax manager keeping the two newest checkpoints."""
    options = ocp.CheckpointManagerOptions(
        max_to_keep=2, create=create, enable_async_checkpointing=False
    )
    return ocp.CheckpointManager(
        checkpoint_dir(workdir), options=options, item_names=("state", "meta")
    )


def save(
    mngr: ocp.CheckpointManager, step: int, arrays: Any, meta: dict[str, Any]
) -> None:
    """Saves ``arrays`` (any pytree of arrays) and the JSON-able ``meta`` at ``step``.

    Args:
      mngr: from :func:`manager`.
      step: the number of completed training steps.
      arrays: the pytree to store; saved as the flat list of its leaves.
      meta: JSON-serialisable metadata.
    """
    leaves = [
        np.asarray(x) if not isinstance(x, jax.Array) else x
        for x in jax.tree.leaves(arrays)
    ]
    mngr.save(
        step,
        args=ocp.args.Composite(
            state=ocp.args.StandardSave(leaves), meta=ocp.args.JsonSave(meta)
        ),
        force=True,
    )
    mngr.wait_until_finished()


def restore_latest(
    workdir: str | os.PathLike, target: Any
) -> tuple[int, Any, dict[str, Any]]:
    """Restores the newest checkpoint of ``workdir`` into the structure of ``target``.

    Args:
      workdir: the run directory.
      target: a pytree with the structure, shapes and dtypes to restore into (the
        freshly initialised state works: only its abstract shapes are used).

    Returns:
      ``(step, arrays, meta)``.

    Raises:
      CheckpointError: when there is no checkpoint, when the newest one cannot be
        read (corrupt or truncated) or when its arrays do not match ``target``.
    """
    directory = checkpoint_dir(workdir)
    steps = _step_dirs(directory)
    if not steps:
        raise CheckpointError(
            f"No checkpoint to resume from in {directory!r}; start without --resume "
            "or point --workdir at a run that saved one."
        )
    step = steps[-1]
    leaves, treedef = jax.tree.flatten(target)
    abstract = [ocp.utils.to_shape_dtype_struct(x) for x in leaves]
    try:
        mngr = manager(workdir, create=False)
        if step not in mngr.all_steps():
            raise FileNotFoundError(f"step {step} is not a finalised checkpoint")
        restored = mngr.restore(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()
            ),
        )
        arrays, meta = list(restored["state"]), dict(restored["meta"])
    except Exception as e:  # orbax raises many types; all mean "unreadable".
        raise CheckpointError(
            f"Checkpoint {os.path.join(directory, str(step))!r} is corrupt or "
            f"incomplete and was not loaded; nothing in the workdir was changed "
            f"({type(e).__name__}: {e})."
        ) from e
    if len(arrays) != len(abstract) or any(
        a.shape != b.shape or a.dtype != b.dtype
        for a, b in zip(arrays, abstract, strict=False)
    ):
        raise CheckpointError(
            f"Checkpoint {os.path.join(directory, str(step))!r} does not match this "
            "model and optimizer (different leaves, shapes or dtypes)."
        )
    return step, jax.tree.unflatten(treedef, arrays), meta
