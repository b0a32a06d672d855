"""The paper's 1-D spectral decay model (Sec. 4.1): the error ODE and its fit.

The experiment (rows, table, comparison with the paper, verdicts, command line)
is :mod:`nsf_optax.spectral.decay`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

__all__ = [
    "PAPER_MODES",
    "DecayFit",
    "DecaySettings",
    "DecayTable",
    "DecayTrace",
    "fit_decay",
    "simulate_decay",
]

PAPER_MODES: tuple[int, ...] = (1, 2, 4, 8, 16, 32)

PScheduleLike = float | jnp.ndarray | optax.Schedule


@dataclasses.dataclass(frozen=True)
class DecaySettings:
    """Settings of the 1-D decay experiment (the paper's values were lost).

    The defaults are the best of :data:`SEARCH_GRID` by mean absolute difference
    to :data:`PAPER_TABLE` (``python -m nsf_optax.spectral.decay --search``).

    Attributes:
      eta: step-size constant; at ``p = 0`` every mode decays at exactly ``eta``.
      eps: floor added to the accumulated energy, ``(E + eps) ** -p``.
      amplitude: overall scale :math:`A_0` of the target's amplitudes.
      amplitude_decay: :math:`\\alpha` in :math:`A_k = A_0 k^{-\\alpha}`
        ("broadband but not flat" for ``0 < alpha``).
      modes: the target's sine modes ``k``.
      dt: time step.
      num_steps: number of steps.
      num_points: grid size ``M``; the grid is ``x_j = j / M``, ``j = 1..M-1``,
        on which the discrete sines are exactly orthogonal.
      record_every: record ``c_k(t)`` every this many steps.
      window: ``(t_start, t_stop)`` of the early-time regression.
      tidal_period_steps: period of the cosine-tidal rows in ``default_rows``.
    """

    eta: float = 0.4
    eps: float = 0.1
    amplitude: float = 1.0
    amplitude_decay: float = 0.5
    modes: tuple[int, ...] = PAPER_MODES
    dt: float = 0.01
    num_steps: int = 500
    num_points: int = 256
    record_every: int = 10
    window: tuple[float, float] = (0.0, 4.0)
    tidal_period_steps: int = 400

    def amplitudes(self) -> np.ndarray:
        k = np.asarray(self.modes, dtype=np.float64)
        return self.amplitude * k ** (-self.amplitude_decay)


class DecayTrace(NamedTuple):
    """Recorded trajectory of :func:`simulate_decay` (``R`` records, ``K`` modes)."""

    times: jnp.ndarray  # [R] float32, t = step * dt (R = num_steps // record_every + 1)
    tau: jnp.ndarray  # [R] float32, effective time (the paper's Eq. 8)
    p: jnp.ndarray  # [R] float32, p used for the step that starts at each record
    coeffs: jnp.ndarray  # [R, K] float32, sine coefficients c_k(t)


class DecayFit(NamedTuple):
    """Early-window regression of :math:`\\log|c_k|` (each field ``[K]``)."""

    lam_t: np.ndarray  # decay constant against t
    r2_t: np.ndarray  # R^2 of that fit
    lam_tau: np.ndarray  # decay constant against tau
    r2_tau: np.ndarray  # R^2 of that fit


_simulate_jit = jax.jit(
    lambda *a, **kw: simulate_decay(*a, **kw),
    static_argnames=("modes", "num_steps", "num_points", "record_every"),
)


class DecayTable(NamedTuple):
    """A table of fits, one row per p setting."""

    modes: tuple[int, ...]
    rows: dict[str, DecayFit]
    settings: DecaySettings
    traces: dict[str, DecayTrace]


def _as_schedule(p: PScheduleLike) -> Callable[[jnp.ndarray], jnp.ndarray]:
    if callable(p):
        return p
    p = jnp.asarray(p, jnp.float32)
    if p.ndim == 0:
        # A plain (possibly traced) number: one compilation serves every value.
        return lambda count: p
    # Per-step values (a schedule evaluated ahead); the last value is held.
    return lambda count: p[jnp.minimum(count, p.shape[0] - 1)]


def simulate_decay(
    p: PScheduleLike,
    amplitudes: jnp.ndarray,
    *,
    modes: Sequence[int] = PAPER_MODES,
    eta: float = 0.4,
    eps: float = 1e-3,
    dt: float = 0.01,
    num_steps: int = 500,
    num_points: int = 256,
    record_every: int = 10,
) -> DecayTrace:
    r"""Integrates the paper's locality-modulated error dynamics (its Eq. 5).

    On the grid :math:`x_j = j / M` the error starts at the broadband target
    :math:`e(x, 0) = \sum_k A_k \sin(k \pi x)` (initial predictor zero) and evolves
    as

    .. math::
      E(x, t) = \int_0^t e(x, s)^2\, ds, \qquad
      \partial_t e = -\eta\, \frac{e}{(E + \epsilon)^{p(t)}},

    stepped with the exponential integrator (the energy is accumulated first,
    like Adam's second moment):

    .. math::
      E_{n+1} = E_n + \Delta t\, e_n^2, \qquad
      e_{n+1} = e_n \exp\!\big(-\eta \Delta t\, (E_{n+1} + \epsilon)^{-p_n}\big),

    which is exact for ``p = 0`` (every mode decays at exactly ``eta``) and never
    overshoots. The coefficients on the orthonormal discrete sine basis
    :math:`\phi_k(x_j) = \sqrt{2/M}\sin(k\pi x_j)` are recorded with the
    effective time of the paper's Eq. 8 (reconstructed: the gain of the spatially
    averaged energy :math:`\bar E`),

    .. math::
      \tau(t) = \int_0^t (\bar E(s) + \epsilon)^{-p(s)}\, ds .

    Args:
      p: the exponent: a float, an ``optax.Schedule`` of the step count (e.g.
        ``nsf_optax.p_schedule.cosine_tidal``), or that schedule's values as an
        array ``[num_steps]`` (traced, so no recompilation); any real values.
      amplitudes: :math:`A_k`, shape ``[K]`` matching ``modes``.
      modes: the sine modes ``k`` (static).
      eta: step-size constant, ``> 0``.
      eps: energy floor, ``> 0``.
      dt: time step, ``> 0``.
      num_steps: number of steps (static).
      num_points: grid size ``M`` (static); must exceed ``max(modes)``.
      record_every: record every this many steps (static).

    Returns:
      A :class:`DecayTrace` with ``num_steps // record_every + 1`` records.

    Examples:
      >>> import jax.numpy as jnp
      >>> tr = simulate_decay(0.0, jnp.ones(6), num_steps=100)
      >>> tr.coeffs.shape
      (11, 6)

    References:
      Zhang & Liu, arXiv:2509.04713, 2025, Sec. 4.1 (Eqs. 5 and 8).
    """
    if num_points <= max(modes):
        raise ValueError(
            f"num_points must exceed max(modes)={max(modes)}, got {num_points}."
        )
    if num_steps < 1 or record_every < 1:
        raise ValueError("num_steps and record_every must be >= 1.")
    schedule = _as_schedule(p)
    x = jnp.arange(1, num_points, dtype=jnp.float32) / num_points
    k = jnp.asarray(modes, dtype=jnp.float32)
    basis = jnp.sqrt(2.0 / num_points) * jnp.sin(jnp.pi * k[:, None] * x[None, :])
    amplitudes = jnp.asarray(amplitudes, dtype=jnp.float32)
    e0 = jnp.sin(jnp.pi * k[:, None] * x[None, :]).T @ amplitudes  # [M-1]

    def step(carry, count):
        e, energy, tau = carry
        p_t = jnp.asarray(schedule(count), jnp.float32)
        energy = energy + dt * e**2
        gain = (energy + eps) ** (-p_t)
        e = e * jnp.exp(-eta * dt * gain)
        tau = tau + dt * (jnp.mean(energy) + eps) ** (-p_t)
        return (e, energy, tau), p_t

    def record(carry, start):
        counts = start + jnp.arange(record_every)
        carry, ps = jax.lax.scan(step, carry, counts)
        e, _, tau = carry
        return carry, (tau, ps[0], basis @ e)

    num_records = num_steps // record_every
    init = (e0, jnp.zeros_like(e0), jnp.zeros((), jnp.float32))
    starts = jnp.arange(num_records) * record_every
    _, (taus, ps, coeffs) = jax.lax.scan(record, init, starts)
    times = jnp.arange(num_records + 1, dtype=jnp.float32) * (record_every * dt)
    p_last = jnp.asarray(schedule(num_records * record_every), jnp.float32)
    return DecayTrace(
        times=times,
        tau=jnp.concatenate([jnp.zeros((1,), jnp.float32), taus]),
        p=jnp.concatenate([ps, p_last[None]]),
        coeffs=jnp.concatenate([(basis @ e0)[None], coeffs]),
    )


def _linfit(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares slope of y on x and the fit's R^2."""
    xc, yc = x - x.mean(), y - y.mean()
    sxx = float(xc @ xc)
    slope = float(xc @ yc) / sxx
    ss_tot = float(yc @ yc)
    ss_res = float(((yc - slope * xc) ** 2).sum())
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else 1.0
    return slope, r2


def fit_decay(trace: DecayTrace, window: tuple[float, float]) -> DecayFit:
    r"""Early-window regression of :math:`\log|c_k|` against t and against tau.

    .. math::
      \log|c_k(t)| \approx b_k - \lambda_k t \quad (t \in \text{window}),

    and the same against :math:`\tau`; :math:`R^2` is each fit's coefficient of
    determination.

    Args:
      trace: a :class:`DecayTrace`.
      window: ``(t_start, t_stop)``; records with ``t_start <= t <= t_stop``
        (at least three) enter the fit.

    Returns:
      A :class:`DecayFit`.

    References:
      Zhang & Liu, arXiv:2509.04713, 2025, Sec. 4.1.2.
    """
    times = np.asarray(trace.times, np.float64)
    keep = (times >= window[0] - 1e-9) & (times <= window[1] + 1e-9)
    if keep.sum() < 3:
        raise ValueError(f"window {window} holds fewer than three records.")
    tau = np.asarray(trace.tau, np.float64)[keep]
    logc = np.log(np.abs(np.asarray(trace.coeffs, np.float64)[keep]) + 1e-30)
    fits_t = [_linfit(times[keep], logc[:, i]) for i in range(logc.shape[1])]
    fits_tau = [_linfit(tau, logc[:, i]) for i in range(logc.shape[1])]
    return DecayFit(
        lam_t=-np.array([f[0] for f in fits_t]),
        r2_t=np.array([f[1] for f in fits_t]),
        lam_tau=-np.array([f[0] for f in fits_tau]),
        r2_tau=np.array([f[1] for f in fits_tau]),
    )
