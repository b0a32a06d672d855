"""The spectral-bias experiment's model, target and batched training program.

Used by :mod:`nsf_optax.experiments.bias.experiment`; its public names are
re-exported there.
"""

import functools
import itertools
import math
from collections.abc import Sequence
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

import nsf_optax
from nsf_optax.spectral._frequency import frequency_error

__all__ = ["BiasTrace", "init_relu_mlp", "make_sine_target", "relu_mlp_apply"]

Params = list[tuple[jax.Array, jax.Array]]


def _is_pexp_state(x) -> bool:
    return isinstance(x, nsf_optax.ScaleByPexpState)


def init_relu_mlp(key: jax.Array, width: int = 128, depth: int = 3) -> Params:
    r"""A 1-input, 1-output ReLU MLP with PyTorch's default initialisation.

    Every layer's weights and biases are drawn from
    :math:`\mathcal U(-1/\sqrt{n_{\text{in}}}, 1/\sqrt{n_{\text{in}}})`, as
    ``torch.nn.Linear`` does (Rahaman et al. trained PyTorch models): the first
    layer's kinks :math:`-b/w` then spread over the input range.

    Args:
      key: PRNG key.
      width: hidden units per layer, ``>= 1``.
      depth: hidden layers, ``>= 1``.

    Returns:
      A list of ``(w, b)`` pairs, ``w`` of shape ``[n_in, n_out]``, float32.

    Examples:
      >>> import jax
      >>> params = init_relu_mlp(jax.random.key(0), width=8, depth=2)
      >>> [w.shape for w, _ in params]
      [(1, 8), (8, 8), (8, 1)]
    """
    if width < 1 or depth < 1:
        raise ValueError(f"width and depth must be >= 1, got {width} and {depth}.")
    sizes = [1, *[width] * depth, 1]
    keys = jax.random.split(key, 2 * (len(sizes) - 1))
    params = []
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        bound = 1.0 / math.sqrt(n_in)
        w = jax.random.uniform(keys[2 * i], (n_in, n_out), minval=-bound, maxval=bound)
        b = jax.random.uniform(keys[2 * i + 1], (n_out,), minval=-bound, maxval=bound)
        params.append((w, b))
    return params


def relu_mlp_apply(params: Params, x: jax.Array) -> jax.Array:
    """The MLP on points ``x`` in ``[0, 1]`` (shape ``[N]``), fed as ``2x - 1``.

    Centring the input puts the first layer's kinks (spread around 0) inside
    the data range.

    Returns:
      The outputs, shape ``[N]``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> params = init_relu_mlp(jax.random.key(0), width=8, depth=2)
      >>> relu_mlp_apply(params, jnp.linspace(0, 1, 5)).shape
      (5,)
    """
    h = (2.0 * x - 1.0)[:, None]
    for w, b in params[:-1]:
        h = jax.nn.relu(h @ w + b)
    w, b = params[-1]
    return (h @ w + b)[:, 0]


def make_sine_target(
    key: jax.Array, freqs: Sequence[int], num_points: int, amplitude: float = 1.0
) -> tuple[jax.Array, jax.Array]:
    r"""Rahaman et al.'s target on the uniform grid :math:`x_n = n / N`.

    .. math::

      f(x) = A \sum_k \sin(2\pi k x + \varphi_k), \qquad
      \varphi_k \sim \mathcal U[0, 2\pi),

    equal amplitudes :math:`A`, one phase per frequency drawn from ``key``.

    Args:
      key: PRNG key (draws the phases).
      freqs: integer frequencies in ``[1, num_points // 2)``.
      num_points: grid size :math:`N`.
      amplitude: :math:`A`, the amplitude of every sinusoid.

    Returns:
      ``(f, phases)``: ``[N]`` target values and ``[K]`` phases, float32.

    Examples:
      >>> import jax
      >>> f, phases = make_sine_target(jax.random.key(0), [1, 4], 32)
      >>> f.shape, phases.shape
      ((32,), (2,))
    """
    k = np.asarray(freqs)
    if (
        k.ndim != 1
        or k.size == 0
        or np.any(k != np.round(k))
        or np.any(k < 1)
        or np.any(2 * k >= num_points)
    ):
        raise ValueError(
            f"freqs must be integers in [1, num_points // 2), got {freqs!r} for "
            f"num_points={num_points}."
        )
    x = jnp.arange(num_points, dtype=jnp.float32) / num_points
    k = k.astype(np.int64)
    phases = jax.random.uniform(key, (k.size,), maxval=2 * jnp.pi)
    f = amplitude * jnp.sum(
        jnp.sin(2 * jnp.pi * k[:, None] * x + phases[:, None]), axis=0
    )
    return f, phases


class BiasTrace(NamedTuple):
    """What one run of the training program records (``T`` steps, ``P`` probes).

    The probes measure the paper's Eq. 4 bridge at steps ``probe_every, 2 *
    probe_every, ..., T``: with :math:`J_{ki} = \\partial \\hat f_\\theta(k) /
    \\partial\\theta_i` and the gain :math:`\\gamma_i` of the next update
    (:func:`nsf_optax.pexp_gain`, before any ``normalize`` rescale),
    ``kernel_gain[k]`` is :math:`\\sum_i |J_{ki}|^2 \\gamma_i`, ``kernel[k]``
    is :math:`\\sum_i |J_{ki}|^2` and ``log_nu[k]`` is the
    :math:`|J_{ki}|^2`-weighted mean of :math:`\\log_{10} \\hat v_i`.
    """

    errors: (
        jax.Array | np.ndarray
    )  # [T + 1, K] relative error per frequency after t updates
    loss: jax.Array | np.ndarray  # [T + 1] mean squared error after t updates
    kernel_gain: jax.Array | np.ndarray  # [P, K]
    kernel: jax.Array | np.ndarray  # [P, K]
    log_nu: jax.Array | np.ndarray  # [P, K]


def _leaf_terms(e, g, iv, num_k: int):
    """One parameter leaf's share of the Eq. 4 probe's sums (see BiasTrace)."""
    e = e.reshape(num_k, -1)
    log_nu = -jnp.log10(iv.reshape(-1))
    ok = jnp.isfinite(log_nu)
    w = jnp.where(ok, e, 0.0)
    return (
        e @ g.reshape(-1),
        jnp.sum(e, axis=1),
        w @ jnp.where(ok, log_nu, 0.0),
        jnp.sum(w, axis=1),
    )


def _probe(coefficients, num_k: int, params, opt_state, p_fn):
    """The Eq. 4 probe: ``(kernel_gain, kernel, log_nu)``, each ``[K]``."""
    jac = jax.jacrev(coefficients)(params)
    energy = jax.tree.map(lambda j: j[:num_k] ** 2 + j[num_k:] ** 2, jac)
    (state,) = [
        s
        for s in jax.tree.leaves(opt_state, is_leaf=_is_pexp_state)
        if _is_pexp_state(s)
    ]
    # The gain the next update applies, at the next step's p.
    gain = nsf_optax.pexp_gain(opt_state, p=p_fn(state.count))
    nu_hat = optax.tree.bias_correction(state.nu, state.b2, state.count)
    inv_nu = jax.tree.map(lambda v: 1.0 / v, nu_hat)
    parts = [
        _leaf_terms(e, g, iv, num_k)
        for e, g, iv in zip(
            jax.tree.leaves(energy),
            jax.tree.leaves(gain),
            jax.tree.leaves(inv_nu),
            strict=True,
        )
    ]
    kg, kf, lv, w = (sum(p[i] for p in parts) for i in range(4))
    return jnp.asarray(kg), jnp.asarray(kf), jnp.asarray(lv / w)


@functools.lru_cache(maxsize=8)
def make_train_program(
    *,
    freqs: tuple[int, ...],
    num_points: int,
    num_steps: int,
    probe_every: int,
    b1: float,
    b2: float,
    eps: float,
    normalize: Literal["rms"] | None,
):
    """A jitted, vmapped program: full-batch training of a batch of runs.

    Returns ``train(params, target, lr, p_values) -> BiasTrace`` with a leading
    batch axis on every argument: each run has its own init, target, learning
    rate and per-step exponent ``p_values[t]`` (``[T]``), so one compilation
    serves every constant ``p`` and every schedule of one ``normalize``. Cached
    per static configuration, so repeated experiments reuse the compilation.
    """
    if num_steps % probe_every:
        raise ValueError(
            f"num_steps ({num_steps}) must be a multiple of probe_every "
            f"({probe_every})."
        )
    x = jnp.arange(num_points, dtype=jnp.float32) / num_points
    k = np.asarray(freqs)
    num_k = k.size

    def loss_and_outputs(params, f):
        out = relu_mlp_apply(params, x)
        return jnp.mean(jnp.square(out - f)), out

    def coefficients(params):
        c = jnp.fft.rfft(relu_mlp_apply(params, x))[k]
        return jnp.concatenate([c.real, c.imag])

    def run(params, f, lr, p_values):
        def p_fn(count):
            return p_values[jnp.minimum(count, num_steps - 1)]

        tx = nsf_optax.nsf(lr, b1=b1, b2=b2, eps=eps, p=p_fn, normalize=normalize)
        grad_fn = jax.value_and_grad(loss_and_outputs, has_aux=True)

        def step(carry, _):
            params, opt_state = carry
            (loss, out), grads = grad_fn(params, f)
            updates, opt_state = tx.update(grads, opt_state, params)
            errors = frequency_error(out, f, k)
            return (optax.apply_updates(params, updates), opt_state), (errors, loss)

        def segment(carry, _):
            carry, logged = jax.lax.scan(step, carry, None, length=probe_every)
            return carry, (logged, _probe(coefficients, num_k, *carry, p_fn))

        carry = (params, tx.init(params))
        carry, ((errors, loss), probes) = jax.lax.scan(
            segment, carry, None, length=num_steps // probe_every
        )
        last_loss, last_out = loss_and_outputs(carry[0], f)
        errors = jnp.concatenate(
            [errors.reshape(num_steps, num_k), frequency_error(last_out, f, k)[None]]
        )
        loss = jnp.concatenate([loss.reshape(num_steps), last_loss[None]])
        return BiasTrace(errors, loss, *probes)

    return jax.jit(jax.vmap(run))
