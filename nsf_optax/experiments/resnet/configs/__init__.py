"""Configurations by name: ``get_config("mnist1d")`` and friends.

Imports only the standard library (the command lines read it before jax loads).
"""

from __future__ import annotations

from nsf_optax.experiments.resnet.configs import cifar10, digits, mnist1d, tiny
from nsf_optax.experiments.resnet.configs.default import Config
from nsf_optax.experiments.runner.errors import ConfigError

_MODULES = {
    "default": mnist1d,
    "mnist1d": mnist1d,
    "digits": digits,
    "cifar10": cifar10,
    "tiny": tiny,
}
CONFIG_NAMES = tuple(_MODULES)


def describe(name: str) -> str:
    """The one-line description of a preset (its module's summary line)."""
    return (_MODULES[name].__doc__ or name).strip().splitlines()[0].rstrip(".")


def describe_all() -> str:
    """Every preset with its description, for ``--help``."""
    return "; ".join(
        f"{name}: {'same as mnist1d' if name == 'default' else describe(name)}"
        for name in CONFIG_NAMES
    )


def get_config(name: str = "default") -> Config:
    """Returns the named configuration ("default", "mnist1d", "digits", ...).

    Args:
      name: one of ``CONFIG_NAMES``.

    Returns:
      A frozen :class:`Config`.

    Raises:
      ConfigError: for an unknown name.
    """
    if name not in _MODULES:
        raise ConfigError(
            f"Unknown config {name!r}; choose one of {list(_MODULES)}.", ("config",)
        )
    return _MODULES[name].get_config()


__all__ = ["CONFIG_NAMES", "Config", "describe", "describe_all", "get_config"]
