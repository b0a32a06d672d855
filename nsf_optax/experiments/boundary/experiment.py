"""The paper's 2-D "angle" decision-boundary demonstration (Sec. 4.2.2).

Usage::

  python -m nsf_optax.experiments.boundary --json
  python -m nsf_optax.experiments.boundary --loss-reduction sum --lr 1e-4
  python -m nsf_optax.experiments.boundary --normalize rms
"""

import argparse
import dataclasses
import functools
import json
import sys
from collections.abc import Sequence
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

import nsf_optax
from nsf_optax import p_schedule
from nsf_optax.experiments.boundary.model import (
    _loss,
    _per_example_loss,
    init_mlp,
    make_angle_data,
    mlp_apply,
    update_norms,
)
from nsf_optax.spectral._stats import mean_ci

__all__ = [
    "BoundaryResult",
    "BoundarySettings",
    "BoundarySnapshot",
    "boundary_demo",
    "init_mlp",
    "main",
    "make_angle_data",
    "mlp_apply",
    "update_norms",
]


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
        p_values = jnp.asarray(jax.vmap(sched)(counts), jnp.float32)
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


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit status."""
    d = BoundarySettings()
    ap = argparse.ArgumentParser(
        prog="python -m nsf_optax.experiments.boundary",
        description=(
            "2-D two-class angle data, 2-layer ReLU MLP trained with "
            "nsf_optax.nsf at one learning rate for every p and a cosine-tidal "
            "p; early test accuracy and steps-to-target over seeds with 95%% "
            "t-intervals (arXiv:2509.04713, Sec. 4.2.2)."
        ),
    )
    ap.add_argument("--lr", type=float, default=d.lr)
    ap.add_argument("--loss-reduction", choices=("mean", "sum"), default="mean")
    ap.add_argument("--normalize", choices=("none", "rms"), default="none")
    ap.add_argument("--num-steps", type=int, default=d.num_steps)
    ap.add_argument("--num-seeds", type=int, default=len(d.seeds))
    ap.add_argument("--n-train", type=int, default=d.n_train)
    ap.add_argument("--target-accuracy", type=float, default=d.target_accuracy)
    ap.add_argument("--early-steps", type=int, default=d.early_steps)
    ap.add_argument("--json", action="store_true", help="print JSON")
    args = ap.parse_args(argv)
    settings = dataclasses.replace(
        d,
        lr=args.lr,
        loss_reduction=args.loss_reduction,
        normalize=None if args.normalize == "none" else "rms",
        num_steps=args.num_steps,
        seeds=tuple(range(args.num_seeds)),
        n_train=args.n_train,
        target_accuracy=args.target_accuracy,
        early_steps=args.early_steps,
        checkpoints=tuple(c for c in d.checkpoints if c <= args.num_steps),
    )
    res = boundary_demo(settings, snapshots=False)
    out = {
        "settings": dataclasses.asdict(settings),
        "summary": res.summary,
        "verdicts": res.verdicts,
    }
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(
        f"{'row':<17}{'early acc':<17}{'vs p=0 (paired)':<19}"
        f"{'steps to ' + str(settings.target_accuracy):<20}final acc"
    )
    for label, s in res.summary.items():
        diff = (
            f"{s['early_accuracy_minus_p0_mean']:+.3f}"
            f"±{s['early_accuracy_minus_p0_ci95']:.3f}"
            if "early_accuracy_minus_p0_mean" in s
            else ""
        )
        reach = (
            f"{s['steps_to_target_mean']:.0f}±{s['steps_to_target_ci95']:.0f} "
            f"({s['reached']}/{len(settings.seeds)})"
        )
        early = f"{s['early_accuracy_mean']:.3f}±{s['early_accuracy_ci95']:.3f}"
        print(
            f"{label:<17}{early:<17}{diff:<19}{reach:<20}{s['final_accuracy_mean']:.3f}"
        )
    for key, value in res.verdicts.items():
        print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
