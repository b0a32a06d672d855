"""A float64 NumPy reference of the NSF update, written from the formula."""

import numpy as np


def pexp_updates(grads, *, b1, b2, eps, eps_root, p_of_count, nesterov=False):
    """Yields the Adam-flavoured update for each gradient in ``grads``."""
    m = np.zeros_like(grads[0], np.float64)
    v = np.zeros_like(grads[0], np.float64)
    for step, g in enumerate(grads, start=1):
        g = np.asarray(g, np.float64)
        p = float(p_of_count(step - 1))
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        if nesterov:
            m_hat = b1 * m / (1 - b1 ** (step + 1)) + (1 - b1) * g / (1 - b1**step)
        else:
            m_hat = m / (1 - b1**step)
        v_hat = v / (1 - b2**step)
        with np.errstate(divide="ignore"):
            yield m_hat / ((v_hat + eps_root) ** p + eps)


def pexp_momentum_updates(grads, *, momentum, b2, eps, eps_root, p_of_count):
    """Yields the SGD-flavoured update for each gradient in ``grads``."""
    trace = np.zeros_like(grads[0], np.float64)
    v = np.zeros_like(grads[0], np.float64)
    for step, g in enumerate(grads, start=1):
        g = np.asarray(g, np.float64)
        p = float(p_of_count(step - 1))
        trace = g + momentum * trace
        v = b2 * v + (1 - b2) * g**2
        v_hat = v / (1 - b2**step)
        with np.errstate(divide="ignore"):
            yield trace / ((v_hat + eps_root) ** p + eps)
