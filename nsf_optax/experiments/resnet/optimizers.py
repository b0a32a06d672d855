"""The optimizers of the examples, built from a :class:`.Config` by name.

* :func:`create_learning_rate_schedule`: the learning-rate schedule every
  optimizer shares.
* :func:`create_p_schedule`: the exponent p(t): the optimizer's fixed ``p``
  (:data:`.methods.OPTIMIZERS`), or for ``nsf`` the schedule registered under
  ``config.p_schedule`` (:data:`nsf_optax.p_schedule.SCHEDULES`), built from
  ``config.p_params``.
* :func:`create_optimizer`: the optimizer named by ``config.optimizer``, through
  one table (:data:`BUILDERS`, keyed like :data:`.methods.OPTIMIZERS`); an unknown
  name raises, naming the choices.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Literal

import jax
import optax

import nsf_optax
from nsf_optax import p_schedule
from nsf_optax.experiments.resnet import methods
from nsf_optax.experiments.resnet.configs.default import Config
from nsf_optax.experiments.runner.errors import ConfigError


def create_learning_rate_schedule(config: Config) -> optax.Schedule:
    """The learning-rate schedule shared by every optimizer.

    Args:
      config: uses ``lr_schedule``, ``peak_learning_rate``, ``warmup_steps`` and
        ``num_steps``.

    Returns:
      ``warmup_cosine``: linear warmup from 0 to the peak, cosine decay to 0 at
      ``num_steps``; ``piecewise``: the peak, divided by 10 at 50 % and again at 75 %
      of ``num_steps``.
    """
    peak = config.peak_learning_rate
    if config.lr_schedule == "warmup_cosine":
        return optax.warmup_cosine_decay_schedule(
            init_value=0.0,
            peak_value=peak,
            warmup_steps=config.warmup_steps,
            decay_steps=config.num_steps,
            end_value=0.0,
        )
    if config.lr_schedule == "piecewise":
        boundaries = {
            int(0.5 * config.num_steps): 0.1,
            int(0.75 * config.num_steps): 0.1,
        }
        return optax.piecewise_constant_schedule(peak, boundaries)
    raise ConfigError(
        f"Unknown lr_schedule {config.lr_schedule!r}; choose one of "
        "['warmup_cosine', 'piecewise'].",
        ("lr_schedule",),
    )


def create_p_schedule(config: Config) -> optax.Schedule:
    """The exponent p(t) of the chosen optimizer (for nsf) or its fixed value.

    Args:
      config: uses ``optimizer``, ``p_schedule`` and ``p_params``.

    Returns:
      An :class:`optax.Schedule`: the optimizer's fixed ``p`` (0 for sgd, 1/2 for
      adam, 1/8 for padam) as a constant; for nsf the registered
      ``config.p_schedule`` built from ``config.p_params``.

    Raises:
      ConfigError: an unknown optimizer or p schedule, naming the choices.
    """
    fixed = methods.get_optimizer(config.optimizer).p
    if fixed is not None:
        return p_schedule.constant(fixed)
    try:
        entry = p_schedule.get(config.p_schedule)
    except ValueError as e:
        raise ConfigError(str(e), ("p_schedule",)) from None
    return entry.from_params(config.p_params)


def decay_mask(params: Any) -> Any:
    """Weight decay on kernels only: leaves with more than one dimension."""
    return jax.tree.map(lambda x: x.ndim > 1, params)


def _adam(config: Config, lr: optax.Schedule, p: Any) -> optax.GradientTransformation:
    del p  # optax's own Adam: p = 1/2
    return optax.adamw(
        lr,
        b1=config.momentum,
        b2=config.b2,
        eps=config.eps,
        weight_decay=config.weight_decay,
        mask=decay_mask,
    )


def _sgd(config: Config, lr: optax.Schedule, p: Any) -> optax.GradientTransformation:
    del p  # optax's own momentum SGD: p = 0
    return optax.chain(
        optax.add_decayed_weights(config.weight_decay, mask=decay_mask),
        optax.sgd(lr, momentum=config.momentum),
    )


def _nsfw(
    config: Config, lr: optax.Schedule, p: Any, normalize: Literal["rms"] | None
) -> optax.GradientTransformation:
    return nsf_optax.nsfw(
        lr,
        b1=config.momentum,
        b2=config.b2,
        eps=config.eps,
        p=p,
        weight_decay=config.weight_decay,
        mask=decay_mask,
        normalize=normalize,
    )


def _padam(config: Config, lr: optax.Schedule, p: Any) -> optax.GradientTransformation:
    # The static exponent itself (not a schedule): its fast kernel.
    return _nsfw(config, lr, p, normalize=None)


def _nsf(config: Config, lr: optax.Schedule, p: Any) -> optax.GradientTransformation:
    normalize = None if config.normalize == "none" else config.normalize
    if config.nsf_flavour == "adam":
        return _nsfw(config, lr, p, normalize)
    return optax.chain(
        optax.add_decayed_weights(config.weight_decay, mask=decay_mask),
        nsf_optax.nsf_sgd(
            lr,
            momentum=config.momentum,
            b2=config.b2,
            eps=config.eps,
            p=p,
            normalize=normalize,
        ),
    )


Builder = Callable[[Config, optax.Schedule, Any], optax.GradientTransformation]
# Optimizer name -> builder(config, learning-rate schedule, p); the names and the
# facts the examples need of each (default learning rate, fixed p) are
# :data:`.methods.OPTIMIZERS`.
BUILDERS: dict[str, Builder] = {
    "sgd": _sgd,
    "adam": _adam,
    "padam": _padam,
    "nsf": _nsf,
}


def evaluation_params(config: Config, params: Any, opt_state: Any) -> Any:
    """The parameters a model is evaluated with.

    Args:
      config: the run configuration (uses ``optimizer``).
      params: the trained parameters.
      opt_state: the optimizer's state.

    Returns:
      ``params`` itself for every optimizer whose iterate is its answer.
    """
    del config, opt_state
    return params


def create_optimizer(
    config: Config, *, inject_p: bool = False, inject_learning_rate: bool = False
) -> optax.GradientTransformation:
    """The optimizer named by ``config.optimizer``, with the shared LR schedule.

    * ``sgd``: ``add_decayed_weights`` then ``optax.sgd(lr, momentum)`` (torch-style
      coupled weight decay): the paper's p = 0 baseline.
    * ``nsf`` (flavour "sgd"): the same chain with ``nsf_optax.nsf_sgd`` and the p
      schedule: the paper's ResNet setting; bit for bit the baseline at p = 0.
    * ``adam``: ``optax.adamw``; ``padam``: ``nsf_optax.nsfw`` with p = 1/8;
      ``nsf`` (flavour "adam"): ``nsf_optax.nsfw`` with the p schedule. These take
      decoupled weight decay.

    Args:
      config: the run configuration.
      inject_p: for ``nsf`` with the ``constant`` p schedule only: wrap the
        optimizer in ``optax.inject_hyperparams`` with ``p`` an injected
        hyperparameter, so that the state carries the exponent
        (``state.hyperparams["p"]``, initially ``config.p_value``) and every run
        of a population (:mod:`.population`) trains with its own traced ``p``.
      inject_learning_rate: for any optimizer: wrap it in
        ``optax.inject_hyperparams`` with ``learning_rate`` (the peak, initially
        ``config.peak_learning_rate``) an injected hyperparameter; the schedule
        is then ``learning_rate * shape(count)``, ``shape`` the config's schedule
        at peak 1 (equal to the usual schedule to float rounding). The builder
        is rebuilt every step with the traced peak, whatever it is.

    Returns:
      An optax gradient transformation.

    Raises:
      ConfigError: an unknown optimizer (naming the choices), or ``inject_p`` with
        another optimizer or p schedule.
    """
    if config.optimizer not in BUILDERS:
        raise ConfigError(
            f"Unknown optimizer {config.optimizer!r}; choose one of {list(BUILDERS)}.",
            ("optimizer",),
        )
    build = BUILDERS[config.optimizer]
    if inject_p and (config.optimizer != "nsf" or config.p_schedule != "constant"):
        raise ConfigError(
            "A per-run p needs optimizer 'nsf' with p_schedule 'constant', got "
            f"{config.optimizer!r} with {config.p_schedule!r}.",
            ("optimizer", "p_schedule"),
        )
    fixed = methods.get_optimizer(config.optimizer).p
    p = fixed if fixed is not None else create_p_schedule(config)
    if not inject_learning_rate:
        lr = create_learning_rate_schedule(config)
        if not inject_p:
            return build(config, lr, p)
        return optax.inject_hyperparams(lambda p: build(config, lr, p))(
            p=config.p_params["p_value"]
        )
    shape = create_learning_rate_schedule(
        dataclasses.replace(config, learning_rate=1.0)
    )

    def scaled(peak: Any) -> optax.Schedule:
        return lambda count: peak * shape(count)

    peak = config.peak_learning_rate
    if not inject_p:
        return optax.inject_hyperparams(
            lambda learning_rate: build(config, scaled(learning_rate), p)
        )(learning_rate=peak)
    return optax.inject_hyperparams(
        lambda learning_rate, p: build(config, scaled(learning_rate), p)
    )(learning_rate=peak, p=config.p_params["p_value"])
