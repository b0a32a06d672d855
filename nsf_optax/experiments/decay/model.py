"""The paper's 1-D spectral decay model (Sec. 4.1): the error ODE and its fit.

The experiment (rows, table, comparison with the paper, verdicts, command line)
is :mod:`nsf_optax.experiments.decay.experiment`, which re-exports the public names
here.
"""

import functools
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.core
import jax.numpy as jnp
import numpy as np
import optax

from nsf_optax.experiments.decay.settings import (
    ACCUMULATE,
    ENERGY,
    TAU_ENERGY,
    DecaySettings,
    _choice,
)

__all__ = ["DecayFit", "DecayTrace", "fit_decay", "simulate_decay"]

PScheduleLike = float | jnp.ndarray | optax.Schedule

_D = DecaySettings()  # simulate_decay's defaults: one source of truth


class DecayTrace(NamedTuple):
    """Recorded trajectory of :func:`simulate_decay` (``R`` records, ``K`` modes).

    Examples:
      >>> import jax.numpy as jnp
      >>> simulate_decay(0.0, jnp.ones(6), num_steps=20).times.shape
      (3,)
    """

    times: jnp.ndarray  # [R] float32, t = step * dt (R = num_steps // record_every + 1)
    tau: jnp.ndarray  # [R] float32, effective time (the paper's Eq. 8)
    p: jnp.ndarray  # [R] float32, p used for the step that starts at each record
    coeffs: jnp.ndarray  # [R, K] float32, sine coefficients c_k(t)


class DecayFit(NamedTuple):
    """Early-window regression of :math:`\\log|c_k|` (each array ``[K]``).

    ``lam`` and ``r2`` are those of ``variable`` (``"t"`` or ``"tau"``), the
    variable the protocol regresses on.

    Examples:
      >>> fit = DecayFit(np.ones(2), np.ones(2), np.zeros(2), np.ones(2), "tau")
      >>> fit.lam, fit.r2
      (array([0., 0.]), array([1., 1.]))
    """

    lam_t: np.ndarray  # decay constant against t
    r2_t: np.ndarray  # R^2 of that fit
    lam_tau: np.ndarray  # decay constant against tau
    r2_tau: np.ndarray  # R^2 of that fit
    variable: str = "t"

    @property
    def lam(self) -> np.ndarray:
        """The decay constants against ``variable`` (``[K]``)."""
        return self.lam_tau if self.variable == "tau" else self.lam_t

    @property
    def r2(self) -> np.ndarray:
        """The fits' :math:`R^2` against ``variable``."""
        return self.r2_tau if self.variable == "tau" else self.r2_t


def _per_step(p: PScheduleLike, num_steps: int) -> jnp.ndarray:
    """``p`` as float32 values for steps ``0..num_steps`` (inclusive)."""
    counts = jnp.arange(num_steps + 1)
    if callable(p):
        return jnp.asarray(jax.vmap(p)(counts), jnp.float32).reshape(-1)
    p = jnp.asarray(p, jnp.float32)
    if p.ndim == 0:
        return jnp.broadcast_to(p, counts.shape)
    # Per-step values (a schedule evaluated ahead); the last value is held.
    return p[jnp.minimum(counts, p.shape[0] - 1)]


def _integrate(
    p, tau_ps, amplitudes, eta, eps, dt, weight, *, modes, num_points, record_every
):
    """One row: coefficients [R, K] and tau [J, 2, R] (J exponents, 2 energies).

    ``p`` is ``[N + 1]`` (the last value only labels the last record); ``tau_ps``
    is ``[J, N]``, the exponents used in tau; the energies are those of
    :data:`TAU_ENERGY`, in order.
    """
    num_steps = p.shape[0] - 1
    x = jnp.arange(1, num_points, dtype=jnp.float32) / num_points
    k = jnp.asarray(modes, dtype=jnp.float32)
    sines = jnp.sin(jnp.pi * k[:, None] * x[None, :])  # [K, M-1]
    basis = jnp.sqrt(2.0 / num_points) * sines
    e0 = sines.T @ jnp.asarray(amplitudes, jnp.float32)  # [M-1]
    early_rate = weight * jnp.mean(e0**2)  # d(mean E)/d(step) at t = 0

    def step(carry, n):
        e, energy, tau = carry
        energy = energy + weight * e**2
        e = e * jnp.exp(-eta * dt * (energy + eps) ** (-p[n]))
        ebar = jnp.stack([early_rate * (n + 1), jnp.mean(energy)])  # TAU_ENERGY
        tau = tau + dt * (ebar[None, :] + eps) ** (-tau_ps[:, n, None])
        return (e, energy, tau), None

    def record(carry, start):
        carry, _ = jax.lax.scan(step, carry, start + jnp.arange(record_every))
        return carry, (basis @ carry[0], carry[2])

    num_records = num_steps // record_every
    tau0 = jnp.zeros((tau_ps.shape[0], len(TAU_ENERGY)), jnp.float32)
    init = (e0, jnp.zeros_like(e0), tau0)
    starts = jnp.arange(num_records) * record_every
    _, (coeffs, taus) = jax.lax.scan(record, init, starts)
    coeffs = jnp.concatenate([(basis @ e0)[None], coeffs])
    taus = jnp.concatenate([tau0[None], taus])  # [R, J, 2]
    return coeffs, jnp.moveaxis(taus, 0, -1)


_STATIC = ("modes", "num_points", "record_every")


@functools.partial(jax.jit, static_argnames=("modes", "num_points", "record_every"))
def _integrate_rows(
    p, tau_ps, amplitudes, eta, eps, dt, weight, *, modes, num_points, record_every
):
    """Every row of a table in one call: p [rows, N + 1], tau_ps [rows, J, N]."""
    one = functools.partial(
        _integrate, modes=modes, num_points=num_points, record_every=record_every
    )
    return jax.vmap(one, in_axes=(0, 0, None, None, None, None, None))(
        p, tau_ps, amplitudes, eta, eps, dt, weight
    )


def simulate_decay(
    p: PScheduleLike,
    amplitudes: jnp.ndarray,
    *,
    modes: Sequence[int] = _D.modes,
    eta: float = _D.eta,
    eps: float = _D.eps,
    dt: float = _D.dt,
    num_steps: int = _D.num_steps,
    num_points: int = _D.num_points,
    record_every: int = _D.record_every,
    energy: str = _D.energy,
    accumulate: str = _D.accumulate,
    tau_energy: str = _D.tau_energy,
    tau_p: float | None = None,
) -> DecayTrace:
    r"""Integrates the paper's locality-modulated error dynamics (its Eq. 5).

    On the grid :math:`x_j = j / M` the error starts at the broadband target
    :math:`e(x, 0) = \sum_k A_k \sin(k \pi x)` (initial predictor zero) and evolves
    as

    .. math::
      \partial_t e = -\eta\, \frac{e}{(E + \epsilon)^{p(t)}}, \qquad
      E(x, t) = c \int_0^t e(x, s)^2\, ds,

    with :math:`c = 4` when ``E`` accumulates the squared gradient of the squared
    error, :math:`(2e)^2` (``energy="gradient"``; ``eta`` absorbs the 2 of the
    gradient itself), :math:`c = 1` for :math:`e^2` (``"error"``). Each step
    accumulates the energy first, like Adam's second moment, then applies the
    exponential integrator (exact at ``p = 0``, where every mode decays at
    ``eta``; it never overshoots):

    .. math::
      E_{n+1} = E_n + w\, e_n^2, \qquad
      e_{n+1} = e_n \exp\!\big(-\eta \Delta t\, (E_{n+1} + \epsilon)^{-p_n}\big),

    :math:`w = c\,\Delta t` (``accumulate="integral"``) or :math:`w = c`
    (``"sum"``). The coefficients on the orthonormal discrete sine basis
    :math:`\phi_k(x_j) = \sqrt{2/M}\sin(k\pi x_j)` are recorded with the effective
    time of the paper's Eq. 8 (reconstructed from its prose),

    .. math::
      \tau(t) = \int_0^t \big(\bar E(s) + \epsilon\big)^{-q(s)}\, ds,

    where :math:`\bar E` is the spatially averaged energy: its early-time
    surrogate :math:`\bar E(s) = s\, c\, \overline{e(x, 0)^2}` (``tau_energy=
    "early"``) or the simulated :math:`\overline{E(x, s)}` (``"mean"``), and
    :math:`q` is ``tau_p``, or :math:`p(s)` itself when ``tau_p`` is ``None``.
    :math:`\tau = t` at ``p = q = 0``.

    Args:
      p: the exponent: a float, an ``optax.Schedule`` of the step count (e.g.
        ``nsf_optax.p_schedule.cosine_tidal``), or that schedule's values as an
        array ``[num_steps]`` (the last value is held); any real values.
      amplitudes: :math:`A_k`, shape ``[K]`` matching ``modes``.
      modes: the sine modes ``k``, integers ``>= 1`` (static).
      eta: step-size constant, ``> 0``.
      eps: energy floor, ``> 0``.
      dt: time step, ``> 0``.
      num_steps: number of steps, ``>= 1`` (static).
      num_points: grid size ``M > max(modes)`` (static).
      record_every: record every this many steps, ``>= 1`` (static).
      energy: ``"gradient"`` or ``"error"``, what ``E`` accumulates.
      accumulate: ``"integral"`` or ``"sum"``.
      tau_energy: ``"early"`` or ``"mean"``, the energy in tau.
      tau_p: the exponent in tau (e.g. a schedule's mean); ``None``: ``p(s)``.

    Returns:
      A :class:`DecayTrace` with ``num_steps // record_every + 1`` records.

    Examples:
      >>> import jax.numpy as jnp
      >>> tr = simulate_decay(0.0, jnp.ones(6), num_steps=100)
      >>> tr.coeffs.shape
      (11, 6)
      >>> bool(jnp.allclose(tr.tau, tr.times, rtol=1e-5))  # tau = t at p = 0
      True

    References:
      Zhang & Liu, arXiv:2509.04713, 2025, Sec. 4.1 (Eqs. 5 and 8).
    """
    if not modes or num_points <= max(modes):
        raise ValueError(
            f"num_points must exceed max(modes)={max(modes, default=0)}, "
            f"got {num_points}."
        )
    if num_steps < 1 or record_every < 1:
        raise ValueError("num_steps and record_every must be >= 1.")
    _choice("energy", energy, tuple(ENERGY))
    _choice("accumulate", accumulate, ACCUMULATE)
    _choice("tau_energy", tau_energy, TAU_ENERGY)
    for name, value in (("eta", eta), ("eps", eps), ("dt", dt)):
        if not isinstance(value, jax.core.Tracer) and not float(value) > 0:
            raise ValueError(f"{name} must be > 0, got {value}.")
    p_values = _per_step(p, num_steps)
    tau_values = p_values[:-1] if tau_p is None else _per_step(tau_p, num_steps)[:-1]
    weight = ENERGY[energy] * (dt if accumulate == "integral" else 1.0)
    coeffs, taus = _integrate(
        p_values,
        tau_values[None],
        amplitudes,
        eta,
        eps,
        dt,
        weight,
        modes=tuple(modes),
        num_points=num_points,
        record_every=record_every,
    )
    num_records = num_steps // record_every
    return DecayTrace(
        times=jnp.arange(num_records + 1, dtype=jnp.float32) * (record_every * dt),
        tau=taus[0, TAU_ENERGY.index(tau_energy)],
        p=p_values[::record_every][: num_records + 1],
        coeffs=coeffs,
    )


def _linfit(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares slopes of the columns of y on x ([n] or [n, K]) and R^2."""
    x = x[:, None] if x.ndim == 1 else x
    xc, yc = x - x.mean(0), y - y.mean(0)
    slope = (xc * yc).sum(0) / (xc * xc).sum(0)
    ss_tot = (yc * yc).sum(0)
    ss_res = ((yc - slope * xc) ** 2).sum(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(ss_tot > 0, 1.0 - ss_res / ss_tot, 1.0)
    return slope, r2


def _window_mask(times: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    keep = (times >= window[0] - 1e-6) & (times <= window[1] + 1e-6)
    if keep.sum() < 3:
        raise ValueError(f"window {window} holds fewer than three records.")
    return keep


def fit_decay(
    trace: DecayTrace, window: tuple[float, float], variable: str = "t"
) -> DecayFit:
    r"""Early-window regression of :math:`\log|c_k|` against t and against tau.

    .. math::
      \log|c_k(t)| \approx b_k - \lambda_k t \quad (t \in \text{window}),

    and the same against :math:`\tau`; :math:`R^2` is each fit's coefficient of
    determination. The window is in units of ``t`` for both.

    Args:
      trace: a :class:`DecayTrace`.
      window: ``(t_start, t_stop)``; records with ``t_start <= t <= t_stop``
        (at least three) enter the fit.
      variable: ``"t"`` or ``"tau"``, what ``DecayFit.lam`` reports.

    Returns:
      A :class:`DecayFit`.

    Examples:
      >>> import jax.numpy as jnp
      >>> t = jnp.linspace(0.0, 2.0, 21)
      >>> tr = DecayTrace(t, 2 * t, 0 * t, jnp.exp(-0.3 * t)[:, None])
      >>> fit = fit_decay(tr, (0.0, 2.0), "tau")
      >>> print(f"{fit.lam_t[0]:.3f} {fit.lam[0]:.3f}")
      0.300 0.150

    References:
      Zhang & Liu, arXiv:2509.04713, 2025, Sec. 4.1.2.
    """
    _choice("variable", variable, ("t", "tau"))
    times = np.asarray(trace.times, np.float64)
    keep = _window_mask(times, window)
    logc = np.log(np.abs(np.asarray(trace.coeffs, np.float64)[keep]) + 1e-30)
    lam_t, r2_t = _linfit(times[keep], logc)
    lam_tau, r2_tau = _linfit(np.asarray(trace.tau, np.float64)[keep], logc)
    return DecayFit(-lam_t, r2_t, -lam_tau, r2_tau, variable)
