"""The tuning flags every training command shares: :func:`add_flags`, :func:`search`.

``--tune`` tunes the learning rate of every key (a method, a p, a budget) by
:mod:`.protocol`; ``--lr_grid``, ``--lr_extend``, ``--tune_seeds`` and
``--val_fraction`` shape the search and need ``--tune``. The command's
``--val_fraction`` is the search's held-out fraction, so a command that adds
these flags leaves the config field of that name out of its config flags
(:data:`CONFIG_FIELDS`): its final runs train on the whole training set.

No jax import: the flags are parsed and checked before jax loads.
"""

from __future__ import annotations

import argparse
import math
from typing import TYPE_CHECKING

from nsf_optax.experiments.runner import cli
from nsf_optax.experiments.runner.errors import ConfigError
from nsf_optax.experiments.runner.fields import Bound

if TYPE_CHECKING:
    from nsf_optax.experiments.tuning.protocol import Search

# Config fields whose flag these flags replace (exclude them from the config flags).
CONFIG_FIELDS = ("val_fraction",)
# Search field -> the flag's dest (not "val_fraction": config_from_flags would
# take it for the config field).
_SEARCH_FLAGS = {
    "lr_grid": "lr_grid",
    "tune_seeds": "tune_seeds",
    "val_fraction": "tune_val_fraction",
    "lr_extend": "lr_extend",
}


_positive_float = cli.float_flag(
    lambda v: math.isfinite(v) and v > 0, "must be a positive number"
)
_fraction = cli.float_flag(lambda v: 0 < v < 0.5, "must be in (0, 0.5)")


def add_flags(parser: argparse.ArgumentParser, *, per: str) -> None:
    """Adds ``--tune``, ``--lr_grid``, ``--lr_extend``, ``--tune_seeds`` and
    ``--val_fraction``.

    Args:
      parser: the command's parser (without a ``--val_fraction`` config flag:
        see :data:`CONFIG_FIELDS`).
      per: what gets its own learning rate, for the help (e.g. "p and label
        noise level").
    """
    parser.add_argument(
        "--tune",
        action="store_true",
        help=f"tune the peak learning rate per {per} on a held-out validation "
        "split (the same grid and tuning seeds for each), then train the final "
        "seeds at the chosen rates on the whole training set",
    )
    parser.add_argument(
        "--lr_grid",
        type=_positive_float,
        nargs="+",
        default=None,
        metavar="LR",
        help="with --tune: the learning rates tried, positive and distinct "
        "(default: 5 points a factor sqrt(10) apart centred on the preset's rate)",
    )
    parser.add_argument(
        "--lr_extend",
        type=cli.int_flag(Bound(low=0)),
        default=None,
        metavar="N",
        help="with --tune: while a choice is at the grid's edge, add one more "
        "rate beyond it, at most N times [>= 0] (default 3)",
    )
    parser.add_argument(
        "--tune_seeds",
        type=cli.int_flag(Bound(low=0, low_open=True)),
        default=None,
        metavar="N",
        help="with --tune: tuning seeds per learning rate, 1000..1000+N-1, "
        "disjoint from the final seeds [> 0] (default 2)",
    )
    parser.add_argument(
        "--val_fraction",
        dest=_SEARCH_FLAGS["val_fraction"],
        type=_fraction,
        default=None,
        metavar="F",
        help="with --tune: the fraction of the training set each tuning trial "
        "holds out and is scored on, in (0, 0.5) (default 0.1)",
    )


def search(args: argparse.Namespace) -> Search | None:
    """The search the flags ask for; None without ``--tune``.

    Args:
      args: flags parsed by a parser with :func:`add_flags`.

    Returns:
      A :class:`~.protocol.Search` with the given values (the others at their
      defaults), or None.

    Raises:
      ConfigError: for a search flag without ``--tune``, naming it.
    """
    from nsf_optax.experiments.tuning.protocol import Search

    given = {name: getattr(args, dest) for name, dest in _SEARCH_FLAGS.items()}
    given = {name: value for name, value in given.items() if value is not None}
    if not args.tune:
        if given:
            name = next(iter(given))
            raise ConfigError(f"{name} needs --tune.", (name,))
        return None
    if "lr_grid" in given:
        given["lr_grid"] = tuple(given["lr_grid"])
    return Search(**given)
