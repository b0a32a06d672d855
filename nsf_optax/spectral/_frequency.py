"""Frequency-resolved convergence: how fast a model learns each frequency.

The instrument of the spectral-bias literature (Rahaman et al., 2019; Xu et al.,
2019): sample the model and the target on a uniform grid, take the discrete
Fourier transform of the residual, and follow the error in each of the target's
frequencies over training.
"""

import numbers

import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import ArrayLike

__all__ = ["frequency_error", "time_to_learn"]


def _check_freqs(freqs: ArrayLike, num_points: int) -> np.ndarray:
    try:
        k = np.asarray(freqs)
    except jax.errors.TracerArrayConversionError as e:
        raise TypeError("freqs must be concrete (static), not a traced array.") from e
    if k.ndim != 1 or k.size == 0:
        raise ValueError(
            f"freqs must be a non-empty 1-D sequence, got shape {k.shape}."
        )
    if not np.issubdtype(k.dtype, np.integer):
        if not np.all(np.isfinite(k)) or np.any(k != np.round(k)):
            raise ValueError(f"freqs must be integers, got {freqs!r}.")
        k = k.astype(np.int64)
    if np.any(k < 0) or np.any(k > num_points // 2):
        raise ValueError(
            f"freqs must lie in [0, num_points // 2] = [0, {num_points // 2}] "
            f"(Nyquist for {num_points} grid points), got {freqs!r}."
        )
    return k


def frequency_error(
    outputs: ArrayLike, target: ArrayLike, freqs: ArrayLike
) -> jax.Array:
    r"""Relative error of a model's output in each of the target's frequencies.

    With :math:`N` samples on the uniform grid :math:`x_n = n / N`,
    :math:`n = 0, \dots, N - 1` (one period of the window, the right end
    excluded), and the discrete Fourier transform
    :math:`\hat g(k) = \sum_n g(x_n)\, e^{-2\pi i k n / N}`:

    .. math::

      \Delta_k = \frac{|\hat f_\theta(k) - \hat f(k)|}{|\hat f(k)|} .

    :math:`\Delta_k = 1` when the model has none of frequency :math:`k` (an
    untrained model near zero), 0 when it matches the target there;
    a component of the right amplitude but a phase off by :math:`\phi` gives
    :math:`2|\sin(\phi / 2)|`. A sinusoid with an integer number :math:`k` of
    periods over the window falls exactly on bin :math:`k`; sampling with the
    right end included (``linspace(0, 1, N)``) leaks energy between bins.

    Args:
      outputs: the model on the grid, shape ``[..., N]`` (for example
        ``[steps, N]`` or ``[seeds, steps, N]``); real.
      target: the target on the same grid, shape ``[N]`` or broadcastable
        against ``outputs``; real.
      freqs: the frequencies :math:`k` to report, integers in ``[0, N // 2]``,
        static (not traced). The target should have energy at each: where
        :math:`\hat f(k) = 0` the ratio is ``inf`` (or ``nan`` if the residual
        is zero too).

    Returns:
      :math:`\Delta_k`, shape ``[..., len(freqs)]``, in the promoted float dtype
      of the inputs (at least float32).

    Raises:
      ValueError: if the last axes differ or a frequency is out of range.

    Examples:
      >>> import jax.numpy as jnp
      >>> from nsf_optax.spectral import frequency_error
      >>> x = jnp.arange(64) / 64
      >>> target = jnp.sin(2 * jnp.pi * 2 * x) + jnp.sin(2 * jnp.pi * 8 * x)
      >>> half_fit = jnp.sin(2 * jnp.pi * 2 * x) + 0.5 * jnp.sin(2 * jnp.pi * 8 * x)
      >>> [round(float(e), 4) for e in frequency_error(half_fit, target, [2, 8])]
      [0.0, 0.5]

    References:
      Rahaman et al., `On the Spectral Bias of Neural Networks
      <https://arxiv.org/abs/1806.08734>`_, ICML 2019.

      Xu et al., `Frequency Principle: Fourier Analysis Sheds Light on Deep
      Neural Networks <https://arxiv.org/abs/1901.06523>`_, 2019.
    """
    outputs = jnp.asarray(outputs)
    target = jnp.asarray(target)
    if outputs.ndim == 0 or target.ndim == 0:
        raise ValueError("outputs and target must have a grid axis (the last axis).")
    n = outputs.shape[-1]
    if target.shape[-1] != n:
        raise ValueError(
            f"outputs and target must share the last (grid) axis, got "
            f"{outputs.shape} and {target.shape}."
        )
    k = _check_freqs(freqs, n)
    dtype = jnp.promote_types(jnp.result_type(outputs, target), jnp.float32)
    outputs, target = outputs.astype(dtype), target.astype(dtype)
    residual = jnp.fft.rfft(outputs - target, axis=-1)[..., k]
    reference = jnp.fft.rfft(target, axis=-1)[..., k]
    return (jnp.abs(residual) / jnp.abs(reference)).astype(dtype)


def time_to_learn(
    errors: ArrayLike, steps: ArrayLike, threshold: float = 0.1
) -> jax.Array:
    r"""The first step at which each frequency's relative error is below a threshold.

    .. math::

      t_k = \min\{\, t_j : \Delta_k(t_j) < \tau \,\} ,

    the first crossing (a later rise above :math:`\tau` does not reset it),
    ``nan`` where the error never gets below :math:`\tau`.

    Args:
      errors: relative errors :math:`\Delta_k(t_j)` (for example from
        :func:`frequency_error`), shape ``[..., T, K]``: ``T`` logged steps,
        ``K`` frequencies.
      steps: the ``T`` logged steps, increasing, shape ``[T]``.
      threshold: :math:`\tau > 0`.

    Returns:
      :math:`t_k`, shape ``[..., K]``, float32 (or wider if the inputs are),
      ``nan`` where never reached.

    Raises:
      ValueError: if ``threshold`` is not positive and finite, or ``steps`` does
        not match the ``T`` axis of ``errors``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from nsf_optax.spectral import time_to_learn
      >>> steps = jnp.arange(0, 500, 100)
      >>> errors = jnp.exp(-jnp.outer(steps, jnp.array([0.02, 0.006, 0.0])))
      >>> time_to_learn(errors, steps, threshold=0.1)
      Array([200., 400.,  nan], dtype=float32)

    References:
      Rahaman et al., `On the Spectral Bias of Neural Networks
      <https://arxiv.org/abs/1806.08734>`_, ICML 2019.
    """
    if (
        not isinstance(threshold, numbers.Real)
        or isinstance(threshold, bool)
        or not np.isfinite(threshold)
        or threshold <= 0
    ):
        raise ValueError(
            f"threshold must be a positive finite real, got {threshold!r}."
        )
    errors = jnp.asarray(errors)
    steps = jnp.asarray(steps)
    if errors.ndim < 2 or steps.ndim != 1 or steps.shape[0] != errors.shape[-2]:
        raise ValueError(
            "errors must have shape [..., T, K] and steps shape [T], got "
            f"{errors.shape} and {steps.shape}."
        )
    dtype = jnp.promote_types(jnp.result_type(errors, steps), jnp.float32)
    below = errors < threshold  # nan compares False: a diverged run never "learns"
    first = jnp.argmax(below, axis=-2)
    return jnp.where(
        jnp.any(below, axis=-2), steps.astype(dtype)[first], jnp.asarray(jnp.nan, dtype)
    )
