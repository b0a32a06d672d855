"""The paper's 1-D spectral decay model (Sec. 4.1) and its early-window table."""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from nsf_optax import p_schedule

__all__ = [
    "PAPER_MODES",
    "PAPER_TABLE",
    "SEARCH_GRID",
    "DecayFit",
    "DecaySettings",
    "DecayTable",
    "DecayTrace",
    "compare_with_paper",
    "decay_table",
    "default_rows",
    "fit_decay",
    "format_table",
    "robustness",
    "search_settings",
    "simulate_decay",
    "spectral_trend",
    "verdicts",
]

PAPER_MODES: tuple[int, ...] = (1, 2, 4, 8, 16, 32)

# The paper's Sec. 4.1.2 table (lambda_k for k = 1, 2, 4, ..., 32). The row labels
# and the tidal ranges were lost in the text extraction; they are reconstructed
# from the prose (see ``default_rows``): five constant p in increasing order, then
# the widest tidal swing, the low-pass swing and the high-pass swing.
PAPER_TABLE: dict[str, tuple[float, ...]] = {
    "p=-0.5": (0.312, 0.283, 0.366, 0.398, 0.352, 0.285),
    "p=-0.25": (0.389, 0.374, 0.391, 0.421, 0.421, 0.544),
    "p=0": (0.400, 0.400, 0.400, 0.400, 0.400, 0.400),
    "p=0.25": (0.369, 0.378, 0.393, 0.349, 0.336, 0.313),
    "p=0.5": (0.358, 0.377, 0.417, 0.323, 0.295, 0.263),
    "tidal[-0.5,0.5]": (0.634, 0.619, 0.592, 0.672, 0.703, 0.762),
    "tidal[0,0.5]": (0.406, 0.413, 0.424, 0.387, 0.377, 0.356),
    "tidal[-0.5,0]": (0.446, 0.426, 0.449, 0.502, 0.502, 0.707),
}

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


def default_rows(settings: DecaySettings) -> dict[str, PScheduleLike]:
    """The paper's eight rows: five constant p and three cosine-tidal ranges.

    The tidal ranges (lost in extraction) are reconstructed from the prose: the
    widest swing ``[-0.5, 0.5]`` (mean 0), a low-pass swing ``[0, 0.5]`` (compared
    with constant 0.25) and a high-pass swing ``[-0.5, 0]`` (compared with -0.25).
    Phase 0: each tidal schedule starts at its maximum.

    References:
      Zhang & Liu, arXiv:2509.04713, 2025, Sec. 4.1.2.
    """
    period = settings.tidal_period_steps
    rows: dict[str, PScheduleLike] = {
        f"p={v:g}": float(v) for v in (-0.5, -0.25, 0.0, 0.25, 0.5)
    }
    for lo, hi in ((-0.5, 0.5), (0.0, 0.5), (-0.5, 0.0)):
        rows[f"tidal[{lo:g},{hi:g}]"] = p_schedule.cosine_tidal(lo, hi, period)
    return rows


def decay_table(
    settings: DecaySettings = DecaySettings(),
    rows: Mapping[str, PScheduleLike] | None = None,
) -> DecayTable:
    """Runs the simulator for each row and fits the early window.

    Args:
      settings: the experiment's :class:`DecaySettings`.
      rows: ``{label: p}`` with ``p`` a float or a schedule; defaults to
        :func:`default_rows`.

    Returns:
      A :class:`DecayTable` (print it with :func:`format_table`).

    References:
      Zhang & Liu, arXiv:2509.04713, 2025, Sec. 4.1.2.
    """
    rows = default_rows(settings) if rows is None else rows
    amplitudes = jnp.asarray(settings.amplitudes(), jnp.float32)
    fits, traces = {}, {}
    counts = jnp.arange(settings.num_steps)
    for label, p in rows.items():
        # Schedules are evaluated ahead into per-step arrays, so every row (and
        # every setting of the same shape) shares one compilation.
        p_values = jax.vmap(p)(counts) if callable(p) else jnp.float32(p)
        p_values = jnp.broadcast_to(jnp.asarray(p_values, jnp.float32), counts.shape)
        trace = _simulate_jit(
            p_values,
            amplitudes,
            modes=tuple(settings.modes),
            eta=settings.eta,
            eps=settings.eps,
            dt=settings.dt,
            num_steps=settings.num_steps,
            num_points=settings.num_points,
            record_every=settings.record_every,
        )
        fits[label] = fit_decay(trace, settings.window)
        traces[label] = trace
    return DecayTable(
        modes=tuple(settings.modes), rows=fits, settings=settings, traces=traces
    )


def compare_with_paper(table: DecayTable) -> dict[str, float]:
    """Max and mean absolute difference of ``lam_t`` to :data:`PAPER_TABLE`.

    Only rows whose label appears in :data:`PAPER_TABLE` are compared, and only
    when the table's modes are :data:`PAPER_MODES`.

    Returns:
      ``{"max_abs_diff", "mean_abs_diff", "rows_compared"}``.

    References:
      Zhang & Liu, arXiv:2509.04713, 2025, Sec. 4.1.2.
    """
    if tuple(table.modes) != PAPER_MODES:
        raise ValueError(f"modes must be {PAPER_MODES} to compare with the paper.")
    diffs = [
        np.abs(fit.lam_t - np.asarray(PAPER_TABLE[label]))
        for label, fit in table.rows.items()
        if label in PAPER_TABLE
    ]
    if not diffs:
        raise ValueError("no row of the table is in PAPER_TABLE.")
    d = np.concatenate(diffs)
    return {
        "max_abs_diff": float(d.max()),
        "mean_abs_diff": float(d.mean()),
        "rows_compared": len(diffs),
    }


def format_table(table: DecayTable, *, paper: bool = True) -> str:
    """The table as text: lambda_k (R^2) against t and tau, paper rows beside."""
    head = "row".ljust(17) + "".join(f"k={k:<13d}" for k in table.modes)
    lines = [head]
    for label, fit in table.rows.items():
        pairs = zip(fit.lam_t, fit.r2_t, strict=True)
        cells = [f"{lt:.3f} ({r:.2f})  " for lt, r in pairs]
        lines.append(label.ljust(17) + "".join(c.ljust(15) for c in cells))
        pairs = zip(fit.lam_tau, fit.r2_tau, strict=True)
        cells = [f"{lt:.3f} ({r:.2f})  " for lt, r in pairs]
        lines.append("  vs tau".ljust(17) + "".join(c.ljust(15) for c in cells))
        if paper and label in PAPER_TABLE and tuple(table.modes) == PAPER_MODES:
            cells = [f"{v:.3f}" for v in PAPER_TABLE[label]]
            lines.append("  paper".ljust(17) + "".join(c.ljust(15) for c in cells))
    return "\n".join(lines)


SEARCH_GRID: dict[str, tuple[object, ...]] = {
    "eps": (1e-3, 1e-2, 1e-1, 1.0),
    "amplitude": (0.5, 1.0, 2.0, 4.0, 8.0),
    "amplitude_decay": (0.0, 0.5, 1.0),
    "tidal_period_steps": (100, 200, 400, 800),
    "window": ((0.0, 1.0), (0.0, 2.0), (0.0, 4.0)),
}

# The constant-p rows of ``default_rows`` and their p.
_CONSTANT_P = {f"p={v:g}": v for v in (-0.5, -0.25, 0.0, 0.25, 0.5)}

# Tidal rows and the constant row with the same mean p.
_TIDAL_BASELINES = {
    "tidal[-0.5,0.5]": "p=0",
    "tidal[0,0.5]": "p=0.25",
    "tidal[-0.5,0]": "p=-0.25",
}


def spectral_trend(fit: DecayFit, modes: Sequence[int]) -> float:
    """Least-squares slope of ``lam_t`` against ``log2 k`` (``< 0``: low-pass)."""
    slope, _ = _linfit(np.log2(np.asarray(modes, np.float64)), fit.lam_t)
    return slope


def verdicts(table: DecayTable) -> dict[str, object]:
    """Checks the paper's claims on a table with the :func:`default_rows` labels.

    * ``p0_flat``: at ``p = 0`` every ``lam_t`` equals ``eta`` within 1e-3.
    * ``sign_sets_filter``: the trend of ``lam_t`` against ``log2 k`` is negative
      (low-pass) for both positive constant p and positive for both negative ones.
    * ``tidal_faster``: each tidal row's mean ``lam_t`` exceeds that of the
      constant row with the same mean p.

    Returns:
      The three booleans, the per-row trends and mean ``lam_t``.

    References:
      Zhang & Liu, arXiv:2509.04713, 2025, Sec. 4.1.2.
    """
    trends = {k: spectral_trend(f, table.modes) for k, f in table.rows.items()}
    means = {k: float(np.mean(f.lam_t)) for k, f in table.rows.items()}
    eta = table.settings.eta
    return {
        "p0_flat": bool(np.all(np.abs(table.rows["p=0"].lam_t - eta) < 1e-3)),
        "sign_sets_filter": bool(
            trends["p=0.25"] < 0
            and trends["p=0.5"] < 0
            and trends["p=-0.25"] > 0
            and trends["p=-0.5"] > 0
        ),
        "tidal_faster": bool(
            all(means[t] > means[c] for t, c in _TIDAL_BASELINES.items())
        ),
        "trend": trends,
        "mean_lambda": means,
    }


def robustness(
    grid: Mapping[str, Iterable[object]],
    base: DecaySettings = DecaySettings(),
) -> dict[str, object]:
    """Fraction of the settings in ``grid`` for which each verdict holds.

    Args:
      grid: ``{field: values}`` over :class:`DecaySettings` fields.
      base: settings for the fields not in ``grid``.

    Returns:
      ``{"settings": n, "p0_flat": frac, "sign_sets_filter": frac,
      "tidal_faster": frac, "sign_by_row": {label: frac},
      "failures": [{field: value, ..., "failed": [...]}]}``; ``sign_by_row``
      is, per constant ``p != 0`` row, the fraction with the trend's sign
      opposite to p's (low-pass for p > 0, high-pass for p < 0).

    References:
      Zhang & Liu, arXiv:2509.04713, 2025, Sec. 4.1.2.
    """
    keys = list(grid)
    names = ("p0_flat", "sign_sets_filter", "tidal_faster")
    counts = dict.fromkeys(names, 0)
    failures = []
    sign_ok: dict[str, int] = {}
    n = 0
    for values in itertools.product(*(list(grid[k]) for k in keys)):
        changes = dict(zip(keys, values, strict=True))
        v = verdicts(decay_table(dataclasses.replace(base, **changes)))
        n += 1
        for key in names:
            counts[key] += int(v[key])
        for label, trend in v["trend"].items():
            p = _CONSTANT_P.get(label, 0.0)
            if p != 0.0:
                sign_ok[label] = sign_ok.get(label, 0) + int(trend * p < 0)
        failed = [key for key in names if not v[key]]
        if failed:
            failures.append({**changes, "failed": failed})
    return {
        "settings": n,
        **{k: c / n for k, c in counts.items()},
        "sign_by_row": {k: c / n for k, c in sign_ok.items()},
        "failures": failures,
    }


def search_settings(
    grid: Mapping[str, Iterable[object]],
    base: DecaySettings = DecaySettings(),
) -> list[tuple[DecaySettings, dict[str, float]]]:
    """Grid search of settings against :data:`PAPER_TABLE`, best mean diff first.

    Args:
      grid: ``{field: values}`` over :class:`DecaySettings` fields.
      base: settings for the fields not in ``grid``.

    Returns:
      ``[(settings, compare_with_paper(...)), ...]`` sorted by mean abs diff.

    References:
      Zhang & Liu, arXiv:2509.04713, 2025, Sec. 4.1.2.
    """
    keys = list(grid)
    results = []
    for values in itertools.product(*(list(grid[k]) for k in keys)):
        settings = dataclasses.replace(base, **dict(zip(keys, values, strict=True)))
        score = compare_with_paper(decay_table(settings))
        if math.isfinite(score["mean_abs_diff"]):
            results.append((settings, score))
    results.sort(key=lambda r: r[1]["mean_abs_diff"])
    return results
