"""A float64 NumPy reference of the NSF update, written from the formula.

Complex gradients (complex128 here) keep a complex first moment and a real
second moment of ``|g|**2``, as :func:`optax.scale_by_adam` does.
"""

import numpy as np


def _zeros_like_moments(g):
    g = np.asarray(g)
    first = np.zeros(g.shape, np.result_type(g.dtype, np.float64))
    return first, np.zeros(g.shape, np.float64)


def pexp_updates(grads, *, b1, b2, eps, eps_root, p_of_count, nesterov=False):
    """Yields the Adam-flavoured update for each gradient in ``grads``."""
    m, v = _zeros_like_moments(grads[0])
    for step, g in enumerate(grads, start=1):
        g = np.asarray(g, m.dtype)
        p = float(p_of_count(step - 1))
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * np.abs(g) ** 2
        if nesterov:
            m_hat = b1 * m / (1 - b1 ** (step + 1)) + (1 - b1) * g / (1 - b1**step)
        else:
            m_hat = m / (1 - b1**step)
        v_hat = v / (1 - b2**step)
        with np.errstate(divide="ignore"):
            yield m_hat / ((v_hat + eps_root) ** p + eps)


def pexp_momentum_updates(grads, *, momentum, b2, eps, eps_root, p_of_count):
    """Yields the SGD-flavoured update for each gradient in ``grads``."""
    trace, v = _zeros_like_moments(grads[0])
    for step, g in enumerate(grads, start=1):
        g = np.asarray(g, trace.dtype)
        p = float(p_of_count(step - 1))
        trace = g + momentum * trace
        v = b2 * v + (1 - b2) * np.abs(g) ** 2
        v_hat = v / (1 - b2**step)
        with np.errstate(divide="ignore"):
            yield trace / ((v_hat + eps_root) ** p + eps)
