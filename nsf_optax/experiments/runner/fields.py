"""The pieces of a typed, checked config: bounds, field metadata, value checks.

A config is a frozen dataclass whose fields declare their help text, bound and
choices in their ``metadata`` (:func:`meta`); :func:`field_spec` reads one field
as a :class:`FieldSpec`, which :mod:`.cli` turns into a flag, and
:func:`check_value` checks a value against it. Nothing here knows a particular
config: each experiment builds its own from these pieces.

Imports only the standard library: the command lines read it before jax loads.
"""

from __future__ import annotations

import dataclasses
import math
import operator
import typing
from collections.abc import Callable, Sequence
from typing import Any, Literal

from nsf_optax.experiments.runner.errors import ConfigError, ConfigTypeError


@dataclasses.dataclass(frozen=True)
class Bound:
    """An allowed interval for a numeric field; float fields must also be finite.

    Attributes:
      low: the lower end (None: unbounded).
      high: the upper end (None: unbounded).
      low_open: exclude ``low`` itself.
      high_open: exclude ``high`` itself.
    """

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def describe(self) -> str:
        """The interval in words: "> 0", ">= 0", "in [0, 1)" or "finite"."""
        low, high = _number(self.low), _number(self.high)
        if self.low is not None and self.high is not None:
            left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
            return f"in {left}{low}, {high}{right}"
        if self.low is not None:
            return f"{'>' if self.low_open else '>='} {low}"
        if self.high is not None:
            return f"{'<' if self.high_open else '<='} {high}"
        return "finite"

    def contains(self, value: float) -> bool:
        """Whether ``value`` is finite and inside the interval."""
        if not math.isfinite(value):
            return False
        if self.low is not None and (
            value < self.low or (self.low_open and value == self.low)
        ):
            return False
        return self.high is None or not (
            value > self.high or (self.high_open and value == self.high)
        )


def _number(x: float | None) -> str:
    if x is None:
        return ""
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


POSITIVE = Bound(low=0, low_open=True)
NON_NEGATIVE = Bound(low=0)
FINITE = Bound()
UNIT = Bound(low=0, high=1, high_open=True)
# jax.random.key and numpy's default_rng both take any 32-bit unsigned seed.
SEED = Bound(low=0, high=2**32, high_open=True)


def meta(
    text: str,
    *,
    bound: Bound | None = None,
    choices: Callable[[], Sequence[str]] | None = None,
) -> dict[str, Any]:
    """A config field's metadata: its help text, bound and choices.

    Args:
      text: the help text (``--help`` shows it; every field needs one).
      bound: the allowed interval of a number.
      choices: a function returning the allowed names of a text field, read when
        a value is checked, so that a name registered later (a p schedule of
        your own) is a choice too.

    Returns:
      The ``metadata`` of ``dataclasses.field``.
    """
    return {"help": text, "bound": bound, "choices": choices}


@dataclasses.dataclass(frozen=True)
class FieldSpec:
    """What a flag needs to know of one settable name (a field or a p parameter).

    Attributes:
      name: the field or parameter name (the flag is ``--<name>``).
      kind: its type (``int``, ``float | None``, ``bool``, a ``Literal``...).
      help: the help text.
      bound: the allowed interval of a number (None: any value of the type).
      choices: the allowed names of a text field (None: any text).
    """

    name: str
    kind: Any
    help: str
    bound: Bound | None
    choices: tuple[str, ...] | None


def field_spec(field: dataclasses.Field, kind: Any) -> FieldSpec:
    """The :class:`FieldSpec` of one config field, from its type and metadata.

    Args:
      field: a field of a config dataclass, declared with :func:`meta`.
      kind: its resolved type (``typing.get_type_hints`` of the class).

    Returns:
      Its spec: the help text, bound and choices of its ``metadata``; a
      ``Literal`` type gives the choices.

    Raises:
      TypeError: a field without help metadata (every field needs one).
    """
    text = field.metadata.get("help")
    if not text:
        raise TypeError(
            f"Config field {field.name!r} has no help metadata: declare it with "
            "dataclasses.field(metadata=meta('...'))."
        )
    choices = field.metadata.get("choices")
    if typing.get_origin(kind) is Literal:
        choices = typing.get_args(kind)
    elif choices is not None:
        choices = tuple(choices())
    return FieldSpec(field.name, kind, text, field.metadata.get("bound"), choices)


def _is_bool(value: Any) -> bool:
    # Python and numpy/jax booleans (numpy's bool_ is not a bool subclass).
    return (
        isinstance(value, bool)
        or getattr(getattr(value, "dtype", None), "kind", None) == "b"
    )


def check_value(
    name: str,
    kind: Any,
    value: Any,
    bound: Bound | None = None,
    choices: Sequence[str] | None = None,
) -> Any:
    """Checks a value against its type, bound and choices; returns it as Python.

    Integers and floats may be Python, numpy or 0-d jax values; they come back as
    ``int`` / ``float``. Booleans are not numbers here; floats must be finite.

    Args:
      name: names the value in messages.
      kind: its type (``int``, ``float | None``, ``bool``, a ``Literal``...).
      value: the value to check.
      bound: the allowed interval of a number.
      choices: the allowed names of a text value.

    Returns:
      The value, converted to the Python type of the field.

    Raises:
      ConfigTypeError: for a value of the wrong type.
      ConfigError: for a value outside the choices or bound.
    """
    args = typing.get_args(kind)
    if type(None) in args:  # Optional[X]
        if value is None:
            return None
        kind = next(a for a in args if a is not type(None))
        args = typing.get_args(kind)
    if typing.get_origin(kind) is Literal:
        choices = args
    if choices is not None:
        if not isinstance(value, str) or value not in choices:
            raise ConfigError(
                f"Unknown {name} {value!r}; choose one of {list(choices)}.", (name,)
            )
        return value
    if kind is bool or kind is str:
        if not (_is_bool(value) if kind is bool else isinstance(value, str)):
            raise ConfigTypeError(
                f"{name} must be a {kind.__name__}, got {type(value).__name__}.",
                (name,),
            )
        return bool(value) if kind is bool else value
    if _is_bool(value) or isinstance(value, str | bytes):
        raise ConfigTypeError(
            f"{name} must be a number, got {type(value).__name__} {value!r}.",
            (name,),
        )
    try:
        number = operator.index(value) if kind is int else float(value)
    except TypeError:
        raise ConfigTypeError(
            f"{name} must be {'an integer' if kind is int else 'a float'}, got "
            f"{type(value).__name__} {value!r}.",
            (name,),
        ) from None
    bound = bound or (FINITE if kind is float else None)
    if bound is not None and not bound.contains(number):
        raise ConfigError(
            f"{name} must be {bound.describe()}, got {number!r}.", (name,)
        )
    return number


def check_numbers(obj: Any, bounds: dict[str, Bound]) -> None:
    """Checks the named number fields of a frozen dataclass against their bounds.

    Each value is checked by :func:`check_value` with the field's declared type
    and written back as the Python number it returns.

    Args:
      obj: a dataclass instance, typically from its ``__post_init__``.
      bounds: field name -> its allowed interval.

    Raises:
      ConfigTypeError: for a value of the wrong type.
      ConfigError: for a value outside its bound, naming the field.
    """
    kinds = typing.get_type_hints(type(obj))
    for name, bound in bounds.items():
        value = check_value(name, kinds[name], getattr(obj, name), bound)
        object.__setattr__(obj, name, value)
