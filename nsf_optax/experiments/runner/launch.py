"""The prologue every training command shares (one run, the sweep, the comparison).

:func:`main` parses the flags, builds the command's :class:`Job` (the config and
its checks, no jax), runs the job's preflight (the workdir probed, every run's
checkpoints checked) before the seconds jax takes to import, then imports jax,
initialises a multi-process job (``--distributed``, :mod:`.distributed`) and
trains. A :class:`~.errors.UsageError` anywhere is one line and exit status 2; a
stop on SIGTERM or SIGINT with its checkpoint is status 75 or 130
(:func:`.distributed.run`).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import NamedTuple

from nsf_optax.experiments.runner import cli, distributed
from nsf_optax.experiments.runner.fields import Bound

EXIT_STATUSES = (
    "Exit status: 0 done, 2 a mistake in the flags, paths, data or checkpoints (one "
    "line on stderr, nothing written), 75 stopped by SIGTERM with a checkpoint "
    "(continue with --resume), 130 interrupted (Ctrl-C; during training, with a "
    "checkpoint)."
)


class Job(NamedTuple):
    """What a command does once its flags are parsed."""

    preflight: Callable[[], object]  # checks the workdir and its runs; without jax
    train: Callable[[], object]  # trains and reports; after jax and distributed init


def parser(prog: str, *, usage: str, description: str) -> cli.ArgumentParser:
    """A command's parser: one-line errors, the shared exit statuses as epilog."""
    return cli.ArgumentParser(
        prog=prog, usage=usage, description=description, epilog=EXIT_STATUSES
    )


def add_preset_flag(
    parser: argparse.ArgumentParser,
    names: Sequence[str],
    described: str,
    *,
    default: str = "default",
) -> None:
    """Adds ``--config NAME``: the preset that the other flags change.

    Args:
      parser: the parser to extend.
      names: the presets' names (the flag's choices).
      described: the presets in words, for ``--help``.
      default: the preset without the flag.
    """
    parser.add_argument(
        "--config",
        default=default,
        choices=names,
        help=f"the preset the other flags change: {described}",
    )


def add_seeds_flag(parser: argparse.ArgumentParser, *, of_every: str) -> None:
    """Adds ``--seeds N``: train seeds ``0..N-1`` of every ``of_every``."""
    parser.add_argument(
        "--seeds",
        type=cli.int_flag(Bound(low=0, low_open=True)),
        default=5,
        metavar="N",
        help=f"train seeds 0..N-1 of every {of_every} [> 0] (default 5)",
    )


def add_max_steps_flag(parser: argparse.ArgumentParser, *, help: str) -> None:
    """Adds ``--max_steps_this_run INT`` (> 0; default None: to the end)."""
    parser.add_argument(
        "--max_steps_this_run",
        type=cli.int_flag(Bound(low=0, low_open=True)),
        default=None,
        metavar="INT",
        help=help,
    )


def main(
    prog: str,
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None,
    job: Callable[[argparse.Namespace], Job],
) -> int:
    """Runs a training command: parse, check, import jax, initialise, train.

    Args:
      prog: the command's name (the prefix of its error lines).
      parser: its flags (:func:`.distributed.add_flags` among them for a command
        that may run on several processes).
      argv: the arguments (None: ``sys.argv[1:]``).
      job: the parsed flags -> the command's :class:`Job`; may refuse them with
        a :class:`~.errors.UsageError` (no jax).

    Returns:
      The exit status: 0, 2 for a usage error, 75 or 130 for a stop on a signal.
    """

    def body() -> None:
        args = parser.parse_args(argv)
        launch = distributed.from_flags(args) if "distributed" in vars(args) else None
        command = job(args)
        command.preflight()
        import jax  # noqa: F401  (after every check: it takes seconds)

        if launch is not None:
            distributed.initialize(launch)
        command.train()

    return distributed.run(prog, body)
