"""Configurations by name: ``get_config("mnist1d")`` and friends."""

from __future__ import annotations

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


__all__ = ["CONFIG_NAMES", "Config", "get_config"]
