"""Schedules for the second-moment exponent ``p`` ("tidal" and "pulse-tidal").

Every factory returns an :class:`optax.Schedule`: a pure function of the step
count returning a scalar. They compose with :func:`optax.join_schedules` and
:func:`optax.inject_hyperparams`, and can be passed as ``p`` to
:func:`nsf_optax.scale_by_pexp` and the aliases.

All schedules are closed-form in the count: the cost of one evaluation does not
depend on how many cycles have passed. Integer counts are reduced modulo the
period in integer arithmetic (exact for any ``int32``/``int64`` count); float
counts (for example ``1e10`` without x64) are reduced in floating point and
always land in the schedule's range.

Finite-valued schedules: :func:`constant`, :func:`square_tidal` and
:func:`pulse_tidal` over a finite-valued tide declare the values they take, as
a tuple ``values``, and which of them each step takes, as a function ``index``
of the count, both attributes of the schedule. The transforms then take
``values[index(count)]`` as ``p`` and run, at each step, that value's static
kernel (an exact sqrt form for ``0, +-1/4, +-1/2, 1``), bit for bit the update
of that static ``p``, so that the paper's schedule (a pulse at 1/2, then a
square tide between 1/4 and -1/4) costs what Adam does. A schedule of your own
may declare itself the same way (``schedule.values = (0.5, -0.5)`` and
``schedule.index = lambda count: (count // 100) % 2``); the declaration then
defines ``p``. Composing with :func:`optax.join_schedules` drops it.

Bounded schedules: :func:`cosine_tidal` (and :func:`pulse_tidal` over it)
declares the range of its values, as a pair ``bounds = (low, high)``. The
transforms clip ``p`` to it (the declaration defines ``p``'s range, as
``values`` defines its values), and a range within ``|p| <= 126/128`` lets the
float32 power drop its per-element clip of the exponent, which values beyond it
need. A schedule of your own may declare ``schedule.bounds = (low, high)``.

The registry :data:`SCHEDULES` names the schedules that the experiments' command
lines build from flags: each entry declares its parameters (name, default, bound,
help, and whether it is a period in steps) and a builder. Adding one entry here
(:func:`register`) makes a schedule usable by every experiment command; this
module loads jax only when a schedule is built, so that the command lines read the
registry before jax loads.

References:
  Zhang & Liu, `Natural Spectral Fusion: p-Exponent Cyclic Scheduling and Early
  Decision-Boundary Alignment in First-Order Optimization
  <https://arxiv.org/abs/2509.04713>`_, 2025 (Sec. 3.3).
"""

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jax import Array
    from jax.typing import ArrayLike
    from optax import Schedule
else:
    # The registry below is read before jax loads (the command lines' flags), so
    # the annotations name stand-ins at run time; type checkers see jax's and
    # optax's own types. A Schedule is optax's: a function of the step count
    # returning a scalar.
    Array = ArrayLike = Any
    Schedule = Callable[[Any], Any]

__all__ = [
    "SCHEDULES",
    "Param",
    "Registered",
    "constant",
    "cosine_tidal",
    "get",
    "params",
    "pulse_tidal",
    "register",
    "square_tidal",
]


def _declare_values(
    schedule: Schedule,
    values: Iterable[float],
    index: Callable[[ArrayLike], Array],
) -> None:
    """Records the values ``schedule`` takes and which one each step takes."""
    schedule.values = tuple(values)  # pyright: ignore[reportFunctionMemberAccess]
    schedule.index = index  # pyright: ignore[reportFunctionMemberAccess]


def _declare_bounds(schedule: Schedule, low: float, high: float) -> None:
    """Records the range ``[low, high]`` of the values ``schedule`` takes."""
    schedule.bounds = (low, high)  # pyright: ignore[reportFunctionMemberAccess]


def _phase_in_cycle(count: ArrayLike, cycle_steps: int) -> Array:
    """Returns ``count mod cycle_steps`` as float32, exact for integer counts."""
    import jax.numpy as jnp

    count = jnp.asarray(count)
    if jnp.issubdtype(count.dtype, jnp.integer):
        # Integer modulo first: exact, and never overflows however large the count.
        return jnp.remainder(count, jnp.asarray(cycle_steps, count.dtype)).astype(
            jnp.float32
        )
    return jnp.remainder(count.astype(jnp.float32), jnp.float32(cycle_steps))


def constant(value: float) -> Schedule:
    r"""A constant exponent, :math:`p(t) = p_0`.

    Args:
      value: the exponent :math:`p_0`; any finite real (negative values are
        high-pass, ``0`` is momentum SGD, ``0.5`` is Adam).

    Returns:
      An :class:`optax.Schedule` returning ``value`` as a float32 scalar.

    Examples:
      >>> from nsf_optax import p_schedule
      >>> float(p_schedule.constant(-0.25)(1000))
      -0.25
    """
    import jax.numpy as jnp

    from nsf_optax import _checks

    value = _checks.check_finite("value", value)

    def schedule(count: ArrayLike) -> Array:
        del count
        return jnp.asarray(value, jnp.float32)

    _declare_values(schedule, [value], lambda count: jnp.zeros([], jnp.int32))
    return schedule


def cosine_tidal(
    min_value: float,
    max_value: float,
    period_steps: int,
    phase: float = 0.0,
) -> Schedule:
    r"""A cosine tide sweeping ``p`` between two values.

    .. math::

      p(t) = c + a \cos\left(\frac{2\pi t}{T} + \phi\right), \quad
      c = \frac{p_{\max} + p_{\min}}{2}, \quad a = \frac{p_{\max} - p_{\min}}{2}.

    With ``phase = 0`` the tide starts at ``max_value``, reaches ``min_value`` at
    ``t = T/2`` and is back at ``max_value`` at ``t = T``.

    Args:
      min_value: the low tide :math:`p_{\min}`; any finite real.
      max_value: the high tide :math:`p_{\max}`; finite, ``>= min_value``.
      period_steps: the period :math:`T` in steps; an integer ``>= 1``.
      phase: the phase :math:`\phi` in radians; any finite real.

    Returns:
      An :class:`optax.Schedule` declaring its range,
      ``bounds = (min_value, max_value)`` (see the module's docstring).

    Examples:
      >>> from nsf_optax import p_schedule
      >>> tide = p_schedule.cosine_tidal(-0.5, 0.5, period_steps=100)
      >>> [round(float(tide(t)), 6) for t in (0, 50, 100)]
      [0.5, -0.5, 0.5]
    """
    import jax.numpy as jnp

    from nsf_optax import _checks

    min_value = _checks.check_finite("min_value", min_value)
    max_value = _checks.check_finite("max_value", max_value)
    if max_value < min_value:
        raise ValueError(
            f"max_value must be >= min_value, got max_value={max_value} and "
            f"min_value={min_value}."
        )
    period_steps = _checks.check_int("period_steps", period_steps, minimum=1)
    phase = _checks.check_finite("phase", phase)
    center = 0.5 * (max_value + min_value)
    amplitude = 0.5 * (max_value - min_value)

    def schedule(count: ArrayLike) -> Array:
        fraction = _phase_in_cycle(count, period_steps) / period_steps
        angle = 2.0 * jnp.pi * fraction + phase
        return jnp.asarray(center + amplitude * jnp.cos(angle), jnp.float32)

    _declare_bounds(schedule, min_value, max_value)
    return schedule


def square_tidal(
    high_value: float,
    low_value: float,
    every_steps: int,
) -> Schedule:
    r"""A square tide: ``p`` alternates between two values every ``N`` steps.

  .. math::

    p(t) = \begin{cases} p_{\text{high}} & \lfloor t / N \rfloor \text{ even} \\
    p_{\text{low}} & \text{otherwise.} \end{cases}

  The paper's ResNet run switches the sign of ``p`` every 200 iterations:
  ``square_tidal(a, -a, 200)``.

  Args:
    high_value: the value for the first ``every_steps`` steps; finite.
    low_value: the value for the next ``every_steps`` steps; finite (it need
      not be lower than ``high_value``).
    every_steps: the half period :math:`N`; an integer ``>= 1``.

  Returns:
    An :class:`optax.Schedule`.

  Examples:
    >>> from nsf_optax import p_schedule
    >>> tide = p_schedule.square_tidal(0.25, -0.25, every_steps=200)
    >>> [float(tide(t)) for t in (0, 199, 200, 399, 400)]
    [0.25, 0.25, -0.25, -0.25, 0.25]
  """
    import jax.numpy as jnp

    from nsf_optax import _checks

    high_value = _checks.check_finite("high_value", high_value)
    low_value = _checks.check_finite("low_value", low_value)
    every_steps = _checks.check_int("every_steps", every_steps, minimum=1)

    def index(count: ArrayLike) -> Array:
        return (_phase_in_cycle(count, 2 * every_steps) >= every_steps).astype(
            jnp.int32
        )

    def schedule(count: ArrayLike) -> Array:
        return jnp.where(
            index(count) == 0, jnp.float32(high_value), jnp.float32(low_value)
        )

    _declare_values(schedule, [high_value, low_value], index)
    return schedule


def pulse_tidal(
    pulse_value: float,
    pulse_steps: int,
    tidal: Schedule,
) -> Schedule:
    r"""A pulse of constant ``p``, then a tide.

  .. math::

    p(t) = \begin{cases} p_{\text{pulse}} & t < K \\
    \text{tidal}(t - K) & t \ge K. \end{cases}

  The tide is restarted at the end of the pulse, as in
  :func:`optax.join_schedules`, so a square tide starts on its high half.

  Args:
    pulse_value: the exponent during the pulse; finite.
    pulse_steps: the pulse length :math:`K`; an integer ``>= 0``.
    tidal: the schedule that follows, for example :func:`square_tidal` or
      :func:`cosine_tidal`; any :class:`optax.Schedule`.

  Returns:
    An :class:`optax.Schedule`. Over a tide that declares its values it
    declares ``pulse_value`` and them; over one that declares its range, that
    range widened to ``pulse_value``.

  Examples:
    >>> from nsf_optax import p_schedule
    >>> p = p_schedule.pulse_tidal(
    ...     0.5, 100, p_schedule.square_tidal(0.25, -0.25, every_steps=200))
    >>> [float(p(t)) for t in (0, 99, 100, 299, 300)]
    [0.5, 0.5, 0.25, 0.25, -0.25]
  """
    import jax.numpy as jnp

    from nsf_optax import _checks

    pulse_value = _checks.check_finite("pulse_value", pulse_value)
    pulse_steps = _checks.check_int("pulse_steps", pulse_steps, minimum=0)
    _checks.check_schedule("tidal", tidal)

    def schedule(count: ArrayLike) -> Array:
        count = jnp.asarray(count)
        in_pulse = count < pulse_steps
        # Clamp so the tide is never asked about negative counts.
        tide = tidal(jnp.maximum(count - pulse_steps, 0))
        return jnp.where(in_pulse, jnp.float32(pulse_value), tide).astype(jnp.float32)

    tidal_declared = _checks.declared_values(tidal)
    if tidal_declared is not None:
        tidal_values, tidal_index = tidal_declared

        def index(count: ArrayLike) -> Array:
            count = jnp.asarray(count)
            after = 1 + tidal_index(jnp.maximum(count - pulse_steps, 0))
            return jnp.where(count < pulse_steps, 0, after).astype(jnp.int32)

        _declare_values(schedule, [pulse_value, *tidal_values], index)
    tidal_bounds = _checks.declared_bounds(tidal)
    if tidal_bounds is not None:
        low, high = tidal_bounds
        _declare_bounds(schedule, min(low, pulse_value), max(high, pulse_value))
    return schedule


# The registry: what the experiments' command lines build from flags. -------------


@dataclasses.dataclass(frozen=True)
class Param:
    """One parameter of a registered schedule, as the experiments' flags show it.

    Parameter names are shared by every registered schedule (one flag each), so
    two schedules may use the same name only with the same declaration.

    Attributes:
      name: the flag and config name (``--<name>``); unique across schedules.
      default: the examples' default; its type (``int`` or ``float``) is the
        parameter's. Floats must be finite.
      help: one line for ``--help``.
      low: the lower bound (None: unbounded).
      low_open: exclude ``low`` itself.
      period: a duration in steps, which budgeted runs scale with the budget.
    """

    name: str
    default: float | int
    help: str
    low: float | None = None
    low_open: bool = False
    period: bool = False


@dataclasses.dataclass(frozen=True)
class Registered:
    """A registered schedule: its parameters and how to build it from them.

    Attributes:
      name: the registry key (``--p_schedule <name>``).
      label: the short name in method labels (``nsf-<label>``).
      build: called with one keyword argument per parameter; returns the
        :class:`optax.Schedule`.
      params: the parameters, in flag order.
      help: one line for ``--help``.
      ordered: pairs ``(a, b)`` of parameter names whose values need
        ``a <= b``, checked before anything is built.
    """

    name: str
    label: str
    build: Callable[..., Schedule]
    params: tuple[Param, ...]
    help: str
    ordered: tuple[tuple[str, str], ...] = ()

    def periods(self) -> tuple[str, ...]:
        """The names of the parameters that are periods in steps."""
        return tuple(p.name for p in self.params if p.period)

    def from_params(self, values: Mapping[str, float | int]) -> Schedule:
        """Builds the schedule from a mapping holding (at least) its parameters."""
        return self.build(**{p.name: values[p.name] for p in self.params})


#: Name -> entry; extend with :func:`register`, read with :func:`get`.
SCHEDULES: dict[str, Registered] = {}


def register(entry: Registered) -> Registered:
    """Adds ``entry`` to :data:`SCHEDULES`; returns it.

    Args:
      entry: a :class:`Registered` whose name and label are new and whose
        parameters agree with any other schedule's of the same name.

    Returns:
      ``entry``.

    Raises:
      ValueError: a name or label already taken, or a parameter declared
        differently by another schedule.
    """
    if entry.name in SCHEDULES:
        raise ValueError(f"p schedule {entry.name!r} is already registered.")
    if any(e.label == entry.label for e in SCHEDULES.values()):
        raise ValueError(f"p schedule label {entry.label!r} is already taken.")
    known = params()
    for param in entry.params:
        if param.name in known and known[param.name] != param:
            raise ValueError(
                f"p schedule parameter {param.name!r} is declared differently by "
                "another schedule."
            )
    names = {p.name for p in entry.params}
    for pair in entry.ordered:
        if not set(pair) <= names:
            raise ValueError(f"ordered pair {pair} names an unknown parameter.")
    SCHEDULES[entry.name] = entry
    return entry


def get(name: str) -> Registered:
    """The registered schedule ``name``.

    Raises:
      ValueError: for an unknown name, naming the choices.
    """
    if name not in SCHEDULES:
        raise ValueError(
            f"Unknown p schedule {name!r}; choose one of {list(SCHEDULES)}."
        )
    return SCHEDULES[name]


def params() -> dict[str, Param]:
    """Every registered schedule's parameters by name, in registration order."""
    return {p.name: p for entry in SCHEDULES.values() for p in entry.params}


def _pulse_square(
    pulse_value: float,
    pulse_steps: int,
    tidal_high_value: float,
    tidal_low_value: float,
    tidal_every_steps: int,
) -> Schedule:
    # The paper's ResNet schedule: a pulse, then a square tide.
    tide = square_tidal(tidal_high_value, tidal_low_value, tidal_every_steps)
    return pulse_tidal(pulse_value, pulse_steps, tide)


# The defaults are the examples' choice: the paper's extracted text lost the numbers
# of its pulse-tidal run, keeping only "a pulse phase, then alternating sign every
# 200 iterations".
register(
    Registered(
        name="constant",
        label="const",
        build=lambda p_value: constant(p_value),
        params=(Param("p_value", -0.125, "the constant p of p_schedule 'constant'."),),
        help="p fixed at p_value",
    )
)
register(
    Registered(
        name="cosine_tidal",
        label="cosine",
        build=lambda p_min, p_max, p_period_steps: cosine_tidal(
            p_min, p_max, p_period_steps
        ),
        params=(
            Param("p_min", -0.25, "cosine_tidal sweeps p over [p_min, p_max]."),
            Param("p_max", 0.25, "cosine_tidal starts at p_max."),
            Param(
                "p_period_steps",
                400,
                "the period of cosine_tidal, in steps.",
                low=0,
                low_open=True,
                period=True,
            ),
        ),
        help="a cosine tide over [p_min, p_max]",
        ordered=(("p_min", "p_max"),),
    )
)
register(
    Registered(
        name="pulse_tidal",
        label="pulse",
        build=_pulse_square,
        params=(
            Param("pulse_value", -0.25, "p during the pulse phase of pulse_tidal."),
            Param(
                "pulse_steps",
                200,
                "the length of the pulse phase of pulse_tidal.",
                low=0,
                period=True,
            ),
            Param(
                "tidal_high_value",
                0.25,
                "after the pulse, p alternates between tidal_high_value and "
                "tidal_low_value.",
            ),
            Param("tidal_low_value", -0.25, "see tidal_high_value."),
            Param(
                "tidal_every_steps",
                200,
                "steps between the alternations of pulse_tidal.",
                low=0,
                low_open=True,
                period=True,
            ),
        ),
        help="a pulse at pulse_value, then a square tide",
    )
)
