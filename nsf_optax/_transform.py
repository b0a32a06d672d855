"""The transforms: :func:`scale_by_pexp` (Adam-flavoured) and
:func:`scale_by_pexp_momentum` (SGD-flavoured), with their states.

Each update runs as one compiled program (:func:`_compiled`), as optax compiles
its own moment helpers: called eagerly it compiles at the first step only, and
under an outer :func:`jax.jit` it is inlined, so that the outer program is the
same as without it.
"""

import dataclasses
import functools
import numbers
from collections.abc import Callable
from typing import Any, Literal, NamedTuple, cast

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax

from nsf_optax import _checks
from nsf_optax._power import (
    compute_dtype,
    gain_denominator,
    match_rms,
    match_rms_of_pair,
    rms,
)

__all__ = [
    "ScaleByPexpMomentumState",
    "ScaleByPexpState",
    "scale_by_pexp",
    "scale_by_pexp_momentum",
]

Normalize = Literal["rms"] | None
PLike = jax.typing.ArrayLike | optax.Schedule


class ScaleByPexpState(NamedTuple):
    """State for :func:`scale_by_pexp`."""

    # shape=(), dtype=jnp.int32 (optax's name; it shadows tuple.count, as there).
    count: jax.Array  # pyright: ignore[reportIncompatibleMethodOverride]
    mu: optax.Updates  # like params, dtype mu_dtype.
    # like params, nu_dtype (>= float32); a static p = 0 keeps EmptyState() leaves.
    nu: optax.Updates
    p: jax.Array  # shape=(), float: the last update's p (p(0) before any).
    b2: jax.Array  # shape=(), float: the hyperparameters of the gain,
    eps: jax.Array  # shape=(), float: recorded so that the gain can be
    eps_root: jax.Array  # shape=(), float: read from the state alone.


class ScaleByPexpMomentumState(NamedTuple):
    """State for :func:`scale_by_pexp_momentum`."""

    # shape=(), dtype=jnp.int32 (optax's name; it shadows tuple.count, as there).
    count: jax.Array  # pyright: ignore[reportIncompatibleMethodOverride]
    trace: optax.Updates  # like params, accumulator_dtype; EmptyState() if no momentum.
    # like params, nu_dtype (>= float32); a static p = 0 keeps EmptyState() leaves.
    nu: optax.Updates
    p: jax.Array  # shape=(), float: the last update's p (p(0) before any).
    b2: jax.Array  # shape=(), float: as in ScaleByPexpState.
    eps: jax.Array  # shape=(), float.
    eps_root: jax.Array  # shape=(), float.


# ----------------------------------------------------------------------------
# One compiled program per update.


@dataclasses.dataclass(frozen=True, eq=False)
class _Static:
    """A Python hyperparameter as a static argument of :func:`jax.jit`.

    Equal by type and value (``0.9`` and ``np.float32(0.9)`` round differently,
    so they are different programs); a value that cannot be hashed (a callable
    schedule object, say) is keyed by identity.
    """

    value: Any

    def __hash__(self) -> int:
        try:
            return hash((type(self.value), self.value))
        except TypeError:
            return id(self.value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, _Static) or type(other.value) is not type(self.value):
            return False
        if other.value is self.value:
            return True
        try:
            return bool(other.value == self.value)
        except Exception:  # an array-valued or failing __eq__: not the same
            return False


def _compiled(step: Callable[..., Any]) -> Callable[..., Any]:
    """``step(updates, state, hyper)`` as one jitted program per configuration.

    Python values in ``hyper`` (numbers, flags, dtypes, schedules) are static:
    they stay constants, so that the arithmetic is optax's own (``1 - 0.9`` in
    double precision, as in :func:`optax.scale_by_adam`), and they key the
    compilation cache. Arrays (the hyperparameters of
    :func:`optax.inject_hyperparams`, rebuilt at every step) are arguments, so
    that a new step with new values reuses the program. ``inline=True``: under
    an outer :func:`jax.jit` the step is traced into the caller's program.
    """

    def run(updates, state, dynamic, static):
        return step(updates, state, {**{k: v.value for k, v in static}, **dynamic})

    jitted = jax.jit(run, static_argnames=("static",), inline=True)

    @functools.wraps(step)
    def call(updates, state, hyper):
        dynamic, static = {}, []
        for name, value in hyper.items():
            if isinstance(value, jax.Array | np.ndarray):
                dynamic[name] = value
            else:
                static.append((name, _Static(value)))
        return jitted(updates, state, dynamic, tuple(static))

    return call


# ----------------------------------------------------------------------------
# Shared pieces.


def _is_none(x: Any) -> bool:
    return x is None


def _check_gain_args(b2: Any, eps: Any, eps_root: Any, p: Any, normalize: Any):
    """The checks shared by both transforms; returns ``p`` made static if it can."""
    _checks.check_decay("b2", b2)
    _checks.check_nonnegative("eps", eps)
    _checks.check_nonnegative("eps_root", eps_root)
    _checks.check_normalize(normalize)
    return _checks.check_p(p)


def _is_static_zero(p: Any) -> bool:
    """A static ``p = 0``: the gain is ``1 / (1 + eps)`` whatever the moment.

    Only a Python or NumPy number counts, not an array: a 0-d array ``p`` is
    what :func:`optax.inject_hyperparams` passes, concrete at an eager
    ``init`` and traced in a jitted ``update``, and both must keep the same
    state (the moment), whatever its value.
    """
    return isinstance(p, numbers.Real) and p == 0


@dataclasses.dataclass(frozen=True)
class _FiniteP:
    """A scheduled ``p`` that takes one of declared ``values``: the one at
    ``index`` (traced), whose value is ``value``."""

    values: tuple[float, ...]
    index: jax.Array
    value: jax.Array


@dataclasses.dataclass(frozen=True)
class _BoundedP:
    """A scheduled ``p`` whose values lie in a declared range: ``value``
    (traced, clipped to the range) and the range's largest ``abs_max``."""

    value: jax.Array
    abs_max: float


def _resolve_p(p: Any, count: jax.Array) -> Any:
    """A static float stays static (exact forms); a schedule is called at count.

    A schedule that declares its values and which of them each step takes
    (``values`` and ``index``, as :mod:`nsf_optax.p_schedule`'s constant,
    square and pulse tides do) gives a :class:`_FiniteP`, so that each value's
    static kernel can be selected; its value is ``values[index(count)]``. One
    that declares its range (``bounds``, as the cosine tide does) gives a
    :class:`_BoundedP`, its value clipped to the range.
    """
    if not _checks.is_schedule(p):
        return p
    declared = _checks.declared_values(p)
    if declared is None:
        p_t = _checks.check_schedule_output(p(count))
        bounds = _checks.declared_bounds(p)
        if bounds is None:
            return p_t
        low, high = bounds
        p_t = jnp.asarray(p_t, jnp.result_type(p_t, jnp.float32))
        value = jnp.clip(p_t, low, high)
        return _BoundedP(value, max(abs(low), abs(high)))
    values, index = declared
    index = jnp.clip(jnp.asarray(index(count), jnp.int32), 0, len(values) - 1)
    return _FiniteP(values, index, jnp.asarray(values, jnp.float32)[index])


def _p_value(p_t: Any) -> Any:
    return p_t.value if isinstance(p_t, _FiniteP | _BoundedP) else p_t


def _scalar(x: Any) -> jax.Array:
    """A recorded hyperparameter: a strongly typed default-float scalar."""
    return jnp.asarray(x, jax.dtypes.canonicalize_dtype(jnp.float64))


def _gain_fields(p_t: Any, b2: Any, eps: Any, eps_root: Any) -> dict[str, jax.Array]:
    names = ("p", "b2", "eps", "eps_root")
    values = (_p_value(p_t), b2, eps, eps_root)
    return {k: _scalar(v) for k, v in zip(names, values, strict=True)}


def _init_nu(params: optax.Params, nu_dtype: jnp.dtype | None) -> optax.Updates:
    """Zeros like the params, in ``nu_dtype`` or, by default, at least float32.

    Half-precision second moments underflow (float16: ``g**2`` is zero below
    ``|g| ~ 2e-4``, and the update becomes ``mhat / eps``) or stall (bfloat16:
    ``(1 - b2) g**2`` is below half an ulp of ``nu``), so they are kept in
    float32 unless ``nu_dtype`` says otherwise.
    """

    def leaf(x):
        dtype = nu_dtype
        if dtype is None:
            dtype = jnp.result_type(x)
            if jnp.issubdtype(dtype, jnp.floating):
                dtype = jnp.promote_types(dtype, jnp.float32)
        return jnp.zeros_like(x, dtype=dtype)  # keeps the params' sharding

    return jax.tree.map(leaf, params)


def _update_nu(updates: optax.Updates, nu: optax.Updates, b2: Any) -> optax.Updates:
    """optax's second-moment EMA, with ``g**2`` taken in ``nu``'s precision."""
    updates = jax.tree.map(
        lambda g, v: (
            None if g is None else g.astype(jnp.promote_types(g.dtype, v.dtype))
        ),
        updates,
        nu,
        is_leaf=_is_none,
    )
    return optax.tree.update_moment_per_elem_norm(updates, nu, b2, 2)


def _apply_pgain(
    direction: optax.Updates,
    nu_hat: optax.Updates,
    like: optax.Updates,
    p: Any,
    eps: Any,
    eps_root: Any,
    normalize: Normalize,
    reference_p: float,
    inputs: Callable[..., tuple[jax.Array, jax.Array]],
    sources: tuple[optax.Updates, ...],
) -> optax.Updates:
    """``direction / ((nu_hat + eps_root)**p + eps)``, per leaf, cast like ``like``.

    ``inputs(*leaves)`` recomputes a leaf's ``direction`` and ``nu_hat`` from
    its ``sources`` (the new moments and the gradients: arrays the step holds
    anyway), for ``normalize="rms"``'s sums of squares. ``None`` leaves
    (masked-out parameters) pass through. Each leaf is one elementwise XLA
    loop reading the new moments (the power is fused into it).
    A :class:`_FiniteP` selects, per step, the static kernel of its current
    value inside that loop (:func:`nsf_optax._power.dispatched_power`), so
    that a square tide between sqrt forms costs what a static ``p`` does and
    gives its update bit for bit.

    ``normalize="rms"`` rescales each leaf to the RMS of the update at
    ``reference_p``, the exponent of the optimizer this one generalises
    (1/2 for Adam, 0 for momentum SGD), so that ``p`` only reweights
    coordinates; at ``p = reference_p`` the update is that one as it is. Both
    sums of squares come from one more loop over the sources and the update
    is recomputed where it is consumed
    (:func:`nsf_optax._power.match_rms_of_pair`): neither the update nor the
    reference is written to memory.
    """
    if isinstance(p, _FiniteP):
        values, index, p_leaf = p.values, p.index, p.value
        # The static path's test, value by value: traced, decided per step.
        at_reference = jnp.zeros([], bool)
        for i, value in enumerate(values):
            if value == reference_p:
                at_reference = at_reference | (index == i)
    else:
        values = index = None
        at_reference = isinstance(p, numbers.Real) and p == reference_p
        p_leaf = cast(float | jax.Array, _p_value(p))
    abs_max = p.abs_max if isinstance(p, _BoundedP) else None
    # The momentum flavour's normalized update at its reference is the
    # direction itself, not divided by 1 + eps.
    direction_at_reference = normalize == "rms" and reference_p == 0

    def update(d, v):
        d32 = d.astype(compute_dtype(d.dtype))
        denominator = gain_denominator(
            v, p_leaf, eps, eps_root, values=values, index=index, abs_max=abs_max
        )
        if direction_at_reference and index is not None:
            denominator = jnp.where(at_reference, 1.0, denominator)
        return d32 / denominator

    def reference(d, v):
        d32 = d.astype(compute_dtype(d.dtype))
        if reference_p == 0:
            return d32
        return d32 / gain_denominator(v, reference_p, eps, eps_root)

    def update_and_reference(*leaves):
        d, v = inputs(*leaves)
        return update(d, v), reference(d, v)

    def leaf(d, v, g, *leaves):
        if d is None:
            return None
        # Trace-time only: a state restored for other params must not broadcast
        # (an EmptyState nu is the placeholder of a static p = 0, which never
        # reads it).
        chex.assert_equal_shape([d, g])
        if isinstance(v, optax.EmptyState) and _is_static_zero(p):
            # The gain 1 / (0**0 + eps) = 1 / (1 + eps), as with a zero moment.
            v = jnp.zeros([], jnp.float32)
        else:
            chex.assert_equal_shape([d, v])
        if direction_at_reference and at_reference is True:
            return d.astype(compute_dtype(d.dtype)).astype(g.dtype)
        if normalize != "rms" or at_reference is True:
            return update(d, v).astype(g.dtype)
        keep = None if index is None else cast(jax.Array, at_reference)
        if jnp.iscomplexobj(d):  # the RMS of its modulus, the update written
            u = match_rms(update(d, v), rms(reference(d, v)), keep=keep)
            return u.astype(g.dtype)
        u = match_rms_of_pair(update(d, v), update_and_reference, leaves, keep)
        return u.astype(g.dtype)

    return jax.tree.map(leaf, direction, nu_hat, like, *sources, is_leaf=_is_none)


def _placeholder_nu(params: optax.Params) -> optax.Updates:
    """``optax.EmptyState()`` at every leaf: the second moment of a static ``p = 0``.

    That gain, ``1 / (1 + eps)``, does not read the moment, so none is kept or
    updated, and no array either: the placeholders keep the params' structure
    (so that :func:`nsf_optax.pexp_gain` still answers one gain per leaf) with
    no leaves, so that the state adds nothing to a step's arguments and
    results (62 0-d arrays cost a ResNet-18 step 6-9 %,
    ``benchmarks/bench_update.py``'s ``sgd + per-leaf scalars``).
    """
    return jax.tree.map(lambda _: optax.EmptyState(), params)


def _adam_step(
    updates: optax.Updates, state: ScaleByPexpState, h: dict[str, Any]
) -> tuple[optax.Updates, ScaleByPexpState]:
    _checks.check_inexact_leaves("updates", updates)
    b1, b2 = h["b1"], h["b2"]
    p_t = _resolve_p(h["p"], state.count)
    mu = optax.tree.update_moment(updates, state.mu, b1, 1)
    nu = _update_nu(updates, state.nu, b2) if h["keep_nu"] else state.nu
    count_inc = cast(jax.Array, optax.safe_increment(state.count))

    def inputs(m, v, g):
        # One leaf's mu_hat and nu_hat, as below, from the leaves themselves.
        if h["nesterov"]:
            m_hat = optax.tree.bias_correction(m, b1, optax.safe_increment(count_inc))
            g_hat = optax.tree.bias_correction(g, b1, count_inc)
            m_hat = b1 * m_hat + (1 - b1) * g_hat
        else:
            m_hat = optax.tree.bias_correction(m, b1, count_inc)
        v_hat = optax.tree.bias_correction(v, b2, count_inc) if h["keep_nu"] else v
        return m_hat, v_hat

    if h["nesterov"]:
        mu_hat = jax.tree.map(
            lambda m, g: None if m is None else b1 * m + (1 - b1) * g,
            optax.tree.bias_correction(mu, b1, optax.safe_increment(count_inc)),
            optax.tree.bias_correction(updates, b1, count_inc),
            is_leaf=_is_none,
        )
    else:
        mu_hat = optax.tree.bias_correction(mu, b1, count_inc)
    nu_hat = optax.tree.bias_correction(nu, b2, count_inc) if h["keep_nu"] else nu
    new_updates = _apply_pgain(
        mu_hat,
        nu_hat,
        updates,
        p_t,
        h["eps"],
        h["eps_root"],
        h["normalize"],
        0.5,
        inputs,
        (mu, nu, updates),
    )
    return new_updates, ScaleByPexpState(
        count=count_inc,
        mu=optax.tree.cast_like(mu, state.mu),
        nu=optax.tree.cast_like(nu, state.nu),
        **_gain_fields(p_t, b2, h["eps"], h["eps_root"]),
    )


def _momentum_step(
    updates: optax.Updates, state: ScaleByPexpMomentumState, h: dict[str, Any]
) -> tuple[optax.Updates, ScaleByPexpMomentumState]:
    _checks.check_inexact_leaves("updates", updates)
    decay, b2 = h["decay"], h["b2"]
    p_t = _resolve_p(h["p"], state.count)
    if decay is None:
        direction, trace = updates, state.trace
        source = updates
    else:

        def accumulate(g, t):
            return None if g is None else g + decay * t

        trace = jax.tree.map(accumulate, updates, state.trace, is_leaf=_is_none)
        direction = (
            jax.tree.map(accumulate, updates, trace, is_leaf=_is_none)
            if h["nesterov"]
            else trace
        )
        source = trace  # before the cast: what the direction is made of
        trace = optax.tree.cast_like(trace, state.trace)
    count_inc = cast(jax.Array, optax.safe_increment(state.count))
    if h["keep_nu"]:
        nu = _update_nu(updates, state.nu, b2)
        nu_hat = optax.tree.bias_correction(nu, b2, count_inc)
    else:
        nu = nu_hat = state.nu

    def inputs(t, v, g):
        # One leaf's direction and nu_hat, as above, from the leaves themselves.
        d = g + decay * t if decay is not None and h["nesterov"] else t
        v_hat = optax.tree.bias_correction(v, b2, count_inc) if h["keep_nu"] else v
        return d, v_hat

    new_updates = _apply_pgain(
        direction,
        nu_hat,
        updates,
        p_t,
        h["eps"],
        h["eps_root"],
        h["normalize"],
        0.0,
        inputs,
        (source, nu, updates),
    )
    return new_updates, ScaleByPexpMomentumState(
        count=count_inc,
        trace=trace,
        nu=optax.tree.cast_like(nu, state.nu),
        **_gain_fields(p_t, b2, h["eps"], h["eps_root"]),
    )


_adam_update = _compiled(_adam_step)
_momentum_update = _compiled(_momentum_step)


# ----------------------------------------------------------------------------
# Transforms.


def scale_by_pexp(
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
    r"""Rescales updates by a power ``p`` of the second moment (Adam-flavoured).

    See :func:`nsf_optax.nsf` for the full algorithm. The positional arguments
    are those of :func:`optax.scale_by_adam`, in its order and with its
    defaults; ``p`` and the other extras are keyword-only. With ``p = 0.5`` it
    is :func:`optax.scale_by_adam`; with ``p = 0`` it is the debiased EMA of
    the gradients divided by ``1 + eps`` (momentum SGD up to a constant).

    Args:
      b1: decay of the first-moment EMA, in ``[0, 1)``.
      b2: decay of the second-moment EMA, in ``[0, 1)``.
      eps: added to the denominator after the power, finite and ``>= 0``. For
        ``p < 0`` it bounds the update by ``|mhat| / eps``.
      eps_root: added to the second moment before the power, finite, ``>= 0``.
      mu_dtype: floating dtype of the first moment; ``None`` takes the params'.
      nesterov: use Nesterov momentum (NAdam's first moment when ``p = 0.5``).
      p: the exponent, any finite real scalar (negative, zero or positive;
        Python, NumPy or JAX), or an :class:`optax.Schedule` of the step count
        returning one (see :mod:`nsf_optax.p_schedule`), evaluated at
        ``state.count`` before the increment, like
        :func:`optax.inject_hyperparams`.
      nu_dtype: floating dtype of the second moment; ``None`` takes the
        params' dtype, but at least float32 (half-precision ``nu`` underflows).
      normalize: ``None`` (default) or ``"rms"``: rescale each leaf's update so
        its RMS equals that of Adam's update (``p = 0.5``) for the same
        moments: ``p`` only reweights coordinates, at Adam's learning rate.

    Returns:
      An :class:`optax.GradientTransformationExtraArgs` with state
      :class:`ScaleByPexpState`.

    Raises:
      TypeError: an argument of the wrong kind (a string, ``None``, a dtype as
        ``p``, ...); at ``init``, integer parameters.
      ValueError: an argument out of its range, or not a scalar.

    Examples:
      >>> import jax.numpy as jnp
      >>> import nsf_optax
      >>> tx = nsf_optax.scale_by_pexp(p=-0.25)
      >>> grads = jnp.array([1e-2, 1.0])
      >>> updates, state = tx.update(grads, tx.init(grads))
      >>> [round(float(u), 3) for u in updates]  # mhat / |g| ** (2 p) = g ** 1.5
      [0.001, 1.0]
      >>> float(state.p)
      -0.25

    References:
      Zhang & Liu, `Natural Spectral Fusion
      <https://arxiv.org/abs/2509.04713>`_, 2025.
    """
    _checks.check_decay("b1", b1)
    p_given, p = p, _check_gain_args(b2, eps, eps_root, p, normalize)
    mu_dtype = _checks.check_dtype("mu_dtype", mu_dtype)
    nu_dtype = _checks.check_dtype("nu_dtype", nu_dtype)
    nesterov = _checks.check_bool("nesterov", nesterov)
    # A static p = 0 reads no second moment, unless "rms" needs Adam's update.
    keep_nu = not _is_static_zero(p_given) or normalize == "rms"
    hyper = dict(
        b1=b1, b2=b2, eps=eps, eps_root=eps_root, p=p, nesterov=nesterov,
        normalize=normalize, keep_nu=keep_nu,
    )  # fmt: skip

    def init_fn(params: optax.Params) -> ScaleByPexpState:
        _checks.check_inexact_leaves("params", params)
        count = jnp.zeros([], jnp.int32)
        return ScaleByPexpState(
            count=count,
            mu=optax.tree.zeros_like(params, dtype=mu_dtype),
            nu=_init_nu(params, nu_dtype) if keep_nu else _placeholder_nu(params),
            **_gain_fields(_resolve_p(p, count), b2, eps, eps_root),
        )

    def update_fn(
        updates: optax.Updates,
        state: ScaleByPexpState,
        params: optax.Params | None = None,
        **extra_args: Any,
    ) -> tuple[optax.Updates, ScaleByPexpState]:
        del params, extra_args
        return _adam_update(updates, state, hyper)

    # update_fn takes its own state type where optax's protocol names OptState.
    return optax.GradientTransformationExtraArgs(init_fn, update_fn)  # pyright: ignore[reportArgumentType]


def scale_by_pexp_momentum(
    decay: jax.typing.ArrayLike | None = 0.9,
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
    r"""Heavy-ball momentum times the ``p``-gain (SGD-flavoured).

    See :func:`nsf_optax.nsf_sgd` for the full algorithm. The positional
    arguments are those of :func:`optax.trace`, in its order (with a default
    ``decay``, the paper's 0.9); ``p`` and the other extras are keyword-only. With
    ``p = 0`` (and any ``eps`` below float32's half ulp of one, such as the
    default) the update is bit for bit :func:`optax.trace`.

    Args:
      decay: the momentum (trace decay), in ``[0, 1)``; ``None`` for none (the
        direction is the gradient and no trace is stored).
      nesterov: use Nesterov momentum, as :func:`optax.trace`.
      accumulator_dtype: floating dtype of the trace; ``None`` takes the
        params'.
      p: the exponent, any finite real scalar, or an :class:`optax.Schedule`
        evaluated at ``state.count`` before the increment.
      b2: decay of the second-moment EMA that sets the gain, in ``[0, 1)``.
      eps: added to the denominator after the power, finite and ``>= 0``.
      eps_root: added to the second moment before the power, finite, ``>= 0``.
      nu_dtype: floating dtype of the second moment; ``None`` takes the
        params' dtype, but at least float32.
      normalize: ``None`` (default) or ``"rms"``: rescale each leaf's update so
        its RMS equals that of the momentum direction (the ``p = 0`` update).
        With a static ``p = 0`` the update is the momentum direction.

    Returns:
      An :class:`optax.GradientTransformationExtraArgs` with state
      :class:`ScaleByPexpMomentumState`.

    Raises:
      TypeError: an argument of the wrong kind; at ``init``, integer params.
      ValueError: an argument out of its range, or not a scalar.

    Examples:
      >>> import jax.numpy as jnp, optax
      >>> import nsf_optax
      >>> ours, theirs = nsf_optax.scale_by_pexp_momentum(0.9), optax.trace(0.9)
      >>> grads = jnp.array([1e-3, 2.0])
      >>> u1, _ = ours.update(grads, ours.init(grads))  # p = 0: optax.trace
      >>> u2, _ = theirs.update(grads, theirs.init(grads))
      >>> bool((u1 == u2).all())
      True

    References:
      Zhang & Liu, `Natural Spectral Fusion
      <https://arxiv.org/abs/2509.04713>`_, 2025 (Sec. 5, ResNet-18).
    """
    if decay is not None:
        _checks.check_decay("decay", decay)
    nesterov = _checks.check_bool("nesterov", nesterov)
    accumulator_dtype = _checks.check_dtype("accumulator_dtype", accumulator_dtype)
    p_given, p = p, _check_gain_args(b2, eps, eps_root, p, normalize)
    nu_dtype = _checks.check_dtype("nu_dtype", nu_dtype)
    # A static p = 0 (optax.sgd's twin) reads and writes no second moment.
    keep_nu = not _is_static_zero(p_given)
    hyper = dict(
        decay=decay, b2=b2, eps=eps, eps_root=eps_root, p=p, nesterov=nesterov,
        normalize=normalize, keep_nu=keep_nu,
    )  # fmt: skip

    def init_fn(params: optax.Params) -> ScaleByPexpMomentumState:
        _checks.check_inexact_leaves("params", params)
        count = jnp.zeros([], jnp.int32)
        if decay is None:
            trace = optax.EmptyState()
        else:
            trace = optax.tree.zeros_like(params, dtype=accumulator_dtype)
        return ScaleByPexpMomentumState(
            count=count,
            trace=trace,
            nu=_init_nu(params, nu_dtype) if keep_nu else _placeholder_nu(params),
            **_gain_fields(_resolve_p(p, count), b2, eps, eps_root),
        )

    def update_fn(
        updates: optax.Updates,
        state: ScaleByPexpMomentumState,
        params: optax.Params | None = None,
        **extra_args: Any,
    ) -> tuple[optax.Updates, ScaleByPexpMomentumState]:
        del params, extra_args
        return _momentum_update(updates, state, hyper)

    # update_fn takes its own state type where optax's protocol names OptState.
    return optax.GradientTransformationExtraArgs(init_fn, update_fn)  # pyright: ignore[reportArgumentType]
