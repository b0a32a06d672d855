"""The density demo's model: the target, the sample density, the update and Eq. 14."""

import jax
import jax.numpy as jnp

from nsf_optax.experiments.density.settings import DensityRun

__all__ = ["density_target", "eq14_prediction", "sample_density", "simulate_density"]


def density_target(x: jnp.ndarray) -> jnp.ndarray:
    r"""The demo's target :math:`f(x) = \sin(2\pi x) + \tfrac12\cos(6\pi x)`.

    The paper's target was lost in extraction; this one mixes a low and a higher
    frequency and does not vanish at the right boundary, where fRMSE is measured.
    """
    return jnp.sin(2 * jnp.pi * x) + 0.5 * jnp.cos(6 * jnp.pi * x)


def sample_density(x: jnp.ndarray, slope: float) -> jnp.ndarray:
    r"""Sample density :math:`\rho(x) = 1 + s\,(x - \tfrac12)`.

    Positive on :math:`[0, 1]` for :math:`|s| < 2`.
    """
    return 1.0 + slope * (x - 0.5)


def simulate_density(
    p: float,
    slope: float,
    *,
    lr: float = 0.01,
    eps: float = 1e-8,
    num_steps: int = 2000,
    num_points: int = 512,
    region: tuple[float, float] = (0.9, 1.0),
    checkpoints: tuple[int, ...] = (10, 100, 500, 2000),
    early_step: int = 20,
) -> DensityRun:
    r"""Iterates the unified update on the 1-D weighted regression (no EMA).

    With predictor :math:`u` (initially 0), error :math:`e = u - f`, weighted
    loss :math:`\tfrac12\int \rho\, e^2`, local gradient :math:`g = \rho e` and
    accumulated squared gradient :math:`G`:

    .. math::
      G_{n+1} = G_n + g_n^2, \qquad
      e_{n+1} = e_n - \eta\, \frac{g_n}{(G_{n+1} + \epsilon)^{p}} .

    fRMSE on the region :math:`R` is
    :math:`\sqrt{\textstyle\sum_R e^2 / \sum_R f^2}`.

    Args:
      p: the exponent (any real; ``p < 0`` amplifies large-gradient points).
      slope: density slope ``s``, ``|s| < 2``.
      lr: learning rate :math:`\eta > 0`.
      eps: :math:`\epsilon > 0`.
      num_steps: iterations (static).
      num_points: grid size (static).
      region: ``(lo, hi)`` of the fRMSE region.
      checkpoints: steps to snapshot, each in ``[0, num_steps]`` (static).
      early_step: step whose error is returned for the Eq. 14 check (static).

    Returns:
      A :class:`DensityRun`.

    References:
      Zhang & Liu, arXiv:2509.04713, 2025, Sec. 4.2.1.
    """
    x = (jnp.arange(num_points, dtype=jnp.float32) + 0.5) / num_points
    f = density_target(x)
    rho = sample_density(x, slope)
    mask = (x >= region[0]) & (x <= region[1])
    norm = jnp.sqrt(jnp.sum(jnp.where(mask, f**2, 0.0)))

    def frmse(e):
        return jnp.sqrt(jnp.sum(jnp.where(mask, e**2, 0.0))) / norm

    def step(carry, _):
        e, acc = carry
        g = rho * e
        acc = acc + g**2
        e = e - lr * g / (acc + eps) ** p
        return (e, acc), (frmse(e), e)

    e0 = -f
    _, (curve, errors) = jax.lax.scan(
        step, (e0, jnp.zeros_like(e0)), None, length=num_steps
    )
    errors = jnp.concatenate([e0[None], errors])
    idx = jnp.asarray(checkpoints)
    return DensityRun(
        x=x,
        frmse=jnp.concatenate([frmse(e0)[None], curve]),
        snapshots=f[None] + errors[idx],
        error_early=errors[early_step],
    )


def eq14_prediction(
    x: jnp.ndarray, step: float, p: float, slope: float, lr: float
) -> jnp.ndarray:
    r"""The paper's closed-form early-time error (its Eq. 14), for ``p < 1``.

    Early on :math:`G(x, t) \approx \rho^2 e_0^2\, t`, so
    :math:`\partial_t e = -\eta \rho e / (\rho^2 e_0^2 t)^{p}` integrates to

    .. math::
      e(x, t) \approx e_0(x)\, \exp\!\Big(-\eta\,
        \frac{\rho(x)^{1-2p}\, |e_0(x)|^{-2p}}{1 - p}\; t^{1-p}\Big),

    with :math:`t` the step count. At :math:`p = 1/2` the density drops out
    (:math:`\rho^0`); at :math:`p = 0` the rate is linear in :math:`\rho`; for
    :math:`p < 0` the factor :math:`\rho^{1-2p}` amplifies the density.

    Args:
      x: points in ``[0, 1]``.
      step: the step count :math:`t > 0`.
      p: the exponent, ``p < 1``.
      slope: density slope ``s``.
      lr: learning rate :math:`\eta`.

    Returns:
      The predicted error at ``x``.

    References:
      Zhang & Liu, arXiv:2509.04713, 2025, Eq. 14.
    """
    if p >= 1:
        raise ValueError(f"p must be < 1 for Eq. 14, got {p}.")
    e0 = -density_target(x)
    rho = sample_density(x, slope)
    rate = rho ** (1 - 2 * p) * jnp.abs(e0) ** (-2 * p) / (1 - p)
    return e0 * jnp.exp(-lr * rate * step ** (1 - p))
