"""What every command line of the examples shares: flags from the typed ``Config``,
one-line errors, and exit statuses.

* :class:`ArgumentParser`: argparse whose parse errors raise :class:`FlagError`
  instead of printing the usage and exiting.
* :func:`add_config_flags` / :func:`config_from_flags`: one ``--<field>`` per
  :class:`~nsf_optax.experiments.resnet.configs.default.Config` field, its help text
  from the
  field's ``Attributes`` entry, its choices from its ``Literal`` type, its value
  checked against ``FIELD_BOUNDS`` as it is parsed. Booleans are ``--flag`` /
  ``--no-flag``; ``none`` spells None.
* :func:`int_flag`: an integer flag inside a :class:`Bound`.
* :func:`run`: calls a command's body; a :class:`UsageError` (any flag, config,
  path, data or checkpoint mistake) becomes one line on stderr and exit status 2,
  a run stopped by SIGTERM with its checkpoint (:mod:`.preemption`) one line and
  status 75, Ctrl-C one line and status 130. Every other exception is a bug and
  keeps its traceback.

Nothing here imports jax: ``--help`` and every flag check answer before it loads.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import re
import signal
import sys
import typing
from collections.abc import Callable, Sequence
from typing import Any, Literal, NoReturn

from nsf_optax.experiments.resnet.configs.default import (
    FIELD_BOUNDS,
    Bound,
    Config,
    check_field,
    field_types,
)
from nsf_optax.experiments.runner import preemption
from nsf_optax.experiments.runner.errors import ConfigError, FlagError, UsageError

EXIT_USAGE = 2
EXIT_PREEMPTED = preemption.EXIT_PREEMPTED
EXIT_INTERRUPTED = 130  # 128 + SIGINT, the shell's status for Ctrl-C


class ArgumentParser(argparse.ArgumentParser):
    """argparse, with parse errors raised as :class:`FlagError` (one line).

    Flags must be spelled out: an abbreviation (``--num_step``) is an error rather
    than a silent match.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise FlagError(message)


def _attribute_help(cls: type) -> dict[str, str]:
    # The Google-style "Attributes:" section: "name: text" or "a, b: shared text",
    # continuation lines indented deeper.
    doc = cls.__doc__ or ""
    section = doc.split("Attributes:", 1)[1] if "Attributes:" in doc else ""
    entries: dict[str, str] = {}
    names: list[str] = []
    for line in section.splitlines():
        match = re.match(r"^ {2,6}([a-z_][a-z0-9_, ]*):\s*(.*)$", line)
        if match and not line.startswith(" " * 7):
            names = [n.strip() for n in match.group(1).split(",")]
            for name in names:
                entries[name] = match.group(2)
        elif line.strip() and names:
            for name in names:
                entries[name] += " " + line.strip()
    return entries


@functools.cache
def config_help() -> dict[str, str]:
    """Field name -> its help text (from ``Config``'s ``Attributes`` section)."""
    return _attribute_help(Config)


def _optional(kind: Any) -> tuple[Any, bool]:
    args = typing.get_args(kind)
    if type(None) in args:
        return next(a for a in args if a is not type(None)), True
    return kind, False


def _parse_field(name: str, text: str) -> Any:
    """argparse ``type=`` for one field: parse, then check type and bound."""
    kind, optional = _optional(field_types()[name])
    if optional and text.lower() == "none":
        return None
    if kind is int or kind is float:
        try:
            value = int(text) if kind is int else float(text)
        except ValueError:
            noun = "an integer" if kind is int else "a number"
            raise argparse.ArgumentTypeError(
                f"expected {noun}{' or none' if optional else ''}, got {text!r}"
            ) from None
    else:
        value = text
    try:
        return check_field(name, field_types()[name], value)
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _metavar(kind: Any, optional: bool) -> str:
    base = {int: "INT", float: "FLOAT"}.get(kind, "TEXT")
    return f"{base}|none" if optional else base


def add_config_flags(
    parser: argparse.ArgumentParser, exclude: Sequence[str] = ()
) -> None:
    """Adds one ``--<field>`` per :class:`Config` field (default: the preset's).

    Args:
      parser: the parser to extend.
      exclude: fields that get no flag.
    """
    group = parser.add_argument_group(
        "config fields (each defaults to the chosen preset's value)"
    )
    helps = config_help()
    for field in dataclasses.fields(Config):
        if field.name in exclude:
            continue
        kind, optional = _optional(field_types()[field.name])
        text = helps[field.name].replace("%", "%%")
        flag = f"--{field.name}"
        if kind is bool:
            group.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=None, help=text
            )
            continue
        if typing.get_origin(kind) is Literal:
            group.add_argument(
                flag,
                choices=typing.get_args(kind),
                default=argparse.SUPPRESS,
                help=text,
            )
            continue
        if field.name in FIELD_BOUNDS:
            text += f" [{FIELD_BOUNDS[field.name].describe()}]"
        group.add_argument(
            flag,
            type=functools.partial(_parse_field, field.name),
            default=argparse.SUPPRESS,
            metavar=_metavar(kind, optional),
            help=text,
        )


def config_from_flags(config: Config, args: argparse.Namespace) -> Config:
    """``config`` with the fields given on the command line replaced.

    Args:
      config: the preset.
      args: parsed by a parser extended with :func:`add_config_flags`.

    Returns:
      The new, re-validated :class:`Config`.

    Raises:
      ConfigError: when the combination is inconsistent (e.g. p_min > p_max).
    """
    given = {}
    for field in dataclasses.fields(Config):
        if field.name not in vars(args):
            continue  # excluded, or not given (argparse.SUPPRESS)
        value = getattr(args, field.name)
        if value is None and field_types()[field.name] is bool:
            continue  # neither --flag nor --no-flag
        given[field.name] = value
    return dataclasses.replace(config, **given)


def format_error(error: UsageError) -> str:
    """A :class:`UsageError` as one line, naming the flags of a config error."""
    message = " ".join(str(error).split())
    if isinstance(error, ConfigError) and error.fields:
        flags = ", ".join(f"--{name}" for name in error.fields)
        message = f"{flags}: {message}"
    return message


def run(prog: str, body: Callable[[], object]) -> int:
    """Runs a command's body and turns a user mistake into one line and status 2.

    Args:
      prog: the command's name, the prefix of the error line.
      body: the command; its return value is ignored.

    Returns:
      0 on success, 2 after a :class:`UsageError`, 75 after a SIGTERM that
      stopped the training loop with a checkpoint, 130 after Ctrl-C (with a
      checkpoint when it came while the loop ran).
    """
    try:
        body()
    except UsageError as e:
        print(f"{prog}: error: {format_error(e)}", file=sys.stderr)
        return EXIT_USAGE
    except preemption.Preempted as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return EXIT_INTERRUPTED if e.signum == signal.SIGINT else EXIT_PREEMPTED
    except KeyboardInterrupt:
        print(
            f"{prog}: interrupted; the newest verified checkpoint is kept "
            "(continue with --resume)",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    return 0


def int_flag(bound: Bound) -> Callable[[str], int]:
    """An argparse ``type=`` for an integer flag inside ``bound``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected an integer, got {text!r}"
            ) from None
        if not bound.contains(value):
            raise argparse.ArgumentTypeError(f"must be {bound.describe()}, got {value}")
        return value

    return parse
