"""The aliases: :func:`nsf`, :func:`nsfw` and :func:`nsf_sgd`, optax's
:func:`optax.adam`, :func:`optax.adamw` and :func:`optax.sgd` with a ``p``."""

from collections.abc import Callable
from typing import Any

import jax
import optax

from nsf_optax import _checks
from nsf_optax._transform import (
    Normalize,
    PLike,
    scale_by_pexp,
    scale_by_pexp_momentum,
)

__all__ = ["nsf", "nsf_sgd", "nsfw"]


def nsf(
    learning_rate: optax.ScalarOrSchedule,
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-8,
    eps_root: jax.typing.ArrayLike = 0.0,
    mu_dtype: jax.typing.DTypeLike | None = None,
    *,
    nesterov: bool = False,
    p: PLike = 0.5,
    nu_dtype: jax.typing.DTypeLike | None = None,
    normalize: Normalize = None,
) -> optax.GradientTransformationExtraArgs:
    r"""Natural Spectral Fusion, Adam-flavoured: Adam with a free exponent ``p``.

    For every coordinate, with gradient :math:`g_t` at step :math:`t \ge 1`:

    .. math::

      m_t &= \beta_1 m_{t-1} + (1 - \beta_1) g_t, \qquad
      v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2, \\
      \hat m_t &= m_t / (1 - \beta_1^t), \qquad
      \hat v_t = v_t / (1 - \beta_2^t), \\
      u_t &= \frac{\hat m_t}{(\hat v_t + \epsilon_{\text{root}})^{p(t)}
             + \epsilon}, \qquad
      \theta_t = \theta_{t-1} - \eta_t u_t.

    ``p = 0.5`` is :func:`optax.adam` bit for bit, ``p = 0`` momentum SGD on the
    EMA of the gradients, ``p`` in ``(0, 0.5)`` Padam; ``p < 0`` amplifies
    coordinates with a large second moment (high-pass), ``p > 0`` damps them
    (low-pass). ``p`` may be an :class:`optax.Schedule`
    (:mod:`nsf_optax.p_schedule`). The positional arguments are
    :func:`optax.adam`'s, in its order and with its defaults; ``p`` and the other
    extras are keyword-only. The :doc:`method page </method>` gives the paper
    setting this reproduces, the numerics, the checks and traced hyperparameters.

    Args:
      learning_rate: a finite scalar or an :class:`optax.Schedule`.
      b1: decay of the first-moment EMA, in ``[0, 1)``.
      b2: decay of the second-moment EMA, in ``[0, 1)``.
      eps: added after the power, finite and ``>= 0``; bounds the update by
        ``|mhat| / eps`` when ``p < 0``.
      eps_root: added before the power, finite and ``>= 0``.
      mu_dtype: floating dtype of the first moment; ``None`` takes the
        params'.
      nesterov: use Nesterov momentum (NAdam at ``p = 0.5``).
      p: the exponent, any finite real scalar, or an :class:`optax.Schedule`
        of the step count returning one.
      nu_dtype: floating dtype of the second moment; ``None`` takes the
        params' dtype, but at least float32.
      normalize: ``None`` or ``"rms"``: each leaf's update rescaled to the
        RMS of Adam's update for the same moments, so that ``p`` only
        reweights coordinates and ``nsf(lr, p=..., normalize="rms")`` keeps
        ``optax.adam(lr)``'s step size.

    Returns:
      An :class:`optax.GradientTransformationExtraArgs`.

    Examples:
      >>> import jax, jax.numpy as jnp, optax
      >>> import nsf_optax
      >>> from nsf_optax import p_schedule
      >>> def f(x): return jnp.sum(x ** 2)
      >>> tide = p_schedule.cosine_tidal(-0.25, 0.5, period_steps=20)
      >>> solver = nsf_optax.nsf(learning_rate=0.05, p=tide)
      >>> params = jnp.array([1.0, 2.0, 3.0])
      >>> state = solver.init(params)
      >>> update = jax.jit(solver.update)
      >>> for _ in range(200):
      ...   grad = jax.grad(f)(params)
      ...   updates, state = update(grad, state, params)
      ...   params = optax.apply_updates(params, updates)
      >>> bool(f(params) < 1e-2)
      True

    References:
      Zhang & Liu, `Natural Spectral Fusion: p-Exponent Cyclic Scheduling and
      Early Decision-Boundary Alignment in First-Order Optimization
      <https://arxiv.org/abs/2509.04713>`_, 2025.

      Kingma & Ba, `Adam: A Method for Stochastic Optimization
      <https://arxiv.org/abs/1412.6980>`_, 2014.

      Chen et al., `Closing the Generalization Gap of Adaptive Gradient Methods
      in Training Deep Neural Networks <https://arxiv.org/abs/1806.06763>`_,
      2020 (Padam).
    """
    _checks.check_scalar_or_schedule("learning_rate", learning_rate, nonnegative=False)
    return optax.chain(
        scale_by_pexp(
            b1,
            b2,
            eps,
            eps_root,
            mu_dtype,
            nesterov=nesterov,
            p=p,
            nu_dtype=nu_dtype,
            normalize=normalize,
        ),
        optax.scale_by_learning_rate(learning_rate),
    )


def nsfw(
    learning_rate: optax.ScalarOrSchedule,
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-8,
    eps_root: jax.typing.ArrayLike = 0.0,
    mu_dtype: jax.typing.DTypeLike | None = None,
    weight_decay: optax.ScalarOrSchedule = 1e-4,
    mask: Any | Callable[[optax.Params], Any] | None = None,
    *,
    nesterov: bool = False,
    p: PLike = 0.5,
    nu_dtype: jax.typing.DTypeLike | None = None,
    normalize: Normalize = None,
) -> optax.GradientTransformationExtraArgs:
    r""":func:`nsf` with decoupled weight decay, as :func:`optax.adamw`.

    .. math::

      \theta_t = \theta_{t-1} - \eta_t \left(u_t + \lambda \theta_{t-1}\right),

    with :math:`u_t` the update of :func:`nsf`. ``p = 0.5`` is
    :func:`optax.adamw`, whose positional arguments (order and defaults) these
    are; ``p`` and the other extras are keyword-only.

    Args:
      learning_rate: a finite scalar or an :class:`optax.Schedule`.
      b1: decay of the first-moment EMA, in ``[0, 1)``.
      b2: decay of the second-moment EMA, in ``[0, 1)``.
      eps: added after the power, finite and ``>= 0``.
      eps_root: added before the power, finite and ``>= 0``.
      mu_dtype: floating dtype of the first moment.
      weight_decay: the decoupled decay :math:`\lambda`, finite and ``>= 0``,
        or an :class:`optax.Schedule`.
      mask: a pytree of booleans like the params, or a callable returning one,
        selecting the leaves that decay (see :func:`optax.add_decayed_weights`).
      nesterov: use Nesterov momentum.
      p: the exponent (any finite real scalar) or an :class:`optax.Schedule`.
      nu_dtype: floating dtype of the second moment (at least float32 by
        default).
      normalize: ``None`` or ``"rms"``, as in :func:`nsf`.

    Returns:
      An :class:`optax.GradientTransformationExtraArgs`.

    Examples:
      >>> import jax.numpy as jnp
      >>> import nsf_optax
      >>> solver = nsf_optax.nsfw(1e-3, p=-0.25, weight_decay=1e-2)
      >>> params = {"w": jnp.ones((2, 2)), "b": jnp.zeros(2)}
      >>> state = solver.init(params)
      >>> updates, state = solver.update(params, state, params)
      >>> updates["w"].shape
      (2, 2)

    References:
      Loshchilov & Hutter, `Decoupled Weight Decay Regularization
      <https://arxiv.org/abs/1711.05101>`_, 2019.
    """
    _checks.check_scalar_or_schedule("learning_rate", learning_rate, nonnegative=False)
    _checks.check_scalar_or_schedule("weight_decay", weight_decay, nonnegative=True)
    return optax.chain(
        scale_by_pexp(
            b1,
            b2,
            eps,
            eps_root,
            mu_dtype,
            nesterov=nesterov,
            p=p,
            nu_dtype=nu_dtype,
            normalize=normalize,
        ),
        optax.add_decayed_weights(weight_decay, mask),
        optax.scale_by_learning_rate(learning_rate),
    )


def nsf_sgd(
    learning_rate: optax.ScalarOrSchedule,
    momentum: jax.typing.ArrayLike | None = None,
    nesterov: bool = False,
    accumulator_dtype: jax.typing.DTypeLike | None = None,
    *,
    p: PLike = 0.0,
    b2: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-8,
    eps_root: jax.typing.ArrayLike = 0.0,
    nu_dtype: jax.typing.DTypeLike | None = None,
    normalize: Normalize = None,
) -> optax.GradientTransformationExtraArgs:
    r"""Natural Spectral Fusion, SGD-flavoured: the paper's ResNet setting.

    Heavy-ball momentum, as :func:`optax.sgd`, multiplied by the ``p``-gain of
    the bias-corrected second moment:

    .. math::

      b_t &= \mu b_{t-1} + g_t, \qquad
      v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2, \qquad
      \hat v_t = v_t / (1 - \beta_2^t), \\
      u_t &= \frac{b_t}{(\hat v_t + \epsilon_{\text{root}})^{p(t)} + \epsilon},
      \qquad \theta_t = \theta_{t-1} - \eta_t u_t,

    with :math:`b_t = g_t` when ``momentum`` is ``None``. The positional
    arguments are :func:`optax.sgd`'s, in its order and with its defaults (no
    momentum unless given); ``p`` and the other extras are keyword-only. At
    ``p = 0`` it is ``optax.sgd(learning_rate, momentum, nesterov,
    accumulator_dtype)`` bit for bit: with ``momentum=0.9``, the paper's baseline;
    a ``p`` schedule such as ``p_schedule.pulse_tidal(...)`` then reproduces the
    paper's ResNet runs. ``normalize="rms"`` keeps the step size of the momentum
    as ``p`` moves; the :doc:`method page </method>` says why, and gives the
    numerics, the checks and the traced hyperparameters.

    Args:
      learning_rate: a finite scalar or an :class:`optax.Schedule`.
      momentum: the momentum decay :math:`\mu`, in ``[0, 1)``, or ``None``
        (default, as in :func:`optax.sgd`) for none.
      nesterov: use Nesterov momentum.
      accumulator_dtype: floating dtype of the momentum; ``None`` takes the
        params'.
      p: the exponent (any finite real scalar) or an :class:`optax.Schedule`.
      b2: decay of the second-moment EMA, in ``[0, 1)``.
      eps: added after the power, finite and ``>= 0``.
      eps_root: added before the power, finite and ``>= 0``.
      nu_dtype: floating dtype of the second moment (at least float32 by
        default).
      normalize: ``None`` or ``"rms"``.

    Returns:
      An :class:`optax.GradientTransformationExtraArgs`.

    Examples:
      >>> import jax.numpy as jnp, optax
      >>> import nsf_optax
      >>> params = jnp.array([1.0, -2.0])
      >>> grads = jnp.array([0.1, 0.3])
      >>> ours, theirs = nsf_optax.nsf_sgd(0.1, 0.9), optax.sgd(0.1, 0.9)
      >>> u1, _ = ours.update(grads, ours.init(params))
      >>> u2, _ = theirs.update(grads, theirs.init(params))
      >>> bool((u1 == u2).all())
      True

    References:
      Zhang & Liu, `Natural Spectral Fusion
      <https://arxiv.org/abs/2509.04713>`_, 2025 (Sec. 5, ResNet-18).
    """
    _checks.check_scalar_or_schedule("learning_rate", learning_rate, nonnegative=False)
    if momentum is not None:
        _checks.check_decay("momentum", momentum)
    return optax.chain(
        scale_by_pexp_momentum(
            momentum,
            nesterov,
            accumulator_dtype,
            p=p,
            b2=b2,
            eps=eps,
            eps_root=eps_root,
            nu_dtype=nu_dtype,
            normalize=normalize,
        ),
        optax.scale_by_learning_rate(learning_rate),
    )
