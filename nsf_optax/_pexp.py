"""The generalised second-moment transform (``p``-exponent) and its aliases."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax

__all__ = [
    "ScaleByPexpMomentumState",
    "ScaleByPexpState",
    "gain_stats",
    "nsf",
    "nsf_sgd",
    "nsfw",
    "pexp_gain",
    "scale_by_pexp",
    "scale_by_pexp_momentum",
]

Normalize = Literal["rms"] | None
PLike = float | optax.Schedule


class ScaleByPexpState(NamedTuple):
    """State for :func:`scale_by_pexp`."""

    count: jax.Array  # shape=(), dtype=jnp.int32.
    mu: optax.Updates  # like params, dtype mu_dtype.
    nu: optax.Updates  # like params, dtype nu_dtype.


class ScaleByPexpMomentumState(NamedTuple):
    """State for :func:`scale_by_pexp_momentum`."""

    count: jax.Array  # shape=(), dtype=jnp.int32.
    trace: optax.Updates  # like params, dtype accumulator_dtype.
    nu: optax.Updates  # like params, dtype nu_dtype.


# ----------------------------------------------------------------------------
# Argument checks (run once, in the factory).


def _check_decay(name: str, value: Any) -> None:
    if isinstance(value, numbers.Real) and not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}.")


def _check_nonnegative(name: str, value: Any) -> None:
    if isinstance(value, numbers.Real) and not (math.isfinite(value) and value >= 0.0):
        raise ValueError(f"{name} must be finite and >= 0, got {value!r}.")


def _check_p(p: Any) -> None:
    if callable(p):
        return
    if isinstance(p, bool) or not isinstance(p, numbers.Real | jax.Array):
        raise ValueError(
            f"p must be a finite real number or an optax.Schedule, got {p!r}."
        )
    if isinstance(p, numbers.Real) and not math.isfinite(p):
        raise ValueError(f"p must be finite (any sign), got {p!r}.")


def _check_normalize(normalize: Any) -> None:
    if normalize not in (None, "rms"):
        raise ValueError(f"normalize must be None or 'rms', got {normalize!r}.")


def _check_gain_args(b2: Any, eps: Any, eps_root: Any, p: Any, normalize: Any) -> None:
    """The checks shared by both transforms: everything that sets the p-gain."""
    _check_decay("b2", b2)
    _check_nonnegative("eps", eps)
    _check_nonnegative("eps_root", eps_root)
    _check_p(p)
    _check_normalize(normalize)


# ----------------------------------------------------------------------------
# The p-gain.
#
# Cost model (XLA CPU; benchmarks/bench_update.py, one optimizer step on the
# ResNet-18 tree): every update is three elementwise loops per leaf (mu, nu,
# then the gain reading the new mu and nu), as in optax.scale_by_adam; the CPU
# backend makes no multi-output fusions, so that is also the floor for XLA.
# What is left is the arithmetic inside the gain loop, which XLA emits as
# 8-wide AVX2 with fused multiply-adds: jnp.power is a scalar powf call per
# element, exp(p * log(x)) about 1.9x Adam, a sqrt or rsqrt 1.0x. The
# gain loop with the polynomial power below is about 45 vector instructions
# per 8 elements (Adam's: 14); that count, not memory, is what a general p pays
# for, so every instruction in it is accounted for (see the rounding note in
# _power_f32; tests/test_fast_paths.py would catch a folded rounding).

# float32 bits of sqrt(1/2): x = 2**e * (1 + s) with 1 + s in [sqrt(1/2), sqrt(2)).
_SQRT_HALF_BITS = 0x3F3504F3
# log2(1 + s) / s on [sqrt(1/2) - 1, sqrt(2) - 1], least squares on Chebyshev
# nodes; |error of log2(x)| < 6e-7 (a relative error of 4e-7 * |p| in x**p).
_LOG2_COEFFS = (
    1.442696452140808,
    -0.7213640213012695,
    0.4806291460990906,
    -0.35935065150260925,
    0.29563361406326294,
    -0.2695062756538391,
    0.17212873697280884,
)
# (2**f - 1) / f on [-1/2, 1/2]; relative error of 2**f < 2.1e-7, and exactly
# 1 at f = 0 so that p = 0 gives x**0 = 1.
_EXP2_COEFFS = (
    0.6931471824645996,
    0.2402234822511673,
    0.055503569543361664,
    0.009666373953223228,
    0.0013390866806730628,
)
# 1.5 * 2**23: for |y| < 2**22, float32 y + _ROUND_MAGIC rounds y to the nearest
# integer n (ties to even, the hardware's rounding mode) and holds n in its low
# mantissa bits.
_ROUND_MAGIC = 12582912.0
_ROUND_MAGIC_BITS = int(np.float32(_ROUND_MAGIC).view(np.int32))
_F32_TINY = float(jnp.finfo(jnp.float32).tiny)
_F32_MAX = float(jnp.finfo(jnp.float32).max)


def _horner(x: jax.Array, coeffs: Any) -> jax.Array:
    acc = coeffs[-1]
    for c in coeffs[-2::-1]:
        acc = acc * x + c
    return acc


def _power_f32(x: jax.Array, p: float | jax.Array) -> jax.Array:
    r"""``x ** p`` for float32 ``x >= 0`` as ``2 ** (p * log2 x)``, polynomials.

    XLA's ``log`` and ``exp`` are each accurate to the last ulp and cost more
    than the memory traffic of the loop they sit in; here both are short
    polynomials, vectorised like the rest of the loop:

    .. math::

      x = 2^e (1 + s), \quad y = p\,e + s\,(p\,q_{\log}(s)), \quad
      y = n + f, \quad x^p = 2^n (1 + f\,q_{\exp}(f)),

    with :math:`|f| \le 1/2` and the coefficients of :math:`p\,q_{\log}` scaled
    by ``p`` once per call (scalar work). The relative error is below
    ``1e-6 + 1e-7 * |p * log2 x|``, the latter from float32's own rounding of
    ``y`` (``exp(p * log x)`` has the same term). ``y`` is clipped to
    ``[-126, 126]`` (results beyond float32's normal range saturate); ``x``
    below the smallest normal float32 (which XLA's CPU ``sqrt`` and ``log``
    also read as zero), ``inf`` and ``NaN`` get the IEEE values of ``0 ** p``,
    ``inf ** p`` and ``NaN ** p``.
    """
    p_static = p if isinstance(p, float) else None
    bits = jax.lax.bitcast_convert_type(x, jnp.int32)
    e = (bits - _SQRT_HALF_BITS) >> 23
    s = jax.lax.bitcast_convert_type(bits - (e << 23), jnp.float32) - 1.0
    p = jnp.asarray(p, jnp.float32)
    y = p * e.astype(jnp.float32) + s * _horner(s, [p * c for c in _LOG2_COEFFS])
    if not isinstance(p_static, float) or abs(p_static) * 128 > 126:
        # A select, not jnp.clip: XLA's NaN-propagating max/min cost twice as
        # much on CPU. Static |p| < 0.98 keeps y in range for all normal x.
        y = jnp.where(y < -126.0, -126.0, y)
        y = jnp.where(y > 126.0, 126.0, y)
    # n = round(y) without jnp.round and astype: XLA's float-to-int conversion
    # saturates and maps NaN to 0, five extra instructions per vector on x86
    # (an eighth of the loop). The bits of y + 1.5 * 2**23 are those of
    # 1.5 * 2**23 plus n (ties to even, the hardware rounding). n is read from
    # the bits: XLA folds (y + c) - c to y.
    n = jax.lax.bitcast_convert_type(y + _ROUND_MAGIC, jnp.int32) - _ROUND_MAGIC_BITS
    f = y - n.astype(jnp.float32)
    scale = jax.lax.bitcast_convert_type((n + 127) << 23, x.dtype)
    out = (1.0 + f * _horner(f, _EXP2_COEFFS)) * scale
    one = jnp.ones([], jnp.float32)
    zero_pow = jnp.where(p > 0, 0.0, jnp.where(p < 0, jnp.inf, one))
    inf_pow = jnp.where(p > 0, jnp.inf, jnp.where(p < 0, 0.0, one))
    out = jnp.where(x < _F32_TINY, zero_pow, out)
    # inf gives inf ** p; NaN stays NaN, except that NaN ** 0 is 1 (IEEE).
    special = jnp.where((x == jnp.inf) | (p == 0), inf_pow, x)
    return jnp.where(x <= _F32_MAX, out, special)


def _power(x: jax.Array, p: float | jax.Array) -> jax.Array:
    """``x ** p`` for ``x >= 0``, with the IEEE limits at ``x = 0`` and ``inf``.

    A static ``p`` in ``{0, 1, +-1/2, +-1/4}`` picks an exact sqrt / rsqrt form
    (about the cost of Adam); any other ``p`` uses :func:`_power_f32` in
    float32 and ``exp(p * log x)`` in wider dtypes. ``jnp.power`` is avoided:
    XLA's CPU backend calls a scalar ``powf`` per element there.
    """
    if isinstance(p, numbers.Real):
        # The exponent as the power sees it: a tiny p rounds to 0 in float32.
        p = float(np.asarray(p, x.dtype))
        if p == 0.0:
            return jnp.ones_like(x)
        if p == 1.0:
            return x
        if p == 0.5:
            return jnp.sqrt(x)
        if p == -0.5:
            return jax.lax.rsqrt(x)
        if p == 0.25:
            return jnp.sqrt(jnp.sqrt(x))
        if p == -0.25:
            return jax.lax.rsqrt(jnp.sqrt(x))
    if x.dtype == jnp.float32:
        return _power_f32(x, p)
    # Wider dtypes: 0 * log(0 or inf) is NaN, and x ** 0 is 1 for every x (for
    # a static p the select folds away).
    p = jnp.asarray(p, x.dtype)
    return jnp.where(p == 0, jnp.ones_like(x), jnp.exp(p * jnp.log(x)))


def _compute_dtype(dtype: jnp.dtype) -> jnp.dtype:
    """The dtype the power is taken in: at least float32."""
    return jnp.promote_types(dtype, jnp.float32)


def _pgain_denominator(
    nu_hat: jax.Array, p: float | jax.Array, eps: Any, eps_root: Any
) -> jax.Array:
    """``(nu_hat + eps_root) ** p + eps`` in at least float32.

    For complex parameters ``nu`` holds ``|g|**2`` in the params' complex dtype
    (as in :func:`optax.scale_by_adam`); its real part is the moment.
    """
    nu_hat = jnp.real(nu_hat)
    nu_hat = nu_hat.astype(_compute_dtype(nu_hat.dtype))
    # XLA keeps x + 0.0 (it is not an identity for -0.0): one op per element.
    if not (isinstance(eps_root, numbers.Real) and eps_root == 0):
        nu_hat = nu_hat + eps_root
    return _power(nu_hat, p) + eps


def _rms_scaled(x: jax.Array) -> jax.Array:
    """Root mean square, scaled near ``max|x|`` so that squares cannot overflow.

    The scale is a power of two clipped to ``2**+-120``: XLA divides by a
    scalar by multiplying with its reciprocal, and a reciprocal below float32's
    smallest normal (``max|x| > 2**126``) is flushed to zero, which made every
    ``x / max|x|`` zero. ``max|x| = 0`` gives 0, ``inf`` gives ``inf``.
    """
    exponent = jnp.clip(jnp.floor(jnp.log2(jnp.max(jnp.abs(x)))), -120.0, 120.0)
    scale = jnp.exp2(exponent)
    return scale * jnp.sqrt(jnp.mean(jnp.square(x / scale)))


def _rms(x: jax.Array) -> jax.Array:
    """Root mean square in one pass, with the scaled two-pass form as fallback.

    ``sum(x**2)`` is exact enough whenever it is finite (no square overflowed)
    and at least ``2**-60``: squares flushed below float32's smallest normal
    (``2**-126``), at most ``2**31`` of them, then move it by under ``2**-35``
    relative. Otherwise (huge or tiny leaves) :func:`_rms_scaled` runs, under
    a ``lax.cond`` so that its two extra passes are only paid when needed.
    Complex ``x`` is measured by its modulus; an empty ``x`` has RMS 0.
    """
    if x.size == 0:
        return jnp.zeros([], jnp.real(x).dtype)
    if jnp.iscomplexobj(x):
        x = jnp.abs(x)
    sum_sq = jnp.sum(jnp.square(x))
    direct_ok = jnp.isfinite(sum_sq) & (sum_sq >= 2.0**-60)
    return jax.lax.cond(direct_ok, lambda x: jnp.sqrt(sum_sq / x.size), _rms_scaled, x)


def _match_rms(update: jax.Array, target_rms: jax.Array) -> jax.Array:
    """Rescales ``update`` so that its RMS equals ``target_rms``."""
    rms_update = _rms(update)
    return update * (target_rms / jnp.where(rms_update > 0, rms_update, 1.0))


def _resolve_p(p: PLike, count: jax.Array) -> float | jax.Array:
    """A static float stays static (fast paths); a schedule is called at count."""
    return p(count) if callable(p) else p


def _apply_pgain(
    direction: optax.Updates,
    nu_hat: optax.Updates,
    like: optax.Updates,
    p: float | jax.Array,
    eps: Any,
    eps_root: Any,
    normalize: Normalize,
    rms_reference: tuple[optax.Updates, Any] | None = None,
) -> optax.Updates:
    """``direction / ((nu_hat + eps_root)**p + eps)``, per leaf, cast like ``like``.

    ``None`` leaves (masked-out parameters) pass through. Each leaf is one
    elementwise XLA loop reading the new moments (the power is fused into it).
    With ``normalize="rms"`` each leaf is rescaled to the RMS of ``direction``,
    computed as ``rms(tree leaf) / divisor`` from ``rms_reference = (tree,
    divisor)`` when given: passing the stored first moment and its bias
    correction reads an array that exists instead of materialising ``mhat``
    for the reduction (XLA's CPU reductions do not fuse their producers).
    """
    reference, divisor = (direction, 1.0) if rms_reference is None else rms_reference

    def leaf(d, v, g, r):
        if d is None:
            return None
        # Trace-time only: a state restored for other params must not broadcast.
        chex.assert_equal_shape([d, v, g])
        d32 = d.astype(_compute_dtype(d.dtype))
        u = d32 / _pgain_denominator(v, p, eps, eps_root)
        if normalize == "rms":
            u = _match_rms(u, _rms(r.astype(d32.dtype)) / divisor)
        return u.astype(g.dtype)

    return jax.tree.map(
        leaf, direction, nu_hat, like, reference, is_leaf=lambda x: x is None
    )


# ----------------------------------------------------------------------------
# Transforms.


def scale_by_pexp(
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    p: PLike = 0.5,
    *,
    mu_dtype: Any | None = None,
    nu_dtype: Any | None = None,
    nesterov: bool = False,
    normalize: Normalize = None,
) -> optax.GradientTransformationExtraArgs:
    r"""Rescales updates by a power ``p`` of the second moment (Adam-flavoured).

    See :func:`nsf_optax.nsf` for the full algorithm. With ``p = 0.5`` this is
    :func:`optax.scale_by_adam`; with ``p = 0`` it is the debiased EMA of the
    gradients divided by ``1 + eps`` (momentum SGD up to a constant).

    Args:
      b1: decay of the first-moment EMA, in ``[0, 1)``.
      b2: decay of the second-moment EMA, in ``[0, 1)``.
      eps: added to the denominator after the power, ``>= 0``. For ``p < 0``
        it bounds the update by ``|mhat| / eps``.
      eps_root: added to the second moment before the power, ``>= 0``.
      p: the exponent, any finite real (negative, zero or positive), or an
        :class:`optax.Schedule` of the step count (see
        :mod:`nsf_optax.p_schedule`), evaluated at ``state.count`` before the
        increment, like :func:`optax.inject_hyperparams`.
      mu_dtype: dtype of the first moment; ``None`` infers it from the params.
      nu_dtype: dtype of the second moment; ``None`` infers it from the params.
      nesterov: use Nesterov momentum (NAdam's first moment when ``p = 0.5``).
      normalize: ``None`` (default) or ``"rms"``: rescale each leaf's update so
        its RMS equals the RMS of ``mhat``, so that ``p`` only changes the
        relative weighting of coordinates, not the step size. Costs two
        reductions and one multiply per leaf.

    Returns:
      An :class:`optax.GradientTransformationExtraArgs` with state
      :class:`ScaleByPexpState`.
    """
    _check_decay("b1", b1)
    _check_gain_args(b2, eps, eps_root, p, normalize)
    mu_dtype = _canonical(mu_dtype)
    nu_dtype = _canonical(nu_dtype)

    def init_fn(params: optax.Params) -> ScaleByPexpState:
        return ScaleByPexpState(
            count=jnp.zeros([], jnp.int32),
            mu=optax.tree.zeros_like(params, dtype=mu_dtype),
            nu=optax.tree.zeros_like(params, dtype=nu_dtype),
        )

    def update_fn(
        updates: optax.Updates,
        state: ScaleByPexpState,
        params: optax.Params | None = None,
        **extra_args: Any,
    ) -> tuple[optax.Updates, ScaleByPexpState]:
        del params, extra_args
        p_t = _resolve_p(p, state.count)
        mu = optax.tree.update_moment(updates, state.mu, b1, 1)
        nu = optax.tree.update_moment_per_elem_norm(updates, state.nu, b2, 2)
        count_inc = optax.safe_increment(state.count)
        if nesterov:
            mu_hat = jax.tree.map(
                lambda m, g: None if m is None else b1 * m + (1 - b1) * g,
                optax.tree.bias_correction(mu, b1, optax.safe_increment(count_inc)),
                optax.tree.bias_correction(updates, b1, count_inc),
                is_leaf=lambda x: x is None,
            )
            rms_reference = None
        else:
            mu_hat = optax.tree.bias_correction(mu, b1, count_inc)
            rms_reference = (mu, 1 - b1**count_inc)
        nu_hat = optax.tree.bias_correction(nu, b2, count_inc)
        new_updates = _apply_pgain(
            mu_hat, nu_hat, updates, p_t, eps, eps_root, normalize, rms_reference
        )
        mu = optax.tree.cast_like(mu, state.mu)
        nu = optax.tree.cast_like(nu, state.nu)
        return new_updates, ScaleByPexpState(count=count_inc, mu=mu, nu=nu)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def scale_by_pexp_momentum(
    momentum: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    p: PLike = 0.0,
    *,
    nesterov: bool = False,
    accumulator_dtype: Any | None = None,
    nu_dtype: Any | None = None,
    normalize: Normalize = None,
) -> optax.GradientTransformationExtraArgs:
    r"""Heavy-ball momentum times the ``p``-gain (SGD-flavoured).

    See :func:`nsf_optax.nsf_sgd` for the full algorithm. With ``p = 0`` (and
    any ``eps`` below float32's half ulp of one, such as the default) the update
    is bit for bit :func:`optax.trace`.

    Args:
      momentum: the trace decay, in ``[0, 1)``.
      b2: decay of the second-moment EMA that sets the gain, in ``[0, 1)``.
      eps: added to the denominator after the power, ``>= 0``.
      eps_root: added to the second moment before the power, ``>= 0``.
      p: the exponent, any finite real, or an :class:`optax.Schedule` evaluated
        at ``state.count`` before the increment.
      nesterov: use Nesterov momentum, as :func:`optax.trace`.
      accumulator_dtype: dtype of the trace; ``None`` infers it from params.
      nu_dtype: dtype of the second moment; ``None`` infers it from params.
      normalize: ``None`` (default) or ``"rms"``: rescale each leaf's update so
        its RMS equals that of the momentum direction (the ``p = 0`` update).

    Returns:
      An :class:`optax.GradientTransformationExtraArgs` with state
      :class:`ScaleByPexpMomentumState`.
    """
    _check_decay("momentum", momentum)
    _check_gain_args(b2, eps, eps_root, p, normalize)
    accumulator_dtype = _canonical(accumulator_dtype)
    nu_dtype = _canonical(nu_dtype)

    def init_fn(params: optax.Params) -> ScaleByPexpMomentumState:
        return ScaleByPexpMomentumState(
            count=jnp.zeros([], jnp.int32),
            trace=optax.tree.zeros_like(params, dtype=accumulator_dtype),
            nu=optax.tree.zeros_like(params, dtype=nu_dtype),
        )

    def update_fn(
        updates: optax.Updates,
        state: ScaleByPexpMomentumState,
        params: optax.Params | None = None,
        **extra_args: Any,
    ) -> tuple[optax.Updates, ScaleByPexpMomentumState]:
        del params, extra_args
        p_t = _resolve_p(p, state.count)

        def accumulate(g, t):
            return None if g is None else g + momentum * t

        is_none = lambda x: x is None  # noqa: E731
        trace = jax.tree.map(accumulate, updates, state.trace, is_leaf=is_none)
        direction = (
            jax.tree.map(accumulate, updates, trace, is_leaf=is_none)
            if nesterov
            else trace
        )
        nu = optax.tree.update_moment_per_elem_norm(updates, state.nu, b2, 2)
        count_inc = optax.safe_increment(state.count)
        nu_hat = optax.tree.bias_correction(nu, b2, count_inc)
        new_updates = _apply_pgain(
            direction, nu_hat, updates, p_t, eps, eps_root, normalize
        )
        trace = optax.tree.cast_like(trace, state.trace)
        nu = optax.tree.cast_like(nu, state.nu)
        return new_updates, ScaleByPexpMomentumState(
            count=count_inc, trace=trace, nu=nu
        )

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def _canonical(dtype: Any | None) -> jnp.dtype | None:
    return None if dtype is None else jax.dtypes.canonicalize_dtype(dtype)


# ----------------------------------------------------------------------------
# Aliases.


def nsf(
    learning_rate: optax.ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    p: PLike = 0.5,
    *,
    mu_dtype: Any | None = None,
    nu_dtype: Any | None = None,
    nesterov: bool = False,
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

    ``p = 0.5`` is :func:`optax.adam`; ``p = 0`` is momentum SGD on the EMA of
    the gradients (up to ``1 + eps``); ``p`` in ``(0, 0.5)`` is Padam; ``p < 0``
    amplifies coordinates with a large second moment (a high-pass filter on the
    gradient spectrum), ``p > 0`` damps them (low-pass). The gain applied to a
    coordinate is :math:`((\hat v_t + \epsilon_{\text{root}})^{p} +
    \epsilon)^{-1}`; scheduling ``p`` cyclically (:mod:`nsf_optax.p_schedule`)
    sweeps the filter over training.

    Which paper setting it reproduces: the Adam-flavoured experiments of the
    paper's Sec. 4.2 (a single update rule for all ``p`` at one learning rate).
    The paper's ResNet runs (SGD momentum 0.9 plus a ``p`` schedule) are
    :func:`nsf_sgd`.

    Numerics: the power is taken in at least float32 (``nu`` may be stored in
    bfloat16 or float16) and the update is returned in each gradient's dtype.
    ``0 ** p`` follows IEEE (``inf`` for ``p < 0``, so such coordinates get a
    zero update) and ``x ** 0 = 1`` for every ``x``. Every update is bounded by
    ``|mhat| / eps``, so finite float32 gradients up to ``|g| = 1e30`` give
    finite updates for any ``|p| <= 2`` (a property test checks this).
    Gradients above ``sqrt(float max)`` overflow ``g**2`` in the second moment,
    exactly as in :func:`optax.adam`: the gain is then 0 for ``p > 0`` and
    ``1 / eps`` for ``p < 0``.

    Non-finite gradients are not filtered: like :func:`optax.adam`, a NaN or
    infinite gradient enters the moments. Wrap the optimizer in
    :func:`optax.apply_if_finite` to skip such steps with the state untouched.

    Args:
      learning_rate: a float or an :class:`optax.Schedule`.
      b1: decay of the first-moment EMA, in ``[0, 1)``.
      b2: decay of the second-moment EMA, in ``[0, 1)``.
      eps: added after the power, ``>= 0``; bounds the update by
        ``|mhat| / eps`` when ``p < 0``.
      eps_root: added before the power, ``>= 0``.
      p: the exponent (any finite real) or an :class:`optax.Schedule`.
      mu_dtype: dtype of the first moment; ``None`` infers it from the params.
      nu_dtype: dtype of the second moment; ``None`` infers it from the params.
      nesterov: use Nesterov momentum (NAdam at ``p = 0.5``).
      normalize: ``None`` or ``"rms"`` (per-leaf update RMS set to that of
        ``mhat``; makes runs at different ``p`` comparable at one learning
        rate).

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
      >>> for _ in range(200):
      ...   grad = jax.grad(f)(params)
      ...   updates, state = solver.update(grad, state, params)
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
    return optax.chain(
        scale_by_pexp(
            b1=b1,
            b2=b2,
            eps=eps,
            eps_root=eps_root,
            p=p,
            mu_dtype=mu_dtype,
            nu_dtype=nu_dtype,
            nesterov=nesterov,
            normalize=normalize,
        ),
        optax.scale_by_learning_rate(learning_rate),
    )


def nsfw(
    learning_rate: optax.ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    p: PLike = 0.5,
    weight_decay: float = 1e-4,
    mask: Any | Callable[[optax.Params], Any] | None = None,
    *,
    mu_dtype: Any | None = None,
    nu_dtype: Any | None = None,
    nesterov: bool = False,
    normalize: Normalize = None,
) -> optax.GradientTransformationExtraArgs:
    r""":func:`nsf` with decoupled weight decay, as :func:`optax.adamw`.

    .. math::

      \theta_t = \theta_{t-1} - \eta_t \left(u_t + \lambda \theta_{t-1}\right),

    with :math:`u_t` the update of :func:`nsf`. ``p = 0.5`` is
    :func:`optax.adamw`.

    Args:
      learning_rate: a float or an :class:`optax.Schedule`.
      b1: decay of the first-moment EMA, in ``[0, 1)``.
      b2: decay of the second-moment EMA, in ``[0, 1)``.
      eps: added after the power, ``>= 0``.
      eps_root: added before the power, ``>= 0``.
      p: the exponent (any finite real) or an :class:`optax.Schedule`.
      weight_decay: the decoupled decay :math:`\lambda`, ``>= 0``.
      mask: a pytree of booleans like the params, or a callable returning one,
        selecting the leaves that decay (see :func:`optax.add_decayed_weights`).
      mu_dtype: dtype of the first moment.
      nu_dtype: dtype of the second moment.
      nesterov: use Nesterov momentum.
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
    _check_nonnegative("weight_decay", weight_decay)
    return optax.chain(
        scale_by_pexp(
            b1=b1,
            b2=b2,
            eps=eps,
            eps_root=eps_root,
            p=p,
            mu_dtype=mu_dtype,
            nu_dtype=nu_dtype,
            nesterov=nesterov,
            normalize=normalize,
        ),
        optax.add_decayed_weights(weight_decay, mask),
        optax.scale_by_learning_rate(learning_rate),
    )


def nsf_sgd(
    learning_rate: optax.ScalarOrSchedule,
    momentum: float = 0.9,
    p: PLike = 0.0,
    *,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    nesterov: bool = False,
    accumulator_dtype: Any | None = None,
    nu_dtype: Any | None = None,
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
      \qquad \theta_t = \theta_{t-1} - \eta_t u_t.

    With ``p = 0`` the gain is :math:`1 / (1 + \epsilon)`, which is exactly one
    in float32 for the default ``eps`` (any ``eps < 2**-24``), so the result is
    bit for bit ``optax.sgd(learning_rate, momentum, nesterov)``: the paper's
    baseline ("the SGD endpoint"). A ``p`` schedule such as
    ``p_schedule.pulse_tidal(...)`` then reproduces the paper's ResNet runs.
    Paper-style (coupled) weight decay goes in front:
    ``optax.chain(optax.add_decayed_weights(wd), nsf_sgd(...))``.

    The gain :math:`\hat v^{-p}` changes the overall step size by orders of
    magnitude when ``p`` moves away from zero (gradients are small); use
    ``normalize="rms"`` to keep each leaf's update RMS equal to that of the
    momentum, so that ``p`` only reweights coordinates.

    Args:
      learning_rate: a float or an :class:`optax.Schedule`.
      momentum: the momentum decay :math:`\mu`, in ``[0, 1)``.
      p: the exponent (any finite real) or an :class:`optax.Schedule`.
      b2: decay of the second-moment EMA, in ``[0, 1)``.
      eps: added after the power, ``>= 0``.
      eps_root: added before the power, ``>= 0``.
      nesterov: use Nesterov momentum.
      accumulator_dtype: dtype of the momentum; ``None`` infers it.
      nu_dtype: dtype of the second moment; ``None`` infers it.
      normalize: ``None`` or ``"rms"``.

    Returns:
      An :class:`optax.GradientTransformationExtraArgs`.

    Examples:
      >>> import jax.numpy as jnp, optax
      >>> import nsf_optax
      >>> params = jnp.array([1.0, -2.0])
      >>> grads = jnp.array([0.1, 0.3])
      >>> ours, theirs = nsf_optax.nsf_sgd(0.1, p=0.0), optax.sgd(0.1, 0.9)
      >>> u1, _ = ours.update(grads, ours.init(params))
      >>> u2, _ = theirs.update(grads, theirs.init(params))
      >>> bool((u1 == u2).all())
      True

    References:
      Zhang & Liu, `Natural Spectral Fusion
      <https://arxiv.org/abs/2509.04713>`_, 2025 (Sec. 5, ResNet-18).
    """
    return optax.chain(
        scale_by_pexp_momentum(
            momentum=momentum,
            b2=b2,
            eps=eps,
            eps_root=eps_root,
            p=p,
            nesterov=nesterov,
            accumulator_dtype=accumulator_dtype,
            nu_dtype=nu_dtype,
            normalize=normalize,
        ),
        optax.scale_by_learning_rate(learning_rate),
    )


# ----------------------------------------------------------------------------
# Observability.


def _is_pexp_state(x: Any) -> bool:
    return isinstance(x, ScaleByPexpState | ScaleByPexpMomentumState)


def _find_pexp_state(
    opt_state: optax.OptState,
) -> ScaleByPexpState | ScaleByPexpMomentumState:
    found = [
        s
        for s in jax.tree.leaves(opt_state, is_leaf=_is_pexp_state)
        if _is_pexp_state(s)
    ]
    if len(found) != 1:
        raise ValueError(
            "opt_state must hold exactly one ScaleByPexpState or "
            f"ScaleByPexpMomentumState, found {len(found)}."
        )
    return found[0]


def _nu_hat(
    state: ScaleByPexpState | ScaleByPexpMomentumState, b2: float
) -> optax.Updates:
    # Before the first step nu is zero: any positive count gives nu_hat = 0.
    return optax.tree.bias_correction(state.nu, b2, jnp.maximum(state.count, 1))


def pexp_gain(
    opt_state: optax.OptState,
    p: PLike,
    *,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
) -> optax.Updates:
    r"""The per-coordinate ``p``-gain the next update will apply.

    Finds the (single) :class:`ScaleByPexpState` or
    :class:`ScaleByPexpMomentumState` anywhere inside ``opt_state`` (a chain,
    ``inject_hyperparams``, ``MultiSteps`` ...) and returns, like the params,

    .. math::

      \gamma = \frac{1}{(\hat v_t + \epsilon_{\text{root}})^{p(t)} + \epsilon},

    computed exactly as the update computes it (the update is ``mhat * gamma``
    or ``momentum * gamma`` before ``normalize``). ``p`` is a float or the same
    schedule given to the optimizer, called at the state's count.

    Args:
      opt_state: the optimizer state.
      p: the exponent or schedule the optimizer was built with.
      b2: the optimizer's ``b2``.
      eps: the optimizer's ``eps``.
      eps_root: the optimizer's ``eps_root``.

    Returns:
      A pytree like the params of gains, in at least float32.

    Raises:
      ValueError: if ``opt_state`` holds no, or more than one, such state.

    Examples:
      >>> import jax.numpy as jnp
      >>> import nsf_optax
      >>> solver = nsf_optax.nsf_sgd(0.1, p=0.5)
      >>> params = jnp.array([0.5, 2.0])
      >>> _, state = solver.update(params, solver.init(params))
      >>> gain = nsf_optax.pexp_gain(state, p=0.5)  # 1 / |g| after one step
      >>> [round(float(x), 4) for x in gain]
      [2.0, 0.5]
    """
    state = _find_pexp_state(opt_state)
    p_t = _resolve_p(p, state.count)
    return jax.tree.map(
        lambda v: 1.0 / _pgain_denominator(v, p_t, eps, eps_root),
        _nu_hat(state, b2),
    )


def gain_stats(
    opt_state: optax.OptState,
    p: PLike,
    *,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
) -> dict[str, jax.Array]:
    r"""The current ``p`` and the spread of the ``p``-gain, for logging.

    Summarises :func:`pexp_gain` over all coordinates. Coordinates whose second
    moment is still exactly zero (they never received a nonzero gradient, so
    they take no step) are left out; the statistics are NaN while no coordinate
    has. Costs one pass over ``nu``; call it at logging steps.

    Args:
      opt_state: the optimizer state.
      p: the exponent or schedule the optimizer was built with.
      b2: the optimizer's ``b2``.
      eps: the optimizer's ``eps``.
      eps_root: the optimizer's ``eps_root``.

    Returns:
      A dict of float32 scalars: ``p`` (the exponent of the next update), and
      ``log10_gain_min``, ``log10_gain_mean`` and ``log10_gain_max``.

    Raises:
      ValueError: if ``opt_state`` holds no, or more than one, such state.

    Examples:
      >>> import jax.numpy as jnp
      >>> import nsf_optax
      >>> solver = nsf_optax.nsf(1e-3, p=-0.5)
      >>> params = jnp.array([1e-2, 1.0])
      >>> _, state = solver.update(params, solver.init(params))
      >>> stats = nsf_optax.gain_stats(state, p=-0.5)
      >>> [round(float(stats[k]), 3) for k in ("log10_gain_min", "log10_gain_max")]
      [-2.0, 0.0]
    """
    state = _find_pexp_state(opt_state)
    p_t = jnp.asarray(_resolve_p(p, state.count), jnp.float32)
    gains = jax.tree.leaves(pexp_gain(state, p_t, b2=b2, eps=eps, eps_root=eps_root))
    nu_hat = jax.tree.leaves(_nu_hat(state, b2))
    # Coordinates that never saw a nonzero gradient take no step whatever the
    # gain (mhat = 0 there); their gain, 1/eps or 0, would only swamp the spread.
    log_gains = jnp.concatenate(
        [
            jnp.where(v > 0, jnp.log10(g), jnp.nan).ravel()
            for g, v in zip(gains, nu_hat, strict=True)
        ]
    )
    return {
        "p": p_t,
        "log10_gain_min": jnp.nanmin(log_gains),
        "log10_gain_mean": jnp.nanmean(log_gains),
        "log10_gain_max": jnp.nanmax(log_gains),
    }
