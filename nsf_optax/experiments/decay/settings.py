"""Settings of the paper's 1-D spectral decay experiment (Sec. 4.1.2).

One source of truth: :func:`nsf_optax.experiments.decay.experiment.simulate_decay`
takes its defaults from :class:`DecaySettings`.
"""

import dataclasses
import math

import numpy as np

__all__ = [
    "ACCUMULATE",
    "ENERGY",
    "PAPER_MODES",
    "REGRESSION",
    "TAU_ENERGY",
    "TAU_EXPONENT",
    "T_FIT_SETTINGS",
    "DecaySettings",
]

PAPER_MODES: tuple[int, ...] = (1, 2, 4, 8, 16, 32)

# What the energy accumulates: the squared error e^2, or the squared gradient of
# the squared error, (2e)^2 (the paper's text: "E accumulates squared gradients").
ENERGY: dict[str, float] = {"error": 1.0, "gradient": 4.0}
# How it accumulates: the time integral (each step adds dt * g^2) or the plain sum
# over steps (each step adds g^2, as an optimizer's accumulator does).
ACCUMULATE = ("integral", "sum")
# The regression variable: "t" for every row; "tau_varying": t for constant p,
# tau for time-varying p; "tau" for every row.
REGRESSION = ("t", "tau_varying", "tau")
# The exponent inside tau: p(s) at each step, or the row's mean exponent.
TAU_EXPONENT = ("mean", "instantaneous")
# The spatially averaged energy inside tau: the early-time surrogate (the mean
# energy grows as t * mean_x g(x, 0)^2), or the simulated spatial mean of E.
TAU_ENERGY = ("early", "mean")


def _scalar(name: str, value: object, kinds: str) -> np.ndarray:
    """``value`` as a 0-d numpy array of a dtype kind in ``kinds``, or TypeError."""
    arr = None if isinstance(value, bool) else np.asarray(value)
    if arr is None or arr.ndim != 0 or arr.dtype.kind not in kinds:
        what = "a real number" if "f" in kinds else "an integer"
        raise TypeError(f"{name} must be {what}, got {value!r}.")
    return arr


def _real(name: str, value: object, *, positive: bool = True) -> float:
    v = float(_scalar(name, value, "iuf"))
    if not math.isfinite(v) or (v <= 0 if positive else v < 0):
        bound = "> 0" if positive else ">= 0"
        raise ValueError(f"{name} must be finite and {bound}, got {v}.")
    return v


def _count(name: str, value: object, minimum: int) -> int:
    v = int(_scalar(name, value, "iu"))
    if v < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {v}.")
    return v


def _choice(name: str, value: object, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}.")
    return str(value)


@dataclasses.dataclass(frozen=True)
class DecaySettings:
    r"""Settings and protocol of the 1-D decay experiment.

    The paper's text states the model (Eq. 5), the modes ``k in {1, ..., 32}``,
    ``eta`` through its ``p = 0`` row (every ``lambda_k`` is 0.400), records every
    10 steps, cosine-tidal rows with phase 0, and that ``E`` accumulates squared
    gradients; its numbers for the rest were lost in extraction. The defaults of
    those are the best of the declared search,
    :data:`~nsf_optax.experiments.decay.experiment.SEARCH_GRID` refined by
    :func:`~nsf_optax.experiments.decay.experiment.refine_settings` (``python -m
    nsf_optax.experiments.decay --search``): max ``|diff|`` 0.071 to the paper's
    table.

    Attributes:
      eta: step-size constant, ``> 0``; at ``p = 0`` every mode decays at ``eta``.
      eps: energy floor in the gain :math:`(E + \epsilon)^{-p}`, ``> 0``.
      amplitude: :math:`A_0` in :math:`A_k = A_0 k^{-\alpha}`, ``> 0``.
      amplitude_decay: :math:`\alpha`, ``>= 0`` ("broadband but not flat" for
        ``alpha > 0``).
      modes: the target's sine modes ``k``, distinct integers ``>= 1``.
      dt: time step, ``> 0``.
      num_steps: number of steps, ``>= 1``.
      num_points: grid size ``M > max(modes)``; the grid is ``x_j = j / M``,
        ``j = 1..M-1``, on which the discrete sines are orthonormal.
      record_every: record the coefficients every this many steps, ``>= 1``.
      window: ``(t_start, t_stop)`` of the early-time regression, in units of
        ``t``, ``0 <= t_start < t_stop <= num_steps * dt``, holding at least three
        records.
      tidal_period_steps: period of the cosine-tidal rows, ``>= 1``.
      energy: what ``E`` accumulates, a key of :data:`ENERGY`: ``"gradient"``
        (:math:`(2e)^2`, the text's squared gradients) or ``"error"`` (:math:`e^2`).
      accumulate: ``"integral"`` (:math:`E \mathrel{+}= \Delta t\, g^2`) or
        ``"sum"`` (:math:`E \mathrel{+}= g^2`).
      regression: the variable :math:`\log|c_k|` is regressed on, one of
        :data:`REGRESSION`.
      tau_exponent: the exponent in the effective time, one of
        :data:`TAU_EXPONENT`.
      tau_energy: the spatially averaged energy in the effective time, one of
        :data:`TAU_ENERGY`.

    Examples:
      >>> DecaySettings().eta
      0.4
      >>> DecaySettings(eps=-1.0)
      Traceback (most recent call last):
      ...
      ValueError: eps must be finite and > 0, got -1.0.

    References:
      Zhang & Liu, arXiv:2509.04713, 2025, Sec. 4.1.2.
    """

    eta: float = 0.4
    eps: float = 0.294
    amplitude: float = 1.65
    amplitude_decay: float = 0.281
    modes: tuple[int, ...] = PAPER_MODES
    dt: float = 0.01
    num_steps: int = 550
    num_points: int = 256
    record_every: int = 10
    window: tuple[float, float] = (0.312, 5.5)
    tidal_period_steps: int = 87
    energy: str = "gradient"
    accumulate: str = "integral"
    regression: str = "tau"
    tau_exponent: str = "mean"
    tau_energy: str = "mean"

    def __post_init__(self) -> None:
        def put(name: str, value: object) -> None:
            object.__setattr__(self, name, value)

        for name in ("eta", "eps", "amplitude", "dt"):
            put(name, _real(name, getattr(self, name)))
        alpha = _real("amplitude_decay", self.amplitude_decay, positive=False)
        put("amplitude_decay", alpha)
        modes = tuple(_count("modes", k, 1) for k in self.modes)
        if not modes or len(set(modes)) != len(modes):
            raise ValueError(f"modes must be distinct integers >= 1, got {modes}.")
        put("modes", modes)
        put("num_steps", _count("num_steps", self.num_steps, 1))
        put("num_points", _count("num_points", self.num_points, max(modes) + 1))
        put("record_every", _count("record_every", self.record_every, 1))
        put(
            "tidal_period_steps",
            _count("tidal_period_steps", self.tidal_period_steps, 1),
        )
        if len(self.window) != 2:
            raise ValueError(f"window must be (t_start, t_stop), got {self.window}.")
        t0, t1 = (_real("window", v, positive=False) for v in self.window)
        horizon = self.num_steps * self.dt
        if not (0.0 <= t0 < t1 <= horizon + 1e-9):
            raise ValueError(
                f"window must satisfy 0 <= t_start < t_stop <= num_steps * dt = "
                f"{horizon:g}, got {(t0, t1)}."
            )
        if (t1 - t0) / (self.record_every * self.dt) < 2 - 1e-9:
            raise ValueError(f"window {(t0, t1)} holds fewer than three records.")
        put("window", (t0, t1))
        put("energy", _choice("energy", self.energy, tuple(ENERGY)))
        put("accumulate", _choice("accumulate", self.accumulate, ACCUMULATE))
        put("regression", _choice("regression", self.regression, REGRESSION))
        put("tau_exponent", _choice("tau_exponent", self.tau_exponent, TAU_EXPONENT))
        put("tau_energy", _choice("tau_energy", self.tau_energy, TAU_ENERGY))

    def amplitudes(self) -> np.ndarray:
        r""":math:`A_k = A_0 k^{-\alpha}` for every mode (float64, shape ``[K]``).

        Examples:
          >>> DecaySettings(amplitude=1.0, amplitude_decay=1.0).amplitudes()[:3]
          array([1.  , 0.5 , 0.25])
        """
        k = np.asarray(self.modes, dtype=np.float64)
        return self.amplitude * k ** (-self.amplitude_decay)

    def energy_weight(self) -> float:
        r"""What one step adds to ``E`` per unit :math:`e^2`.

        ``ENERGY[energy]``, times ``dt`` when ``accumulate == "integral"``.

        Examples:
          >>> DecaySettings(energy="gradient", dt=0.01).energy_weight()
          0.04
        """
        scale = ENERGY[self.energy]
        return scale * self.dt if self.accumulate == "integral" else scale


# The settings of the earlier table (every row fitted against t, E the integral of
# e^2, tau from the simulated mean energy): ``--t_fit`` on the command line.
T_FIT_SETTINGS = DecaySettings(
    eps=0.1,
    amplitude=1.0,
    amplitude_decay=0.5,
    num_steps=500,
    window=(0.0, 4.0),
    tidal_period_steps=400,
    energy="error",
    regression="t",
    tau_exponent="instantaneous",
    tau_energy="mean",
)
