"""The p-gain's arithmetic: ``x ** p`` for ``x >= 0``, its denominator, RMS.

Cost model (XLA CPU; benchmarks/bench_update.py, one optimizer step on the
ResNet-18 tree): every update is three elementwise loops per leaf (mu, nu,
then the gain reading the new mu and nu), as in optax.scale_by_adam; the CPU
backend makes no multi-output fusions, so that is also the floor for XLA.
What is left is the arithmetic inside the gain loop, which XLA emits as
8-wide AVX2 with fused multiply-adds: jnp.power is a scalar powf call per
element, exp(p * log(x)) about 1.9x Adam, a sqrt or rsqrt 1.0x. The
gain loop with the polynomial power below is about 43 vector instructions
per 8 elements (Adam's: 14); that count, not memory, is what a general p pays
for, so every instruction in it is accounted for (see the rounding note in
power_f32; tests/test_fast_paths.py would catch a folded rounding).
"""

import numbers
from collections.abc import Callable, Sequence
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np

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
# 1.5 * 2**23 + 128: for |y| < 2**22, float32 y + _ROUND_MAGIC_PLUS_128 rounds
# y + 128 to the nearest integer (ties to even, the hardware's rounding mode)
# and holds it in its low mantissa bits.
_ROUND_MAGIC_PLUS_128 = 12583040.0
# (2**f - 1) / f / 2, the exp2 polynomial for 2**(n + 1) as the scale.
_HALF_EXP2_COEFFS = tuple(c / 2 for c in _EXP2_COEFFS)
_F32_TINY = float(jnp.finfo(jnp.float32).tiny)
_F32_MAX = float(jnp.finfo(jnp.float32).max)


def _horner(x: jax.Array, coeffs: Any) -> jax.Array:
    acc = coeffs[-1]
    for c in coeffs[-2::-1]:
        acc = acc * x + c
    return acc


def power_f32(
    x: jax.Array, p: float | jax.Array, *, abs_max: float | None = None
) -> jax.Array:
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
    ``[-126, 126]`` (results beyond float32's normal range saturate), unless
    ``|p|`` (static, or bounded by ``abs_max`` when traced) is at most
    ``126 / 128``, which keeps ``y`` in range for every normal ``x``
    (``|log2 x| <= 128``), so that the clip's two selects per element are
    left out (a declared range, :mod:`nsf_optax.p_schedule`); ``x``
    below the smallest normal float32 (which XLA's CPU ``sqrt`` and ``log``
    also read as zero), ``inf`` and ``NaN`` get the IEEE values of ``0 ** p``,
    ``inf ** p`` and ``NaN ** p``.
    """
    if isinstance(p, float):
        abs_max = abs(p)
    bits = jax.lax.bitcast_convert_type(x, jnp.int32)
    e = (bits - _SQRT_HALF_BITS) >> 23
    s = jax.lax.bitcast_convert_type(bits - (e << 23), jnp.float32) - 1.0
    p = jnp.asarray(p, jnp.float32)
    y = p * e.astype(jnp.float32) + s * _horner(s, [p * c for c in _LOG2_COEFFS])
    if abs_max is None or abs_max * 128 > 126:
        # A select, not jnp.clip: XLA's NaN-propagating max/min cost twice as
        # much on CPU.
        y = jnp.where(y < -126.0, -126.0, y)
        y = jnp.where(y > 126.0, 126.0, y)
    # n = round(y) (ties to even); f = y - n. 2**(n + 1) comes from the bits of
    # y + (1.5 * 2**23 + 128): their low bits hold n + 128 (ties to even
    # again, 128 being even), and the shift drops the rest. jnp.round is one
    # instruction on x86; a float-to-int conversion is five (XLA's saturates
    # and maps NaN to 0), and n as a float from the bits two more. The
    # polynomial is halved to match (exact: a power of two).
    f = y - jnp.round(y)
    shifted = jax.lax.bitcast_convert_type(y + _ROUND_MAGIC_PLUS_128, jnp.int32)
    scale = jax.lax.bitcast_convert_type(shifted << 23, x.dtype)
    out = (0.5 + f * _horner(f, _HALF_EXP2_COEFFS)) * scale
    one = jnp.ones([], jnp.float32)
    zero_pow = jnp.where(p > 0, 0.0, jnp.where(p < 0, jnp.inf, one))
    inf_pow = jnp.where(p > 0, jnp.inf, jnp.where(p < 0, 0.0, one))
    out = jnp.where(x < _F32_TINY, zero_pow, out)
    # inf gives inf ** p; NaN stays NaN, except that NaN ** 0 is 1 (IEEE).
    special = jnp.where((x == jnp.inf) | (p == 0), inf_pow, x)
    return jnp.where(x <= _F32_MAX, out, special)


def power(
    x: jax.Array, p: float | jax.Array, *, abs_max: float | None = None
) -> jax.Array:
    """``x ** p`` for ``x >= 0``, with the IEEE limits at ``x = 0`` and ``inf``.

    A static ``p`` (a Python number) in ``{0, 1, +-1/2, +-1/4}`` picks an
    exact sqrt / rsqrt form (about the cost of Adam); any other ``p`` uses
    :func:`power_f32` in float32 and ``exp(p * log x)`` in wider dtypes.
    ``jnp.power`` is avoided: XLA's CPU backend calls a scalar ``powf`` per
    element there. A traced ``p`` (a schedule, ``optax.inject_hyperparams``)
    that equals 0 gives exactly 1 and one that equals 1/2 gives ``sqrt(x)``
    exactly, so that it is still Adam bit for bit. XLA's CPU backend compiles
    the select on a scalar ``p`` to a compare and a predicted branch per
    vector: the square root only runs when ``p == 1/2``, the polynomial
    always (a traced ``p = 1/2`` is exact, not fast). ``abs_max``, a bound
    on a traced ``|p|``, goes to :func:`power_f32`.
    """
    static = isinstance(p, numbers.Real)
    if static:
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
        out = power_f32(x, p, abs_max=abs_max)
    else:
        # Wider dtypes: 0 * log(0 or inf) is NaN, and x ** 0 is 1 for every x
        # (for a static p the select folds away).
        p = jnp.asarray(p, x.dtype)
        out = jnp.where(p == 0, jnp.ones_like(x), jnp.exp(p * jnp.log(x)))
    if static:
        return out
    return jnp.where(p == 0.5, jnp.sqrt(x), out)


def dispatched_power(
    x: jax.Array, values: tuple[float, ...], index: jax.Array
) -> jax.Array:
    """``x ** values[index]`` by the static kernel of that value, per step.

    ``index`` (a traced integer scalar in ``[0, len(values))``) selects one of
    ``values`` (Python numbers, each given :func:`power`'s static form: an
    exact sqrt / rsqrt chain where there is one), bit for bit the power of
    that static ``p``.

    A chain of selects on a scalar, every value computed, not
    :func:`jax.lax.switch`: it stays one elementwise loop fused with its
    neighbours, where under a conditional XLA's CPU backend materialises every
    operand and result of the branch (4.6-5.7x Adam's whole step on the
    ResNet-18 tree). Every kernel in the chain runs at every step, which costs
    little for the sqrt forms; the index comes from the schedule's own
    declaration, so there is no value outside ``values`` to fall back for.
    """
    out = power(x, values[-1])
    for i in reversed(range(len(values) - 1)):
        out = jnp.where(index == i, power(x, values[i]), out)
    return out


def compute_dtype(dtype: jnp.dtype) -> jnp.dtype:
    """The dtype the power is taken in: at least float32."""
    return jnp.promote_types(dtype, jnp.float32)


def gain_denominator(
    nu_hat: jax.Array,
    p: float | jax.Array,
    eps: Any,
    eps_root: Any,
    *,
    values: tuple[float, ...] | None = None,
    index: jax.Array | None = None,
    abs_max: float | None = None,
) -> jax.Array:
    """``(nu_hat + eps_root) ** p + eps`` in at least float32.

    For complex parameters ``nu`` holds ``|g|**2`` in the params' complex dtype
    (as in :func:`optax.scale_by_adam`); its real part is the moment. With
    ``values`` and ``index``, ``p`` is ``values[index]`` and the power is
    :func:`dispatched_power`: bit for bit the denominator of that static value.
    ``abs_max`` bounds a traced ``|p|`` (see :func:`power_f32`).
    """
    moment = jnp.real(nu_hat)
    nu_hat = moment.astype(compute_dtype(moment.dtype))
    # XLA keeps x + 0.0 (it is not an identity for -0.0): one op per element.
    if not (isinstance(eps_root, numbers.Real) and eps_root == 0):
        nu_hat = cast(jax.Array, nu_hat + eps_root)
    if values is not None and index is not None:
        return dispatched_power(nu_hat, values, index) + eps
    return power(nu_hat, p, abs_max=abs_max) + eps


def _rms_scaled(x: jax.Array) -> jax.Array:
    """Root mean square, scaled near ``max|x|`` so that squares cannot overflow.

    The scale is a power of two clipped to ``2**+-120``: its reciprocal, below
    float32's smallest normal for ``max|x| > 2**126``, would be flushed to
    zero, which made every ``x / max|x|`` zero. ``max|x| = 0`` gives 0,
    ``inf`` gives ``inf``.
    """
    exponent = jnp.clip(jnp.floor(jnp.log2(jnp.max(jnp.abs(x)))), -120.0, 120.0)
    # Multiplied by 2**-exponent, not divided by 2**exponent: XLA rewrites
    # (a / b) / scale as a / (b * scale), where b * scale can underflow to 0
    # when x is computed in the same loop (an update a / b).
    return jnp.exp2(exponent) * jnp.sqrt(jnp.mean(jnp.square(x * jnp.exp2(-exponent))))


def rms(x: jax.Array) -> jax.Array:
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


def _rescale(
    update: jax.Array,
    target_rms: jax.Array,
    rms_update: jax.Array,
    keep: jax.Array | None = None,
) -> jax.Array:
    """``update * (target_rms / rms_update)``, overflow-safe; see :func:`match_rms`."""
    rms_update = jnp.where(rms_update > 0, rms_update, 1.0)
    ratio = target_rms / rms_update
    direct = jnp.isfinite(ratio) | ~jnp.isfinite(target_rms)
    third = jnp.exp2((jnp.log2(target_rms) - jnp.log2(rms_update)) / 3)
    first = jnp.where(direct, ratio, third)
    rest = jnp.where(direct, jnp.ones_like(third), third)
    if keep is not None:
        first = jnp.where(keep, 1.0, first)
        rest = jnp.where(keep, 1.0, rest)
    return update * first * rest * rest


def match_rms(
    update: jax.Array, target_rms: jax.Array, keep: jax.Array | None = None
) -> jax.Array:
    """Rescales ``update`` so that its RMS equals ``target_rms``.

    ``update * (target_rms / rms(update))`` whenever that ratio is finite; when it
    overflows (a tiny update whose target is large: a huge momentum under a gain
    near 0; the RMS of a leaf may be near the smallest subnormal, ``2**-149``,
    and the target near the largest float, ``2**128``) it is applied as three
    factors ``2**(log2(ratio) / 3)``, each at most ``2**93``, so that every
    partial product lies between the update and the result. The result then
    overflows only where the target RMS itself does not fit the leaf's size.
    ``keep`` (a traced bool) leaves the update as it is.

    The factors are chosen in scalar arithmetic and always multiplied in (by
    1 where unused, which is exact): a :func:`jax.lax.cond` over the leaf
    would make XLA's CPU backend materialise it, at several times the cost of
    the whole optimizer step.
    """
    return _rescale(update, target_rms, rms(update), keep)


# Leaves of at least this many elements are summed in _FAN_IN interleaved
# slices (see sums_of_squares); smaller ones in one piece.
_FAN_IN = 16
_FAN_IN_MIN_SIZE = 1 << 14


def sums_of_squares(
    pair: Callable[..., tuple[jax.Array, jax.Array]], sources: Sequence[jax.Array]
) -> tuple[jax.Array, jax.Array]:
    """``sum(a**2)`` and ``sum(b**2)`` for ``a, b = pair(*sources)``, one pass.

    Args:
      pair: elementwise ``(*sources) -> (a, b)``, same-shaped real floats.
      sources: same-shaped arrays.

    Returns:
      The two sums, as real scalars.

    Both squares are packed into one complex array,
    ``a**2 + 1j * b**2``, so that XLA's CPU backend sums them in one
    elementwise loop that reads the sources once and materialises nothing:
    real sums are handed to a library reduction that pulls the producers of
    ``a`` and ``b`` in and writes what they share, complex ones are not. A
    large leaf is cut into :data:`_FAN_IN` contiguous slices of the sources,
    added elementwise (one loop, split over the cores like any elementwise
    loop, each output element a sum of ``_FAN_IN`` squares), then summed.
    ``pair`` is applied to the slices of the sources, not to slices of its
    result, so that XLA recomputes ``a`` and ``b`` inside that loop instead of
    materialising them for their other users.
    """
    flat = [x.reshape(-1) for x in sources]
    n = flat[0].size

    def squares(*xs):
        a, b = pair(*xs)
        return jax.lax.complex(jnp.square(a), jnp.square(b))

    if n < _FAN_IN_MIN_SIZE:
        total = jnp.sum(squares(*flat))
    else:
        m = n // _FAN_IN
        acc = squares(*[x[:m] for x in flat])
        for i in range(1, _FAN_IN):
            acc = acc + squares(*[x[i * m : (i + 1) * m] for x in flat])
        total = jnp.sum(acc) + jnp.sum(squares(*[x[_FAN_IN * m :] for x in flat]))
    return jnp.real(total), jnp.imag(total)


def match_rms_of_pair(
    update: jax.Array,
    pair: Callable[..., tuple[jax.Array, jax.Array]],
    sources: Sequence[jax.Array],
    keep: jax.Array | None = None,
) -> jax.Array:
    """``update`` rescaled to the RMS of ``target``, where ``pair(*sources)``
    recomputes ``(update, target)``.

    :func:`match_rms`'s ``match_rms(update, rms(target), keep)``, to float32
    rounding, without writing ``update`` and ``target`` to memory and reading
    them back: both sums of squares come from one loop over the sources
    (:func:`sums_of_squares`), and ``update`` is scaled by a scalar in the loop
    that consumes it. ``pair`` must be elementwise and cheap to recompute;
    ``sources`` should be arrays the program holds anyway (state leaves,
    gradients): they are what the scaled fallback (:func:`_rms_scaled`, for
    leaves whose squares overflow or underflow) reads, under a ``lax.cond``,
    when it runs (an operand computed in the step would be materialised for
    it).

    Args:
      update: the update to rescale (an expression of the sources).
      pair: elementwise ``(*sources) -> (update, target)``, real floats.
      sources: same-shaped arrays.
      keep: a traced bool: leave ``update`` as it is.

    Returns:
      The rescaled update.
    """
    n = update.size
    if n == 0:
        return update
    sum_u, sum_t = sums_of_squares(pair, sources)
    ok = jnp.isfinite(sum_u) & (sum_u >= 2.0**-60)
    ok = ok & jnp.isfinite(sum_t) & (sum_t >= 2.0**-60)

    def direct(_):
        return jnp.sqrt(sum_u / n), jnp.sqrt(sum_t / n)

    def scaled(sources):
        u, t = pair(*sources)
        return _rms_scaled(u), _rms_scaled(t)

    rms_u, rms_t = jax.lax.cond(ok, direct, scaled, tuple(sources))
    return _rescale(update, rms_t, rms_u, keep)
