"""Argument checks shared by every factory, run once when an optimizer is built.

A number may be a Python ``int`` or ``float``, a NumPy scalar or 0-d array, or
a 0-d JAX array; concrete values are checked like Python floats. A value known
only under tracing (``optax.inject_hyperparams`` under ``jax.jit`` passes its
hyperparameters as tracers) has a known shape and dtype, which are checked,
and an unknown value, which cannot be: it is used as given. Booleans, strings,
``None``, complex numbers, dtypes and types are refused as numbers. Errors are
a ``TypeError`` for a value of the wrong kind and a ``ValueError`` for one of
the wrong shape or range, each naming the argument and what it accepts.
"""

import math
import numbers
from typing import Any

import jax
import jax.core
import jax.numpy as jnp
import numpy as np

_SCHEDULE_HINT = "to schedule it, wrap the factory in optax.inject_hyperparams"


def _kind(value: Any) -> str:
    """How ``value`` is named in an error message."""
    if isinstance(value, type) or isinstance(value, np.dtype):
        return f"the type or dtype {value!r}"
    if isinstance(value, jax.Array | np.ndarray):
        return f"an array of shape {value.shape} and dtype {value.dtype}"
    return f"{value!r} of type {type(value).__name__}"


def is_schedule(value: Any) -> bool:
    """A callable that is not a type or dtype (``jnp.bfloat16`` is callable)."""
    return callable(value) and not isinstance(value, type | np.dtype)


def is_traced(value: Any) -> bool:
    return isinstance(value, jax.core.Tracer)


def real_scalar(name: str, value: Any, accepts: str) -> float | None:
    """The value of a real scalar as a float, or ``None`` when it is traced.

    Raises ``TypeError`` for anything that is not a real number and
    ``ValueError`` for an array that is not 0-d; ``accepts`` completes the
    message ("must be <accepts>").
    """
    if isinstance(value, bool | np.bool_) or not isinstance(
        value, numbers.Real | np.ndarray | jax.Array
    ):
        hint = f"; {_SCHEDULE_HINT}" if is_schedule(value) else ""
        raise TypeError(f"{name} must be {accepts}, got {_kind(value)}{hint}.")
    if isinstance(value, numbers.Real):
        return float(value)
    dtype = value.dtype
    if not (jnp.issubdtype(dtype, jnp.floating) or jnp.issubdtype(dtype, jnp.integer)):
        raise TypeError(f"{name} must be {accepts}, got {_kind(value)}.")
    if value.shape != ():
        raise ValueError(f"{name} must be {accepts} (0-d), got {_kind(value)}.")
    if is_traced(value):
        return None
    return float(np.asarray(value, np.float64))


def check_range(
    name: str, value: Any, *, low: float, high: float | None = None
) -> None:
    """``low <= value`` (``< high`` when given), finite; unchecked if traced."""
    if high is None:
        accepts = f"a finite real number >= {low}"
    else:
        accepts = f"a real number in [{low}, {high})"
    x = real_scalar(name, value, accepts)
    if x is None:
        return
    ok = math.isfinite(x) and x >= low and (high is None or x < high)
    if not ok:
        raise ValueError(f"{name} must be {accepts}, got {value!r}.")


def check_decay(name: str, value: Any) -> None:
    """A decay rate (``b1``, ``b2``, ``momentum``): in ``[0, 1)``."""
    check_range(name, value, low=0.0, high=1.0)


def check_nonnegative(name: str, value: Any) -> None:
    """``eps``, ``eps_root``: finite and ``>= 0``."""
    check_range(name, value, low=0.0)


def check_scalar_or_schedule(name: str, value: Any, *, nonnegative: bool) -> None:
    """A learning rate or weight decay: a finite scalar, or a schedule."""
    if is_schedule(value):
        return
    if nonnegative:
        check_range(name, value, low=0.0)
        return
    accepts = "a finite real number or an optax.Schedule"
    x = real_scalar(name, value, accepts)
    if x is not None and not math.isfinite(x):
        raise ValueError(f"{name} must be {accepts}, got {value!r}.")


def check_p(p: Any) -> float | jax.Array | Any:
    """The exponent: a schedule, a tracer, or a concrete value made a float.

    A concrete scalar (Python, NumPy or JAX) becomes a Python float, so that
    the exact forms of :func:`nsf_optax._power.power` apply to it whatever
    its type.
    """
    if is_schedule(p):
        check_schedule("p", p)
        declared = declared_values(p)
        if declared is not None:
            check_schedule("p.index", declared[1])
        declared_bounds(p)
        return p
    accepts = "a finite real number (any sign) or an optax.Schedule of the count"
    if isinstance(p, type | np.dtype):
        raise TypeError(f"p must be {accepts}, got {_kind(p)}.")
    x = real_scalar("p", p, accepts)
    if x is None:
        return p
    if not math.isfinite(x):
        raise ValueError(f"p must be {accepts}, got {p!r}.")
    return x


def check_schedule_output(p_t: Any) -> Any:
    """What a ``p`` schedule returned: a real scalar (checked when traced)."""
    accepts = "a schedule returning a real scalar"
    if isinstance(p_t, bool | np.bool_) or not isinstance(
        p_t, numbers.Real | np.ndarray | jax.Array
    ):
        raise TypeError(f"p must be {accepts}, but it returned {_kind(p_t)}.")
    if not isinstance(p_t, numbers.Real):
        real = jnp.issubdtype(p_t.dtype, jnp.floating) or jnp.issubdtype(
            p_t.dtype, jnp.integer
        )
        if not real:
            raise TypeError(f"p must be {accepts}, but it returned {_kind(p_t)}.")
        if p_t.shape != ():
            raise ValueError(f"p must be {accepts}, but it returned {_kind(p_t)}.")
    return p_t


def check_dtype(name: str, value: Any) -> jnp.dtype | None:
    """``None`` or a floating / complex dtype, canonicalised."""
    if value is None:
        return None
    accepts = "None or a floating-point or complex dtype such as jnp.bfloat16"
    if isinstance(value, jax.Array | np.ndarray | numbers.Number):
        raise TypeError(f"{name} must be {accepts}, got {_kind(value)}.")
    try:
        dtype = jnp.dtype(value)
    except TypeError:
        raise TypeError(f"{name} must be {accepts}, got {_kind(value)}.") from None
    if not jnp.issubdtype(dtype, jnp.inexact):
        raise TypeError(f"{name} must be {accepts}, got {_kind(value)}.")
    return jax.dtypes.canonicalize_dtype(dtype)


def check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be True or False, got {_kind(value)}.")
    return bool(value)


def check_normalize(value: Any) -> None:
    if value is None or (isinstance(value, str) and value == "rms"):
        return
    error = ValueError if isinstance(value, str) else TypeError
    raise error(f"normalize must be None or 'rms', got {_kind(value)}.")


def check_inexact_leaves(name: str, tree: Any) -> None:
    """Every leaf of ``tree`` floating or complex (at trace time).

    Integer parameters would get integer moments that truncate to zero (and
    updates rounded away by ``optax.apply_updates``): refused instead.
    """
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
        dtype = getattr(leaf, "dtype", None)
        if dtype is None and isinstance(leaf, numbers.Number):
            dtype = jnp.result_type(leaf)  # a Python int is int32 to JAX
        if dtype is not None and not jnp.issubdtype(dtype, jnp.inexact):
            where = jax.tree_util.keystr(path)
            raise TypeError(
                f"{name}{where} has dtype {dtype}: the moments need floating-point "
                "or complex leaves. Leave integer leaves out with optax.masked or "
                "optax.partition (with optax.set_to_zero())."
            )


def declared_values(schedule: Any) -> tuple[tuple[float, ...], Any] | None:
    """The values a ``p`` schedule declares and its ``index``, or ``None``.

    A declaration is two attributes: ``values``, a non-empty tuple of finite
    real numbers, and ``index``, a function of the count returning the
    position in ``values`` of the step's value. The transforms then take
    ``values[index(count)]`` as ``p`` and select that value's static kernel
    (see :mod:`nsf_optax.p_schedule`). A schedule with neither is called as
    it is; one with only one of them is refused.
    """
    values = getattr(schedule, "values", None)
    index = getattr(schedule, "index", None)
    if values is None and index is None:
        return None
    accepts = "a non-empty tuple of finite real numbers"
    if isinstance(values, str) or not isinstance(values, tuple | list):
        raise TypeError(f"p.values must be {accepts}, got {_kind(values)}.")
    if not values:
        raise ValueError(f"p.values must be {accepts}, got {values!r}.")
    values = tuple(check_finite("p.values[i]", v) for v in values)
    if not callable(index):
        raise TypeError(
            "p.index must be a function of the count returning the position of "
            f"its value in p.values (declared beside p.values), got {_kind(index)}."
        )
    return values, index


def declared_bounds(schedule: Any) -> tuple[float, float] | None:
    """The range ``(low, high)`` a ``p`` schedule declares, or ``None``.

    A declaration is one attribute, ``bounds``: a pair of finite real numbers
    ``low <= high``. The transforms then clip the schedule's value to it (the
    declaration defines ``p``'s range), and a range within ``|p| <= 126/128``
    lets the float32 power skip its per-element clip (see
    :func:`nsf_optax._power.power_f32`).
    """
    bounds = getattr(schedule, "bounds", None)
    if bounds is None:
        return None
    accepts = "a pair (low, high) of finite real numbers with low <= high"
    if isinstance(bounds, str) or not isinstance(bounds, tuple | list):
        raise TypeError(f"p.bounds must be {accepts}, got {_kind(bounds)}.")
    if len(bounds) != 2:
        raise ValueError(f"p.bounds must be {accepts}, got {bounds!r}.")
    low, high = (check_finite(f"p.bounds[{i}]", b) for i, b in enumerate(bounds))
    if low > high:
        raise ValueError(f"p.bounds must be {accepts}, got {bounds!r}.")
    return low, high


def check_finite(name: str, value: Any) -> float:
    """A concrete finite real scalar (Python, NumPy or JAX), as a float."""
    accepts = "a finite real number"
    x = real_scalar(name, value, accepts)
    if x is None:
        raise TypeError(f"{name} must be {accepts} known when built, got a tracer.")
    if not math.isfinite(x):
        raise ValueError(f"{name} must be {accepts}, got {value!r}.")
    return x


def check_int(name: str, value: Any, *, minimum: int) -> int:
    """A concrete integer ``>= minimum``: Python, NumPy or a 0-d integer array."""
    accepts = f"an integer >= {minimum}"
    integral = isinstance(value, numbers.Integral) and not isinstance(
        value, bool | np.bool_
    )
    array = isinstance(value, np.ndarray | jax.Array) and jnp.issubdtype(
        value.dtype, jnp.integer
    )
    if not (integral or array):
        raise TypeError(f"{name} must be {accepts}, got {_kind(value)}.")
    if isinstance(value, np.ndarray | jax.Array):
        if value.shape != ():
            raise ValueError(f"{name} must be {accepts} (0-d), got {_kind(value)}.")
        if is_traced(value):
            raise TypeError(f"{name} must be {accepts} known when built, got a tracer.")
    out = int(value)
    if out < minimum:
        raise ValueError(f"{name} must be {accepts}, got {value!r}.")
    return out


def check_schedule(name: str, schedule: Any) -> None:
    """A schedule: callable on a traced int32 count, returning a real scalar.

    Called once on an abstract count (:func:`jax.eval_shape`: no computation),
    so that a schedule that cannot be traced (Python control flow on the
    count, a wrong signature) fails when the optimizer is built, naming the
    argument, not at the first update.
    """
    accepts = "a schedule: a callable of the step count returning a real scalar"
    count = jax.ShapeDtypeStruct((), jnp.int32)
    try:
        out = jax.eval_shape(schedule, count)
    except Exception as error:  # any failure of the user's callable
        raise TypeError(
            f"{name} must be {accepts}; calling it on a traced int32 count (as "
            f"every update does) raised {type(error).__name__}: {error}"
        ) from error
    dtype = getattr(out, "dtype", None)
    real = dtype is not None and (
        jnp.issubdtype(dtype, jnp.floating) or jnp.issubdtype(dtype, jnp.integer)
    )
    if not real:
        raise TypeError(f"{name} must be {accepts}, but it returned {out!r}.")
    if out.shape != ():
        raise ValueError(f"{name} must be {accepts}, but it returned {out!r}.")
