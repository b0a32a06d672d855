"""The optimizers and the methods compared: one table, read before jax loads.

* :data:`OPTIMIZERS`: ``Config.optimizer``'s choices with what the examples need
  of each: the default peak learning rate and the fixed exponent ``p`` (None for
  ``nsf``, whose ``p`` comes from the registered p schedule; NaN for the peers
  that have no second-moment exponent, Lion and schedule-free AdamW). The
  optimizers themselves are built by :func:`.optimizers.create_optimizer`.
* :func:`label`: a run's method label (``Config.method``): the optimizer's name,
  ``nsf-<schedule label>`` with ``-adam`` / ``-raw`` suffixes, or for a cyclic
  baseline ``<optimizer>-<schedule label>`` (``sgd-cyclic-cosine``).
* :func:`methods` / :func:`overrides`: the methods ``compare`` accepts, by label:
  every optimizer but ``nsf`` and the cyclic ones under its own name; for every
  registered p schedule ``nsf-<label>`` and ``nsf-<label>-raw``; and for every
  registered p schedule with a period, the cyclic baselines
  ``sgd-cyclic-<label>`` / ``adam-cyclic-<label>`` (the learning rate cycled
  with that schedule's period and shape; ``sgd-cyclic`` / ``adam-cyclic`` name
  the pulse one, the default NSF schedule's). A new p schedule is a new method,
  and a new cyclic baseline, without any change here.

Imports only the standard library and :mod:`nsf_optax.p_schedule`'s registry.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from nsf_optax import p_schedule
from nsf_optax.experiments.runner.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Optimizer:
    """What the examples need to know of one optimizer.

    Attributes:
      learning_rate: the peak learning rate when ``Config.learning_rate`` is None.
      p: the fixed exponent (0 for momentum SGD, 1/2 for Adam); None when it comes
        from ``Config.p_schedule``; NaN (:data:`NO_EXPONENT`) for an optimizer
        that has none (the history's ``p`` column is then NaN).
      help: one line for ``--help``.
      cyclic: the learning rate is multiplied by a cycle of the period and shape
        of ``Config.p_schedule`` (:func:`.optimizers.create_lr_cycle`).
    """

    learning_rate: float
    p: float | None
    help: str
    cyclic: bool = False


#: The ``p`` of an optimizer without a second-moment exponent.
NO_EXPONENT = math.nan

OPTIMIZERS: dict[str, Optimizer] = {
    "sgd": Optimizer(0.1, 0.0, "momentum SGD: the paper's p = 0 baseline"),
    "sgd-nesterov": Optimizer(0.1, 0.0, "Nesterov momentum SGD, coupled decay"),
    "adam": Optimizer(1e-3, 0.5, "optax.adam with coupled (L2) weight decay"),
    "adamw": Optimizer(1e-3, 0.5, "optax.adamw (decoupled weight decay)"),
    # Padam's partial exponent (Chen et al. 2020), Adam-flavoured.
    "padam": Optimizer(0.1, 0.125, "Adam-flavoured with p = 1/8"),
    # Chen et al. 2023 advise a learning rate 3-10x below AdamW's: 1e-3 / 5.
    "lion": Optimizer(2e-4, NO_EXPONENT, "optax.lion (decoupled weight decay)"),
    "schedule-free-adamw": Optimizer(
        1e-3, NO_EXPONENT, "optax.contrib.schedule_free_adamw (no decay schedule)"
    ),
    "sgd-cyclic": Optimizer(0.1, 0.0, "sgd, lr cycled like p_schedule", cyclic=True),
    "adam-cyclic": Optimizer(1e-3, 0.5, "adam, lr cycled like p_schedule", cyclic=True),
    "nsf": Optimizer(0.1, None, "p from p_schedule"),
}
DEFAULT_METHODS = ("sgd", "adam", "padam", "nsf-const", "nsf-cosine", "nsf-pulse")
BASELINE = "sgd"
#: The p schedule that ``sgd-cyclic`` / ``adam-cyclic`` follow: the default
#: NSF schedule's (``nsf-pulse``).
CYCLIC_DEFAULT_SCHEDULE = "pulse_tidal"


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
    """A run's method label: "sgd", "adam", "lion", "sgd-cyclic-pulse", "nsf-pulse"...

    nsf labels name the p schedule by its registered label ("const", "cosine",
    "pulse"), then "-adam" for the Adam flavour and "-raw" for ``normalize="none"``.
    Cyclic baselines name the schedule whose period and shape they follow.

    Args:
      optimizer: ``Config.optimizer``.
      schedule: ``Config.p_schedule``.
      nsf_flavour: ``Config.nsf_flavour``.
      normalize: ``Config.normalize``.

    Returns:
      The label.

    Examples:
      >>> label("nsf", "cosine_tidal", "adam", "none")
      'nsf-cosine-adam-raw'
      >>> label("sgd-cyclic", "cosine_tidal", "sgd", "rms")
      'sgd-cyclic-cosine'
    """
    if optimizer in OPTIMIZERS and OPTIMIZERS[optimizer].cyclic:
        return f"{optimizer}-{p_schedule.get(schedule).label}"
    if optimizer != "nsf":
        return optimizer
    text = f"nsf-{p_schedule.get(schedule).label}"
    if nsf_flavour == "adam":
        text += "-adam"
    if normalize == "none":
        text += "-raw"
    return text


def methods() -> dict[str, dict[str, Any]]:
    """Method label -> the config fields it sets (the rest come from the base).

    Returns:
      Every optimizer but ``nsf`` and the cyclic ones under its own name; the
      cyclic ones under ``<name>`` (following :data:`CYCLIC_DEFAULT_SCHEDULE`)
      and ``<name>-<label>`` for every registered p schedule with a period;
      ``nsf-<label>``, ``nsf-<label>-raw``, ``nsf-<label>-adam`` and
      ``nsf-<label>-adam-raw`` for every registered p schedule (:func:`label`:
      the momentum-SGD or the Adam flavour, ``normalize="rms"`` or the raw
      gain).
    """
    table: dict[str, dict[str, Any]] = {
        name: dict(optimizer=name)
        for name, entry in OPTIMIZERS.items()
        if name != "nsf" and not entry.cyclic
    }
    for name in (n for n, o in OPTIMIZERS.items() if o.cyclic):
        table[name] = dict(optimizer=name, p_schedule=CYCLIC_DEFAULT_SCHEDULE)
        for schedule, entry in p_schedule.SCHEDULES.items():
            if entry.periods():  # a constant p has no cycle to follow
                table[f"{name}-{entry.label}"] = dict(
                    optimizer=name, p_schedule=schedule
                )
    for flavour in ("sgd", "adam"):
        for normalize in ("rms", "none"):
            for name in p_schedule.SCHEDULES:
                fields: dict[str, Any] = dict(optimizer="nsf", p_schedule=name)
                if flavour == "adam":
                    fields["nsf_flavour"] = "adam"
                if normalize == "none":
                    fields["normalize"] = "none"
                table[label("nsf", name, flavour, normalize)] = fields
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
