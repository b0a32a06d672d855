"""Configurations by name: ``get_config("mnist1d")`` and friends."""

from __future__ import annotations

import argparse
import dataclasses
import functools

from nsf_optax.examples.configs import cifar10, digits, mnist1d, tiny
from nsf_optax.examples.configs.default import Config

_CONFIGS = {
    "default": mnist1d.get_config,
    "mnist1d": mnist1d.get_config,
    "digits": digits.get_config,
    "cifar10": cifar10.get_config,
    "tiny": tiny.get_config,
}
CONFIG_NAMES = tuple(_CONFIGS)


def get_config(name: str = "default") -> Config:
    """Returns the named configuration ("default", "mnist1d", "digits", ...).

    Args:
      name: one of ``CONFIG_NAMES``.

    Returns:
      A frozen :class:`Config`.
    """
    if name not in _CONFIGS:
        raise ValueError(f"Unknown config {name!r}; choose one of {list(_CONFIGS)}.")
    return _CONFIGS[name]()


def _parse_value(kind: str, text: str):
    if "None" in kind and text.lower() == "none":
        return None
    if kind.startswith("int"):
        return int(text)
    if kind.startswith("float"):
        return float(text)
    return text


def add_config_arguments(
    parser: argparse.ArgumentParser, exclude: tuple[str, ...] = ()
) -> None:
    """Adds one ``--<field>`` option per :class:`Config` field (default: unchanged).

    Booleans take ``--flag`` / ``--no-flag``; ``None`` is spelled ``none``. Fields
    named in ``exclude`` get no option.
    """
    group = parser.add_argument_group("config overrides (default: the config's)")
    for field in dataclasses.fields(Config):
        if field.name in exclude:
            continue
        kind = str(field.type)
        if kind == "bool":
            group.add_argument(
                f"--{field.name}", action=argparse.BooleanOptionalAction, default=None
            )
        else:
            group.add_argument(
                f"--{field.name}",
                type=functools.partial(_parse_value, kind),
                default=argparse.SUPPRESS,
                metavar=kind.replace(" ", "").upper(),
            )


def config_from_args(config: Config, args: argparse.Namespace) -> Config:
    """``config`` with the fields given on the command line replaced.

    Args:
      config: the base configuration.
      args: parsed arguments from a parser set up by :func:`add_config_arguments`.

    Returns:
      The new, re-validated :class:`Config`.
    """
    given = {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(Config)
        if getattr(args, f.name, None) is not None
        or (f.name in vars(args) and str(f.type) != "bool")
    }
    return dataclasses.replace(config, **given)


__all__ = [
    "CONFIG_NAMES",
    "Config",
    "add_config_arguments",
    "config_from_args",
    "get_config",
]
