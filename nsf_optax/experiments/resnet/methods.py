"""The optimizers and the methods compared: one table, read before jax loads.

* :data:`OPTIMIZERS`: ``Config.optimizer``'s choices with what the examples need
  of each: the default peak learning rate and the fixed exponent ``p`` (None for
  ``nsf``, whose ``p`` comes from the registered p schedule). The optimizers
  themselves are built by :func:`.optimizers.create_optimizer`.
* :func:`label`: a run's method label (``Config.method``): the optimizer's name,
  or ``nsf-<schedule label>`` with ``-adam`` / ``-raw`` suffixes.
* :func:`methods` / :func:`overrides`: the methods ``compare`` accepts, by label:
  every optimizer but ``nsf`` under its own name, and for every registered p
  schedule ``nsf-<label>`` and ``nsf-<label>-raw``. A new p schedule is a new
  method without any change here.

Imports only the standard library and :mod:`nsf_optax.p_schedule`'s registry.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from nsf_optax import p_schedule
from nsf_optax.experiments.runner.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Optimizer:
    """What the examples need to know of one optimizer.

    Attributes:
      learning_rate: the peak learning rate when ``Config.learning_rate`` is None.
      p: the fixed exponent (0 for momentum SGD, 1/2 for Adam); None when it comes
        from ``Config.p_schedule``.
      help: one line for ``--help``.
    """

    learning_rate: float
    p: float | None
    help: str


OPTIMIZERS: dict[str, Optimizer] = {
    "sgd": Optimizer(0.1, 0.0, "momentum SGD: the paper's p = 0 baseline"),
    "adam": Optimizer(1e-3, 0.5, "optax.adamw"),
    # Padam's partial exponent (Chen et al. 2020), Adam-flavoured.
    "padam": Optimizer(0.1, 0.125, "Adam-flavoured with p = 1/8"),
    "nsf": Optimizer(0.1, None, "p from p_schedule"),
}
DEFAULT_METHODS = ("sgd", "adam", "padam", "nsf-const", "nsf-cosine", "nsf-pulse")
BASELINE = "sgd"


def get_optimizer(name: str) -> Optimizer:
    """The :data:`OPTIMIZERS` entry ``name``.

    Raises:
      ConfigError: for an unknown name, naming the choices.
    """
    if name not in OPTIMIZERS:
        raise ConfigError(
            f"Unknown optimizer {name!r}; choose one of {list(OPTIMIZERS)}.",
            ("optimizer",),
        )
    return OPTIMIZERS[name]


def label(optimizer: str, schedule: str, nsf_flavour: str, normalize: str) -> str:
    """A run's method label: "sgd", "adam", "padam" or e.g. "nsf-pulse".

    nsf labels name the p schedule by its registered label ("const", "cosine",
    "pulse"), then "-adam" for the Adam flavour and "-raw" for ``normalize="none"``.

    Examples:
      >>> label("nsf", "cosine_tidal", "adam", "none")
      'nsf-cosine-adam-raw'
    """
    if optimizer != "nsf":
        return optimizer
    text = f"nsf-{p_schedule.get(schedule).label}"
    if nsf_flavour == "adam":
        text += "-adam"
    if normalize == "none":
        text += "-raw"
    return text


def methods() -> dict[str, dict[str, Any]]:
    """Method label -> the config fields it sets (the rest come from the base)."""
    table: dict[str, dict[str, Any]] = {
        name: dict(optimizer=name) for name in OPTIMIZERS if name != "nsf"
    }
    for name, entry in p_schedule.SCHEDULES.items():
        table[f"nsf-{entry.label}"] = dict(optimizer="nsf", p_schedule=name)
    for name, entry in p_schedule.SCHEDULES.items():
        table[f"nsf-{entry.label}-raw"] = dict(
            optimizer="nsf", p_schedule=name, normalize="none"
        )
    return table


def overrides(method: str) -> dict[str, Any]:
    """The config fields of ``method``.

    Raises:
      ConfigError: for an unknown method, naming the choices.
    """
    table = methods()
    if method not in table:
        raise ConfigError(
            f"Unknown method {method!r}; choose from {list(table)}.", ("methods",)
        )
    return dict(table[method])
