"""The 2-D "angle" data and the 2-layer MLP of the decision-boundary demo.

Used by :mod:`nsf_optax.experiments.boundary.experiment` (the paper's Sec. 4.2.2); its
public
names are re-exported there.
"""

import math

import jax
import jax.numpy as jnp
import optax

import nsf_optax

__all__ = ["init_mlp", "make_angle_data", "mlp_apply", "update_norms"]

# Class 1's angle: a vertex and two branches (direction, length). Class 0 is its
# point reflection through the origin, so the two angles interlock: each near
# branch reaches towards the other class's far branch (the "hard" region).
_VERTEX = (-0.5, 0.2)
_FAR = ((1.0, 0.0), 1.5)
_NEAR = ((0.0, -1.0), 0.3)


def make_angle_data(
    key: jax.Array, n: int, *, noise: float = 0.03, near_fraction: float = 0.2
) -> tuple[jax.Array, jax.Array, jax.Array]:
    r"""Two interlocking "angle" classes with a far and a near branch each.

    Class 1 is an angle with vertex :math:`(-0.5, 0.2)`: a far branch of length
    1.5 along :math:`+x` and a near branch of length 0.3 along :math:`-y`; class
    0 is its reflection through the origin. Each class puts ``1 - near_fraction``
    of its points on the far branch and ``near_fraction`` on the near branch
    (positions uniform along the branch, plus isotropic Gaussian noise). The near
    branches end 0.1 from the other class: small, hard regions.

    Args:
      key: PRNG key.
      n: number of points, even (exactly ``n / 2`` per class).
      noise: Gaussian std, ``>= 0``.
      near_fraction: in ``[0, 1]``.

    Returns:
      ``(x, y, near)``: points ``[n, 2]`` float32, labels ``[n]`` int32 (first
      half 0, second half 1), and ``[n]`` bool marking near-branch points.

    Examples:
      >>> import jax
      >>> x, y, near = make_angle_data(jax.random.key(0), 10)
      >>> x.shape, int(y.sum()), int(near.sum())
      ((10, 2), 5, 2)

    References:
      Zhang & Liu, arXiv:2509.04713, 2025, Sec. 4.2.2.
    """
    if n < 2 or n % 2:
        raise ValueError(f"n must be an even integer >= 2, got {n}.")
    if not 0.0 <= near_fraction <= 1.0:
        raise ValueError(f"near_fraction must be in [0, 1], got {near_fraction}.")
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise}.")
    half = n // 2
    n_near = round(near_fraction * half)
    k_pos, k_noise = jax.random.split(key)
    along = jax.random.uniform(k_pos, (2, half))
    near = jnp.arange(half) < n_near
    direction = jnp.where(near[:, None], jnp.asarray(_NEAR[0]), jnp.asarray(_FAR[0]))
    length = jnp.where(near, _NEAR[1], _FAR[1])
    pts = []
    for c in range(2):
        p = jnp.asarray(_VERTEX) + (along[c] * length)[:, None] * direction
        pts.append(p if c == 1 else -p)
    x = jnp.concatenate(pts) + noise * jax.random.normal(k_noise, (n, 2))
    y = jnp.concatenate([jnp.zeros(half, jnp.int32), jnp.ones(half, jnp.int32)])
    return x.astype(jnp.float32), y, jnp.concatenate([near, near])


def init_mlp(key: jax.Array, hidden: int = 32) -> dict[str, jax.Array]:
    """He-initialised 2-layer MLP ``2 -> hidden (ReLU) -> 2`` (a dict of arrays)."""
    k1, k2 = jax.random.split(key)
    return {
        "w1": jax.random.normal(k1, (2, hidden)) * math.sqrt(2.0 / 2),
        "b1": jnp.zeros(hidden),
        "w2": jax.random.normal(k2, (hidden, 2)) * math.sqrt(2.0 / hidden),
        "b2": jnp.zeros(2),
    }


def mlp_apply(params: dict[str, jax.Array], x: jax.Array) -> jax.Array:
    """Logits ``[n, 2]`` of the MLP for points ``x`` of shape ``[n, 2]``."""
    h = jax.nn.relu(x @ params["w1"] + params["b1"])
    return h @ params["w2"] + params["b2"]


def _per_example_loss(params, x, y):
    logits = mlp_apply(params, x)
    return optax.softmax_cross_entropy_with_integer_labels(logits, y)


def _loss(params, x, y, reduction):
    losses = _per_example_loss(params, x, y)
    return jnp.sum(losses) if reduction == "sum" else jnp.mean(losses)


def update_norms(
    params: dict[str, jax.Array],
    opt_state: optax.OptState,
    x: jax.Array,
    y: jax.Array,
    p: float | jax.Array,
    *,
    b2: float = 0.999,
    eps: float = 1e-8,
) -> jax.Array:
    r"""Per-example effective update norms :math:`\|\gamma \odot \nabla\ell_i\|`.

    :math:`\gamma = 1 / (\hat v^{p} + \epsilon)` is the p-gain the optimizer's
    next step applies (from the :class:`nsf_optax.ScaleByPexpState` inside
    ``opt_state``), so the norm says how far example ``i`` alone would move the
    parameters: where the optimizer allocates its update.

    Args:
      params: MLP parameters.
      opt_state: state of :func:`nsf_optax.nsf` (after at least one step).
      x: points ``[n, 2]``.
      y: labels ``[n]``.
      p: the exponent in force at the next step.
      b2: the optimizer's ``b2``.
      eps: the optimizer's ``eps``.

    Returns:
      ``[n]`` norms.

    References:
      Zhang & Liu, arXiv:2509.04713, 2025, Sec. 4.2.2.
    """
    del b2, eps  # pexp_gain reads them from opt_state
    gains = nsf_optax.pexp_gain(opt_state, p=jnp.asarray(p, jnp.float32))

    def loss_i(params, xi, yi):
        return _per_example_loss(params, xi[None], yi[None])[0]

    grads = jax.vmap(jax.grad(loss_i), in_axes=(None, 0, 0))(params, x, y)
    sq = jax.tree.map(
        lambda g, gain: jnp.sum((g * gain) ** 2, axis=tuple(range(1, g.ndim))),
        grads,
        gains,
    )
    return jnp.sqrt(sum(jax.tree.leaves(sq)))
