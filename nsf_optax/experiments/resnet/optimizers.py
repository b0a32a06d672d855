"""The optimizers of the examples, built from a :class:`.Config` by name.

* :func:`create_learning_rate_schedule`: the learning-rate schedule every
  optimizer shares (schedule-free AdamW: its own warmup and no decay; the cyclic
  baselines: times :func:`create_lr_cycle`).
* :func:`create_p_schedule`: the exponent p(t): the optimizer's fixed ``p``
  (:data:`.methods.OPTIMIZERS`), or for ``nsf`` the schedule registered under
  ``config.p_schedule`` (:data:`nsf_optax.p_schedule.SCHEDULES`), built from
  ``config.p_params``.
* :func:`create_optimizer`: the optimizer named by ``config.optimizer``, through
  one table (:data:`BUILDERS`, keyed like :data:`.methods.OPTIMIZERS`); an unknown
  name raises, naming the choices.
* :func:`evaluation_params`: the parameters a model is evaluated with (the
  averaged ``x`` sequence for schedule-free AdamW, else the iterate).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
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
        ``num_steps``; for a cyclic optimizer also what :func:`create_lr_cycle`
        uses.

    Returns:
      ``warmup_cosine``: linear warmup from 0 to the peak, cosine decay to 0 at
      ``num_steps``; ``piecewise``: the peak, divided by 10 at 50 % and again at 75 %
      of ``num_steps``. Schedule-free AdamW ignores ``lr_schedule``: linear warmup
      to the peak, then constant (its point is needing no decay schedule). The
      cyclic optimizers (``sgd-cyclic``, ``adam-cyclic``) multiply it by
      :func:`create_lr_cycle`.
    """
    base = _base_learning_rate_schedule(config)
    if methods.get_optimizer(config.optimizer).cyclic:
        cycle = create_lr_cycle(config)
        return lambda count: base(count) * cycle(count)
    return base


def _base_learning_rate_schedule(config: Config) -> optax.Schedule:
    peak = config.peak_learning_rate
    if config.optimizer == "schedule-free-adamw":
        return optax.warmup_constant_schedule(0.0, peak, config.warmup_steps)
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
      An :class:`optax.Schedule`: the optimizer's fixed ``p`` (0 for the SGDs,
      1/2 for the Adams, 1/8 for padam) as a constant; NaN for an optimizer
      without an exponent (lion, schedule-free-adamw); for nsf the registered
      ``config.p_schedule`` built from ``config.p_params``.

    Raises:
      ConfigError: an unknown optimizer or p schedule, naming the choices.
    """
    fixed = methods.get_optimizer(config.optimizer).p
    if fixed is not None and np.isnan(fixed):
        return lambda count: jnp.full([], jnp.nan, jnp.float32)
    if fixed is not None:
        return p_schedule.constant(fixed)
    return _registered_p_schedule(config)


def _registered_p_schedule(config: Config) -> optax.Schedule:
    try:
        entry = p_schedule.get(config.p_schedule)
    except ValueError as e:
        raise ConfigError(str(e), ("p_schedule",)) from None
    return entry.from_params(config.p_params)


def create_cycle_position(config: Config) -> optax.Schedule:
    r"""Where ``config.p_schedule`` stands in its range, from -1 to 1.

    .. math::

      s(t) = (p(t) - c) / h

    with :math:`p(t)` the registered ``config.p_schedule`` (what ``nsf`` would
    use) and :math:`c`, :math:`h` the centre and half-width of the values it
    takes over the run's ``num_steps``; 0 for a constant p.

    Args:
      config: uses ``p_schedule``, ``p_params`` and ``num_steps``.

    Returns:
      An :class:`optax.Schedule` of :math:`s(t)`.
    """
    p = _registered_p_schedule(config)
    values = np.asarray(jax.vmap(p)(jnp.arange(config.num_steps)), np.float64)
    low, high = float(values.min()), float(values.max())
    centre, half = 0.5 * (high + low), 0.5 * (high - low)

    def position(count: Any) -> jax.Array:
        if half == 0.0:
            return jnp.zeros([], jnp.float32)
        return jnp.asarray((p(count) - centre) / half, jnp.float32)

    return position


def create_lr_cycle(config: Config) -> optax.Schedule:
    r"""The learning-rate factor of a cyclic baseline: ``config.p_schedule``'s shape.

    .. math::

      f(t) = A^{s(t)}

    with :math:`s(t)` from :func:`create_cycle_position`, so the factor has the
    period and shape of the p schedule (a cosine for ``cosine_tidal``; the pulse
    and the square tide for ``pulse_tidal``) and swings between :math:`1/A` at
    the lowest p and :math:`A` at the highest, as the raw gain
    :math:`\hat v^{-p}` scales the step by a power. ``A =
    config.cyclic_amplitude`` (:mod:`.step_swing` measures the swing it stands
    for); a constant p gives 1.

    Args:
      config: uses ``p_schedule``, ``p_params``, ``num_steps`` and
        ``cyclic_amplitude``.

    Returns:
      An :class:`optax.Schedule` of the factor.
    """
    position = create_cycle_position(config)
    log_amplitude = float(np.log(config.cyclic_amplitude))
    return lambda count: jnp.exp(log_amplitude * position(count))


def decay_mask(params: Any) -> Any:
    """Weight decay on kernels only: leaves with more than one dimension."""
    return jax.tree.map(lambda x: x.ndim > 1, params)


def _coupled_decay(config: Config) -> optax.GradientTransformation:
    # Torch-style L2: the decay is added to the gradient before the optimizer.
    return optax.add_decayed_weights(config.weight_decay, mask=decay_mask)


def _adam(config: Config, lr: optax.Schedule, p: Any) -> optax.GradientTransformation:
    del p  # optax's own Adam: p = 1/2
    return optax.chain(
        _coupled_decay(config),
        optax.adam(lr, b1=config.momentum, b2=config.b2, eps=config.eps),
    )


def _adamw(config: Config, lr: optax.Schedule, p: Any) -> optax.GradientTransformation:
    del p  # optax's own AdamW: p = 1/2
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
    return optax.chain(_coupled_decay(config), optax.sgd(lr, momentum=config.momentum))


def _sgd_nesterov(
    config: Config, lr: optax.Schedule, p: Any
) -> optax.GradientTransformation:
    del p  # p = 0
    return optax.chain(
        _coupled_decay(config),
        optax.sgd(lr, momentum=config.momentum, nesterov=True),
    )


# Lion's decoupled decay is scaled by its learning rate, which is 5x below AdamW's
# (methods.OPTIMIZERS): Chen et al. 2023 scale the decay up by as much, keeping
# lr * weight_decay equal to AdamW's.
LION_DECAY_FACTOR = 5.0
# Lion's b2 is a second momentum, not a second-moment decay: the paper's 0.99.
LION_B2 = 0.99


def _lion(config: Config, lr: optax.Schedule, p: Any) -> optax.GradientTransformation:
    del p  # no second-moment exponent
    return optax.lion(
        lr,
        b1=config.momentum,
        b2=LION_B2,
        weight_decay=LION_DECAY_FACTOR * config.weight_decay,
        mask=decay_mask,
    )


def _schedule_free_adamw(
    config: Config, lr: optax.Schedule, p: Any
) -> optax.GradientTransformation:
    del p  # no exponent of its own (its base is RMSProp-like, momentum-free)
    # optax.contrib.schedule_free_adamw with its decay masked to kernels like every
    # other optimizer here (it takes no mask); lr already holds its warmup.
    return optax.contrib.schedule_free(
        optax.chain(
            optax.scale_by_rms(
                decay=config.b2, eps=config.eps, eps_in_sqrt=False, bias_correction=True
            ),
            optax.add_decayed_weights(config.weight_decay, mask=decay_mask),
            optax.scale_by_learning_rate(lr),
        ),
        learning_rate=lr,
        b1=config.momentum,
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
    "sgd-nesterov": _sgd_nesterov,
    "adam": _adam,
    "adamw": _adamw,
    "padam": _padam,
    "lion": _lion,
    "schedule-free-adamw": _schedule_free_adamw,
    "sgd-cyclic": _sgd,
    "adam-cyclic": _adam,
    "nsf": _nsf,
}


def evaluation_params(config: Config, params: Any, opt_state: Any) -> Any:
    """The parameters a model is evaluated with.

    Schedule-free AdamW trains at the interpolation ``y`` (what the model holds)
    and answers with the average ``x``; every other optimizer's iterate is its
    answer. BatchNorm statistics are not parameters: they stay those
    accumulated along ``y`` (the schedule-free paper recomputes them at ``x``;
    we do not, which can only handicap schedule-free AdamW).

    Args:
      config: the run configuration (uses ``optimizer``).
      params: the trained parameters (``y`` for schedule-free AdamW).
      opt_state: the optimizer's state, as :func:`create_optimizer` builds it.

    Returns:
      ``optax.contrib.schedule_free_eval_params`` of its schedule-free state
      (inside ``optax.inject_hyperparams``' when a population injects the
      learning rate) for schedule-free AdamW, ``params`` itself otherwise.
    """
    if config.optimizer != "schedule-free-adamw":
        return params
    while not isinstance(opt_state, optax.contrib.ScheduleFreeState):
        opt_state = opt_state.inner_state  # an inject_hyperparams state
    return optax.contrib.schedule_free_eval_params(opt_state, params)


def create_optimizer(
    config: Config, *, inject_p: bool = False, inject_learning_rate: bool = False
) -> optax.GradientTransformation:
    """The optimizer named by ``config.optimizer``, with the shared LR schedule.

    * ``sgd``: ``add_decayed_weights`` then ``optax.sgd(lr, momentum)`` (torch-style
      coupled weight decay): the paper's p = 0 baseline.
    * ``nsf`` (flavour "sgd"): the same chain with ``nsf_optax.nsf_sgd`` and the p
      schedule: the paper's ResNet setting; bit for bit the baseline at p = 0.
    * ``sgd-nesterov``: the same with ``nesterov=True``; ``adam``: the same with
      ``optax.adam`` (the paper's Adam baseline); ``sgd-cyclic`` /
      ``adam-cyclic``: ``sgd`` / ``adam`` with the cycled learning rate
      (:func:`create_learning_rate_schedule`).
    * ``adamw``: ``optax.adamw``; ``lion``: ``optax.lion`` (b2 0.99, decay x5,
      see :data:`LION_DECAY_FACTOR`); ``schedule-free-adamw``:
      ``optax.contrib.schedule_free_adamw`` (its decay masked to kernels);
      ``padam``: ``nsf_optax.nsfw`` with p = 1/8; ``nsf`` (flavour "adam"):
      ``nsf_optax.nsfw`` with the p schedule. These take decoupled weight decay.

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
