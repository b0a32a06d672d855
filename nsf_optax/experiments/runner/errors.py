"""The errors a run reports to its user, all subclasses of :class:`UsageError`.

A :class:`UsageError` is a problem with what a run was given (a flag, a config
value, a path, the data, a checkpoint), detected before anything is written (the
exceptions: a checkpoint that reads back wrong right after a save, and an
:class:`AnalysisError`, raised once every result that could be computed is
written). The
command lines print it as one line and exit with status 2
(:func:`nsf_optax.experiments.runner.cli.run`); every other exception is a bug and
keeps its
traceback. They subclass :class:`ValueError`, so Python callers can catch them as
the bad-input errors they are.

This module imports nothing heavy: the command lines use it before importing jax.
"""

from __future__ import annotations

from collections.abc import Sequence


class UsageError(ValueError):
    """A mistake in what the run was given; printed as one line, exit status 2."""


class ConfigError(UsageError):
    """A configuration value out of range, of the wrong type, or inconsistent.

    Attributes:
      fields: the config fields at fault (the command line names them as
        ``--<field>``).
    """

    def __init__(self, message: str, fields: Sequence[str] = ()):
        super().__init__(message)
        self.fields = tuple(fields)


class ConfigTypeError(ConfigError, TypeError):
    """A configuration value of the wrong type (also a :class:`TypeError`)."""


class FlagError(UsageError):
    """A command-line flag that does not parse (argparse's message, one line)."""


class DataError(UsageError):
    """A dataset that cannot be read: missing directory or file, malformed file."""


class WorkdirError(UsageError):
    """A workdir that is a file, lies under a file, or cannot be created or written."""


class WorkdirLockedError(WorkdirError):
    """Another live process holds the workdir's lock."""


class AnalysisError(UsageError):
    """A result that cannot be computed from finished runs (raised after every
    other result is written)."""


class CheckpointError(UsageError):
    """A checkpoint that is missing, unreadable, fails verification, or belongs to
    another configuration."""
