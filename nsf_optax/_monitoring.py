"""Reading the ``p``-gain back from an optimizer state, for analysis and logging."""

import numbers
from typing import Any

import jax
import jax.numpy as jnp
import optax

from nsf_optax import _checks
from nsf_optax._power import gain_denominator
from nsf_optax._transform import ScaleByPexpMomentumState, ScaleByPexpState

__all__ = ["gain_stats", "pexp_gain"]

_PexpState = ScaleByPexpState | ScaleByPexpMomentumState


def _is_pexp_state(x: Any) -> bool:
    return isinstance(x, _PexpState)


def _is_masked(x: Any) -> bool:
    return isinstance(x, optax.MaskedNode)


def _find_states(opt_state: optax.OptState) -> list[tuple[str, _PexpState]]:
    """Every NSF state inside ``opt_state``, with its path as ``a/b/c``."""
    found = [
        (jax.tree_util.keystr(path, simple=True, separator="/"), leaf)
        for path, leaf in jax.tree_util.tree_leaves_with_path(
            opt_state, is_leaf=_is_pexp_state
        )
        if _is_pexp_state(leaf)
    ]
    if not found:
        raise ValueError(
            "opt_state holds no ScaleByPexpState or ScaleByPexpMomentumState "
            "(the states of nsf_optax's transforms)."
        )
    return found


def _nu_hat(state: _PexpState) -> optax.Updates:
    # Before the first step nu is zero: any positive count gives nu_hat = 0. A
    # static p = 0 keeps no moment (an EmptyState per leaf): read as zero.
    nu = jax.tree.map(
        lambda v: jnp.zeros([], jnp.float32) if isinstance(v, optax.EmptyState) else v,
        state.nu,
        is_leaf=lambda x: isinstance(x, optax.EmptyState),
    )
    return optax.tree.bias_correction(nu, state.b2, jnp.maximum(state.count, 1))


def _gain(state: _PexpState, p: Any) -> optax.Updates:
    p_t = state.p if p is None else p
    if isinstance(p_t, numbers.Real):
        p_t = float(p_t)
    else:
        p_t = jnp.asarray(p_t)  # also unwraps flax.nnx's optimizer variables
        if not _checks.is_traced(p_t):
            # Concrete: a Python float, so that the exact forms apply as in update.
            p_t = float(p_t)
    return jax.tree.map(
        lambda v: 1.0 / gain_denominator(v, p_t, state.eps, state.eps_root),
        _nu_hat(state),
    )


def _merge(named_trees: list[tuple[str, Any]]) -> Any:
    """One tree like the params: each leaf from the state that updates it."""
    flat = [jax.tree.flatten(t, is_leaf=_is_masked) for _, t in named_trees]
    treedef = flat[0][1]
    if any(other != treedef for _, other in flat[1:]):
        raise ValueError(
            "the NSF states in opt_state are for differently structured params ("
            + ", ".join(name for name, _ in named_trees)
            + "); pass each state to pexp_gain on its own."
        )
    leaves = []
    for column in zip(*(leaves for leaves, _ in flat), strict=True):
        owned = [x for x in column if x is not None and not _is_masked(x)]
        if len(owned) > 1:
            raise ValueError(
                "several NSF states in opt_state update the same parameter ("
                + ", ".join(name for name, _ in named_trees)
                + "); pass each state to pexp_gain on its own."
            )
        leaves.append(owned[0] if owned else None)
    return jax.tree.unflatten(treedef, leaves)


def pexp_gain(
    opt_state: optax.OptState, p: jax.typing.ArrayLike | None = None
) -> optax.Updates:
    r"""The per-coordinate ``p``-gain of the last update, read from the state.

    Finds every :class:`ScaleByPexpState` and :class:`ScaleByPexpMomentumState`
    inside ``opt_state`` (a chain, :func:`optax.partition` with one ``p`` per
    group, :func:`optax.masked`, :func:`optax.inject_hyperparams`,
    :class:`optax.MultiSteps` ...) and returns, like the params,

    .. math::

      \gamma = \frac{1}{(\hat v_t + \epsilon_{\text{root}})^{p_t} + \epsilon},

    with :math:`\hat v_t`, :math:`p_t` and the hyperparameters all read from
    the state: the gain the last update applied (the update is ``mhat *
    gamma``, or ``momentum * gamma``, before ``normalize``), to float32
    rounding. Before the first update it is the gain at a zero second moment
    and the first step's ``p``. Leaves that no NSF state updates are ``None``.
    Jittable.

    Args:
      opt_state: the optimizer state, or any pytree holding NSF states.
      p: ``None`` (default) for each state's own ``p``, or a real scalar: the
        gain the same second moment would get at that exponent (for example
        the next step's).

    Returns:
      A pytree like the params of gains, in at least float32.

    Raises:
      ValueError: if ``opt_state`` holds no NSF state, or several that update
        the same parameter (a chain of two NSF transforms: pass each state).

    Examples:
      >>> import jax.numpy as jnp, optax
      >>> import nsf_optax
      >>> params = {"w": jnp.array([0.5, 2.0]), "b": jnp.array([4.0])}
      >>> solver = optax.partition(
      ...     {"w": nsf_optax.nsf_sgd(0.1, p=0.5), "b": nsf_optax.nsf_sgd(0.1, p=1.0)},
      ...     {"w": "w", "b": "b"})
      >>> _, state = solver.update(params, solver.init(params))
      >>> gain = nsf_optax.pexp_gain(state)  # |g| ** -1, then |g| ** -2
      >>> [round(float(x), 4) for x in gain["w"]], round(float(gain["b"][0]), 4)
      ([2.0, 0.5], 0.0625)
    """
    states = _find_states(opt_state)
    if p is not None:
        _checks.real_scalar("p", p, "None or a real scalar")
    return _merge([(name, _gain(state, p)) for name, state in states])


def _stats(state: _PexpState) -> dict[str, jax.Array]:
    gains = jax.tree.leaves(_gain(state, None))
    nu_hat = jax.tree.leaves(_nu_hat(state))
    # Coordinates that never saw a nonzero gradient take no step whatever the
    # gain (mhat = 0 there); their gain, 1/eps or 0, would only swamp the spread.
    # At p = 0 the gain, 1 / (1 + eps), reads no moment (a static p = 0 keeps
    # none): every coordinate counts.
    p_is_zero = jnp.asarray(state.p) == 0
    log_gains = [
        jnp.where((jnp.real(v) > 0) | p_is_zero, jnp.log10(g), jnp.nan).ravel()
        for g, v in zip(gains, nu_hat, strict=True)
    ]
    log_gains = jnp.concatenate([jnp.full([1], jnp.nan), *log_gains])
    return {
        "p": jnp.asarray(state.p, jnp.float32),
        "log10_gain_min": jnp.nanmin(log_gains).astype(jnp.float32),
        "log10_gain_mean": jnp.nanmean(log_gains).astype(jnp.float32),
        "log10_gain_max": jnp.nanmax(log_gains).astype(jnp.float32),
    }


def gain_stats(opt_state: optax.OptState) -> dict[str, jax.Array]:
    r"""The last update's ``p`` and the spread of its ``p``-gain, for logging.

    Summarises :func:`pexp_gain` over the coordinates of each NSF state in
    ``opt_state``. Coordinates whose second moment is still exactly zero (they
    never received a nonzero gradient, so they take no step) are left out; the
    statistics are NaN while no coordinate has. Costs one pass over ``nu``;
    call it at logging steps. Jittable.

    Args:
      opt_state: the optimizer state.

    Returns:
      A flat dict of float32 scalars: ``p`` (the exponent of the last update;
      the first step's before any), ``log10_gain_min``, ``log10_gain_mean`` and
      ``log10_gain_max``. With several NSF states (an :func:`optax.partition`
      with one ``p`` per group) each key is prefixed by the state's path in
      ``opt_state``, as in ``"inner_states/head/inner_state/p"``.

    Raises:
      ValueError: if ``opt_state`` holds no NSF state.

    Examples:
      >>> import jax.numpy as jnp
      >>> import nsf_optax
      >>> solver = nsf_optax.nsf(1e-3, p=-0.5)
      >>> params = jnp.array([1e-2, 1.0])
      >>> _, state = solver.update(params, solver.init(params))
      >>> stats = nsf_optax.gain_stats(state)
      >>> [round(float(stats[k]), 3) for k in ("p", "log10_gain_min", "log10_gain_max")]
      [-0.5, -2.0, 0.0]
    """
    states = _find_states(opt_state)
    if len(states) == 1:
        return _stats(states[0][1])
    return {
        f"{name}/{key}": value
        for name, state in states
        for key, value in _stats(state).items()
    }
