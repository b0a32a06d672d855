"""The paper's 2-D "angle" decision-boundary demonstration (Sec. 4.2.2)."""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

import nsf_optax
from nsf_optax import p_schedule

__all__ = [
    "BoundaryResult",
    "BoundarySettings",
    "BoundarySnapshot",
    "boundary_demo",
    "init_mlp",
    "make_angle_data",
    "mean_ci",
    "mlp_apply",
    "update_norms",
]

# Class 1's angle: a vertex and two branches (direction, length). Class 0 is its
# point reflection through the origin, so the two angles interlock: each near
# branch reaches towards the other class's far branch (the "hard" region).
_VERTEX = (-0.5, 0.2)
_FAR = ((1.0, 0.0), 1.5)
_NEAR = ((0.0, -1.0), 0.3)


@dataclasses.dataclass(frozen=True)
class BoundarySettings:
    """Settings of the 2-D demo (the paper's values were lost; ours).

    Attributes:
      n_train: training points (half per class).
      n_test: test points (half per class).
      noise: std of the Gaussian jitter around each branch.
      near_fraction: share of each class on its near branch (paper: 20 %).
      hidden: hidden width of the 2-layer ReLU MLP (paper: 32).
      lr: the learning rate, the same for every p.
      b1: first-moment decay of :func:`nsf_optax.nsf`.
      b2: second-moment decay of :func:`nsf_optax.nsf`.
      eps: :func:`nsf_optax.nsf`'s eps.
      normalize: passed to :func:`nsf_optax.nsf` (``"rms"``: p changes only the
        relative weighting, not the step size).
      loss_reduction: ``"mean"`` or ``"sum"`` cross-entropy over the batch; the
        sum multiplies every gradient by ``n_train``, which moves the balance
        between p values (the gain ``vhat**-p`` depends on the gradients' scale).
      num_steps: full-batch steps.
      eval_every: evaluation period in steps.
      seeds: one run per seed (data, init); every p shares the seeds.
      ps: constant exponents compared.
      tidal: ``(min_value, max_value, period_steps)`` of the cosine-tidal row.
      target_accuracy: test accuracy that counts as "aligned".
      early_steps: the early window; rows are ranked by their mean test
        accuracy over evaluations at steps ``1..early_steps`` (an area under the
        early accuracy curve: higher means the boundary aligned earlier).
      checkpoints: steps of the boundary snapshots (seed ``seeds[0]``).
      grid_size: resolution of the snapshot grid on ``[-1.3, 1.3]^2``.
    """

    n_train: int = 400
    n_test: int = 2000
    noise: float = 0.03
    near_fraction: float = 0.2
    hidden: int = 32
    lr: float = 1e-2
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8
    normalize: Literal["rms"] | None = None
    loss_reduction: Literal["mean", "sum"] = "mean"
    num_steps: int = 1000
    eval_every: int = 10
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    ps: tuple[float, ...] = (-0.5, -0.25, 0.0, 0.25, 0.5)
    tidal: tuple[float, float, int] = (-0.5, 0.5, 200)
    target_accuracy: float = 0.98
    early_steps: int = 200
    checkpoints: tuple[int, ...] = (10, 50, 200, 1000)
    grid_size: int = 80

    def rows(self) -> dict[str, optax.Schedule]:
        """``{label: p schedule}``: the constant p rows, then the tidal row."""
        rows = {f"p={p:g}": p_schedule.constant(p) for p in self.ps}
        lo, hi, period = self.tidal
        rows[f"tidal[{lo:g},{hi:g}]"] = p_schedule.cosine_tidal(lo, hi, period)
        return rows


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
    gains = nsf_optax.pexp_gain(opt_state, jnp.asarray(p, jnp.float32), b2=b2, eps=eps)

    def loss_i(params, xi, yi):
        return _per_example_loss(params, xi[None], yi[None])[0]

    grads = jax.vmap(jax.grad(loss_i), in_axes=(None, 0, 0))(params, x, y)
    sq = jax.tree.map(
        lambda g, gain: jnp.sum((g * gain) ** 2, axis=tuple(range(1, g.ndim))),
        grads,
        gains,
    )
    return jnp.sqrt(sum(jax.tree.leaves(sq)))


class BoundarySnapshot(NamedTuple):
    """The boundary of one run at one step."""

    step: int
    prob: np.ndarray  # [G, G] P(class 1) on the grid (rows: y, columns: x)
    top: np.ndarray  # [n_train] bool, top 10 % per class by update norm


class BoundaryResult(NamedTuple):
    """Everything :func:`boundary_demo` measured (``R`` rows, ``S`` seeds)."""

    settings: BoundarySettings
    labels: list[str]
    eval_steps: np.ndarray  # [E]
    accuracy: np.ndarray  # [R, S, E] test accuracy
    near_accuracy: np.ndarray  # [R, S, E] test accuracy on near-branch points
    train_loss: np.ndarray  # [R, S, E] mean train cross-entropy
    test_loss: np.ndarray  # [R, S, E] mean test cross-entropy
    steps_to_target: np.ndarray  # [R, S] first eval step with acc >= target (nan)
    summary: dict[str, dict[str, float]]
    verdicts: dict[str, object]
    snapshots: dict[str, list[BoundarySnapshot]]
    train_data: tuple[np.ndarray, np.ndarray, np.ndarray]  # seed-0 (x, y, near)
    grid: np.ndarray  # [G] coordinates of the grid axes


def mean_ci(values: np.ndarray, axis: int = 0, level: float = 0.95):
    """Mean and half-width of the Student-t confidence interval along ``axis``.

    Args:
      values: samples; NaNs are ignored.
      axis: the samples' axis.
      level: confidence level.

    Returns:
      ``(mean, half_width)``; the half-width is nan with fewer than two samples.
    """
    from scipy import stats  # a jax dependency; imported only when used

    values = np.asarray(values, np.float64)
    n = np.sum(~np.isnan(values), axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (
            np.nanmean(values, axis=axis)
            if np.all(n > 0)
            else np.full(np.delete(values.shape, axis), np.nan)
        )
        std = np.nanstd(values, axis=axis, ddof=1) if np.all(n > 1) else np.nan
        t = stats.t.ppf(0.5 + level / 2, np.maximum(n - 1, 1))
        half = np.where(n > 1, t * std / np.sqrt(np.maximum(n, 1)), np.nan)
    return mean, half


@functools.lru_cache(maxsize=8)
def _make_train(settings: BoundarySettings):
    """Jitted train/advance/probe functions, cached per (hashable) settings."""
    s = settings
    num_evals = s.num_steps // s.eval_every

    def tx_for(p_values):
        return nsf_optax.nsf(
            s.lr,
            b1=s.b1,
            b2=s.b2,
            eps=s.eps,
            p=lambda count: p_values[jnp.minimum(count, p_values.shape[0] - 1)],
            normalize=s.normalize,
        )

    @jax.jit
    def data_for(seed):
        key = jax.random.key(seed)
        k_train, k_test, k_init = jax.random.split(key, 3)
        train = make_angle_data(
            k_train, s.n_train, noise=s.noise, near_fraction=s.near_fraction
        )
        test = make_angle_data(
            k_test, s.n_test, noise=s.noise, near_fraction=s.near_fraction
        )
        return train, test, init_mlp(k_init, s.hidden)

    def metrics(params, train, test):
        logits = mlp_apply(params, test[0])
        correct = jnp.argmax(logits, -1) == test[1]
        near = test[2]
        return (
            jnp.mean(correct),
            jnp.sum(correct & near) / jnp.maximum(jnp.sum(near), 1),
            jnp.mean(_per_example_loss(params, *train[:2])),
            jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, test[1])),
        )

    def run(data, p_values):
        train, test, params = data
        tx = tx_for(p_values)
        grad_fn = jax.grad(_loss)

        def step(carry, _):
            params, opt_state = carry
            grads = grad_fn(params, train[0], train[1], s.loss_reduction)
            updates, opt_state = tx.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), None

        def evaluate(carry, _):
            carry, _ = jax.lax.scan(step, carry, None, length=s.eval_every)
            return carry, metrics(carry[0], train, test)

        init = (params, tx.init(params))
        _, curves = jax.lax.scan(evaluate, init, None, length=num_evals)
        first = metrics(params, train, test)
        return tuple(
            jnp.concatenate([f[None], c]) for f, c in zip(first, curves, strict=True)
        )

    @jax.jit
    def advance(params, opt_state, n, p_values, x, y):
        tx = tx_for(p_values)
        grad_fn = jax.grad(_loss)

        def body(_, carry):
            params, opt_state = carry
            grads = grad_fn(params, x, y, s.loss_reduction)
            updates, opt_state = tx.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state

        return jax.lax.fori_loop(0, n, body, (params, opt_state))

    @jax.jit
    def probe(params, opt_state, step, p_values, x, y, pts):
        # The exponent the next step will use.
        p_t = p_values[jnp.minimum(step, p_values.shape[0] - 1)]
        prob = jax.nn.softmax(mlp_apply(params, pts))[:, 1]
        norms = update_norms(params, opt_state, x, y, p_t, b2=s.b2, eps=s.eps)
        return prob, norms

    # Data and init are drawn outside the training program: compiling the PRNG
    # into it would make its compilation several times slower on CPU.
    batched_data = jax.jit(jax.vmap(data_for))
    train_jit = jax.jit(jax.vmap(run, in_axes=(0, None)))

    def train_all(seeds, p_values):
        return train_jit(batched_data(seeds), p_values)

    return train_all, data_for, tx_for, advance, probe


def _snapshots(settings, data_for, tx_for, advance, probe, p_values, grid):
    s = settings
    (x, y, _), _, params = data_for(s.seeds[0])
    xx, yy = np.meshgrid(grid, grid)
    pts = jnp.asarray(np.stack([xx.ravel(), yy.ravel()], -1), jnp.float32)
    opt_state = tx_for(p_values).init(params)
    done, out = 0, []
    y_np = np.asarray(y)
    for step in s.checkpoints:
        params, opt_state = advance(params, opt_state, step - done, p_values, x, y)
        done = step
        prob, norms = probe(params, opt_state, step, p_values, x, y, pts)
        norms = np.asarray(norms)
        top = np.zeros_like(y_np, dtype=bool)
        for c in (0, 1):
            idx = np.flatnonzero(y_np == c)
            k = max(1, round(0.1 * idx.size))
            top[idx[np.argsort(norms[idx])[-k:]]] = True
        out.append(BoundarySnapshot(step, np.asarray(prob).reshape(xx.shape), top))
    return out


def boundary_demo(
    settings: BoundarySettings = BoundarySettings(), *, snapshots: bool = True
) -> BoundaryResult:
    """Trains the MLP with :func:`nsf_optax.nsf` for every row and seed.

    Every row uses the same learning rate, the same seeds (data and init) and
    full-batch steps. Rows are ranked by early accuracy (the seed-mean of the
    test accuracy averaged over the evaluations in ``(0, early_steps]``);
    steps-to-target is reported beside it. Verdicts:

    * ``fastest``: the row with the highest early accuracy;
    * ``negative_p_fastest``: a constant ``p < 0`` row is first among the
      constant rows (the paper: slightly negative p aligns earliest);
    * ``sgd_slowest``: ``p = 0`` is last among the constant rows (the paper).

    Args:
      settings: :class:`BoundarySettings`.
      snapshots: also record boundary snapshots for the first seed.

    Returns:
      A :class:`BoundaryResult`.

    References:
      Zhang & Liu, arXiv:2509.04713, 2025, Sec. 4.2.2.
    """
    s = settings
    if any(c < 1 or c > s.num_steps for c in s.checkpoints):
        raise ValueError("checkpoints must lie in [1, num_steps].")
    train, data_for, tx_for, advance, probe = _make_train(s)
    seeds = jnp.asarray(s.seeds)
    counts = jnp.arange(s.num_steps + 1)
    rows = s.rows()
    curves, p_arrays = [], {}
    for label, sched in rows.items():
        p_values = jax.vmap(sched)(counts).astype(jnp.float32)
        p_arrays[label] = p_values
        curves.append([np.asarray(c) for c in train(seeds, p_values)])
    acc, near_acc, train_loss, test_loss = (
        np.stack([c[i] for c in curves]) for i in range(4)
    )
    eval_steps = np.arange(acc.shape[-1]) * s.eval_every
    reached = acc >= s.target_accuracy
    steps_to = np.where(
        reached.any(-1), eval_steps[np.argmax(reached, -1)], np.nan
    ).astype(np.float64)
    penalised = np.where(np.isnan(steps_to), s.num_steps + s.eval_every, steps_to)
    early = (eval_steps > 0) & (eval_steps <= s.early_steps)
    early_acc = acc[:, :, early].mean(-1)  # [R, S]
    labels = list(rows)
    summary = {}
    for i, label in enumerate(labels):
        m, h = mean_ci(penalised[i])
        em, eh = mean_ci(early_acc[i])
        fm, fh = mean_ci(acc[i, :, -1])
        summary[label] = {
            "early_accuracy_mean": float(em),
            "early_accuracy_ci95": float(eh),
            "steps_to_target_mean": float(m),
            "steps_to_target_ci95": float(h),
            "reached": int(np.sum(~np.isnan(steps_to[i]))),
            "final_accuracy_mean": float(fm),
            "final_accuracy_ci95": float(fh),
        }
    if "p=0" in labels:
        # Paired over seeds (same data and init), so seed-to-seed spread cancels.
        ref = early_acc[labels.index("p=0")]
        for i, label in enumerate(labels):
            dm, dh = mean_ci(early_acc[i] - ref)
            summary[label]["early_accuracy_minus_p0_mean"] = float(dm)
            summary[label]["early_accuracy_minus_p0_ci95"] = float(dh)
    order = sorted(labels, key=lambda k: -summary[k]["early_accuracy_mean"])
    const = [f"p={p:g}" for p in s.ps]
    const_order = [k for k in order if k in const]
    verdicts: dict[str, object] = {
        "ranking": order,
        "fastest": order[0],
        "negative_p_fastest": bool(float(const_order[0].removeprefix("p=")) < 0),
        "sgd_slowest": bool(const_order[-1] == "p=0") if "p=0" in const else None,
    }
    grid = np.linspace(-1.3, 1.3, s.grid_size)
    snaps = {}
    if snapshots:
        for label in labels:
            snaps[label] = _snapshots(
                s, data_for, tx_for, advance, probe, p_arrays[label], grid
            )
    (x, y, near), _, _ = data_for(s.seeds[0])
    return BoundaryResult(
        settings=s,
        labels=labels,
        eval_steps=eval_steps,
        accuracy=acc,
        near_accuracy=near_acc,
        train_loss=train_loss,
        test_loss=test_loss,
        steps_to_target=steps_to,
        summary=summary,
        verdicts=verdicts,
        snapshots=snaps,
        train_data=(np.asarray(x), np.asarray(y), np.asarray(near)),
        grid=grid,
    )
