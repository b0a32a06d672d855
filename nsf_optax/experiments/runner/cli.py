"""What every command line of the experiments shares: flags from a typed config,
one-line errors, and exit statuses.

* :class:`ArgumentParser`: argparse whose parse errors raise :class:`FlagError`
  instead of printing the usage and exiting.
* :func:`add_config_flags` / :func:`config_from_flags`: one ``--<name>`` per
  settable name of a config, each a :class:`~.fields.FieldSpec` (the ResNet
  config's ``field_specs()``: its fields, and the parameters of the registered p
  schedules): its help text, bound and choices, its value checked as it is
  parsed. Booleans are ``--flag`` / ``--no-flag``; ``none`` spells None.
* :func:`int_flag`: an integer flag inside a :class:`~.fields.Bound`;
  :func:`float_flag`: a number flag that a predicate accepts.
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
import signal
import sys
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from nsf_optax.experiments.runner import preemption
from nsf_optax.experiments.runner.errors import ConfigError, FlagError, UsageError
from nsf_optax.experiments.runner.fields import Bound, FieldSpec, check_value

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

EXIT_USAGE = 2
EXIT_PREEMPTED = preemption.EXIT_PREEMPTED
EXIT_INTERRUPTED = 130  # 128 + SIGINT, the shell's status for Ctrl-C

C = TypeVar("C", bound="DataclassInstance")


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


class DeprecatedAlias(argparse.Action):
    """A flag kept for one release under an old name: stores like its new
    spelling (give the same ``dest``, and ``new=`` the new flag) and prints a
    one-line notice naming it."""

    def __init__(self, *args: Any, new: str, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.new = new

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        print(
            f"{parser.prog}: {option_string} is deprecated; use {self.new} (same "
            "values).",
            file=sys.stderr,
        )
        setattr(namespace, self.dest, values)


def _optional(kind: Any) -> tuple[Any, bool]:
    args = typing.get_args(kind)
    if type(None) in args:
        return next(a for a in args if a is not type(None)), True
    return kind, False


def _parse_field(spec: FieldSpec, text: str) -> Any:
    """argparse ``type=`` for one field: parse, then check type and bound."""
    kind, optional = _optional(spec.kind)
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
        return check_value(spec.name, spec.kind, value, spec.bound, spec.choices)
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _metavar(kind: Any, optional: bool) -> str:
    base = {int: "INT", float: "FLOAT"}.get(kind, "TEXT")
    return f"{base}|none" if optional else base


def add_config_flags(
    parser: argparse.ArgumentParser,
    specs: Mapping[str, FieldSpec],
    exclude: Sequence[str] = (),
) -> None:
    """Adds one ``--<name>`` per settable name of a config (default: the preset's
    value).

    Args:
      parser: the parser to extend.
      specs: name -> its spec, in flag order (e.g. the ResNet config's
        ``field_specs()``).
      exclude: names that get no flag.
    """
    group = parser.add_argument_group(
        "config fields (each defaults to the chosen preset's value)"
    )
    for spec in specs.values():
        if spec.name in exclude:
            continue
        kind, optional = _optional(spec.kind)
        text = spec.help.replace("%", "%%")
        flag = f"--{spec.name}"
        if kind is bool:
            group.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=None, help=text
            )
            continue
        if spec.choices is not None:
            group.add_argument(
                flag, choices=spec.choices, default=argparse.SUPPRESS, help=text
            )
            continue
        if spec.bound is not None:
            text += f" [{spec.bound.describe()}]"
        group.add_argument(
            flag,
            type=functools.partial(_parse_field, spec),
            default=argparse.SUPPRESS,
            metavar=_metavar(kind, optional),
            help=text,
        )


def config_from_flags(
    config: C, args: argparse.Namespace, specs: Mapping[str, FieldSpec]
) -> C:
    """``config`` with the fields given on the command line replaced.

    Args:
      config: the preset, a dataclass whose ``dataclasses.replace`` takes every
        name of ``specs``.
      args: parsed by a parser extended with :func:`add_config_flags`.
      specs: the specs the flags were added from.

    Returns:
      The new config (re-validated by its dataclass).

    Raises:
      ConfigError: when the combination is inconsistent (e.g. p_min > p_max).
    """
    given = {}
    for spec in specs.values():
        if spec.name not in vars(args):
            continue  # excluded, or not given (argparse.SUPPRESS)
        value = getattr(args, spec.name)
        if value is None and spec.kind is bool:
            continue  # neither --flag nor --no-flag
        given[spec.name] = value
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


def float_flag(
    accept: Callable[[float], bool], requirement: str
) -> Callable[[str], float]:
    """An argparse ``type=`` for a number flag whose value ``accept`` takes.

    Args:
      accept: the check of the parsed value (``math.isfinite``, say).
      requirement: what a refused value is told, as "must be ...".

    Returns:
      The parser: text that is not a number is "expected a number, got 'x'", a
      number ``accept`` refuses "<requirement>, got 'x'".

    Examples:
      >>> positive = float_flag(lambda v: v > 0, "must be positive")
      >>> positive("0.5")
      0.5
      >>> positive("-1")
      Traceback (most recent call last):
      argparse.ArgumentTypeError: must be positive, got '-1'
    """

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a number, got {text!r}"
            ) from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"{requirement}, got {text!r}")
        return value

    return parse
