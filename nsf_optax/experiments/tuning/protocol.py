"""One tuning protocol for every method, p and budget, on held-out data.

Every key (a method, a p, a "method@budget") gets the same search: a grid of
peak learning rates (:class:`Search`; by default :func:`default_grid`, five
log-spaced points a factor sqrt(10) apart centred on the preset's rate) times
``tune_seeds`` tuning seeds ``TUNE_SEED0 .. TUNE_SEED0 + tune_seeds - 1``
(disjoint from the final seeds ``0 .. n - 1``), each trial trained with
``val_fraction`` of its training set held out and scored on it. Every key's
trials go to one :func:`.trials.run_trials` call, so that a population program
can group them.

The selection rule: the grid point with the highest mean, over the tuning seeds,
of the final validation accuracy; ties go to the lower mean final validation
loss (then to the lower learning rate). A choice at the grid's first or last
point extends that key's grid by one point beyond the edge (the grid's own
spacing there), trained with the same tuning seeds, up to :attr:`Search.lr_extend`
times, so that a key whose preset rate is far from its optimum still finds it;
every key starts from the same grid and trial count, and each extension is
recorded (its trials, :attr:`Tuned.extended`). A choice still at the edge after
that is flagged (:attr:`Tuned.edge`) and printed. :func:`apply` turns a key's
result into the config its final runs train with (the chosen values, on the full
training set).

Files in the tuning workdir: the grid's trials in it (trial ``k`` in ``trial<k>/``
or its group's directory, see :func:`.trials.run_dirs`) and ``plan.json``, which
names each trial's key, learning rate and seed (a resumed tuning must plan the
same trials); extension ``r``'s trials likewise in ``extend<r>/``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from nsf_optax.experiments.resnet.configs.default import Config
from nsf_optax.experiments.runner import workdirs
from nsf_optax.experiments.runner.errors import ConfigError

TUNE_SEED0 = 1000
GRID_POINTS = 5
GRID_FACTOR = math.sqrt(10.0)
EXTEND = 3  # the most points a key's grid is extended by beyond an edge
PLAN_FILE = "plan.json"


def default_grid(center: float, points: int = GRID_POINTS) -> tuple[float, ...]:
    """``points`` learning rates a factor sqrt(10) apart, centred on ``center``.

    Args:
      center: the preset's peak learning rate (> 0).
      points: the grid size (odd, so that ``center`` is on it).

    Returns:
      The grid, ascending.

    Examples:
      >>> [round(lr, 4) for lr in default_grid(0.1)]
      [0.01, 0.0316, 0.1, 0.3162, 1.0]
    """
    if not center > 0 or not math.isfinite(center):
        raise ValueError(f"center must be a positive number, got {center!r}.")
    if points < 1 or points % 2 == 0:
        raise ValueError(f"points must be odd and positive, got {points}.")
    half = points // 2
    return tuple(center * GRID_FACTOR ** (k - half) for k in range(points))


@dataclasses.dataclass(frozen=True)
class Search:
    """What every key's tuning tries.

    Attributes:
      lr_grid: the peak learning rates (> 0, distinct; sorted ascending); None:
        :func:`default_grid` of each key's ``peak_learning_rate``.
      tune_seeds: tuning seeds per grid point (>= 1), ``TUNE_SEED0`` onwards.
      val_fraction: the held-out fraction each trial is scored on, in (0, 0.5).
      lr_extend: the most points (>= 0) a key's grid grows by, one at a time,
        while its choice is at an edge.
    """

    lr_grid: tuple[float, ...] | None = None
    tune_seeds: int = 2
    val_fraction: float = 0.1
    lr_extend: int = EXTEND

    def __post_init__(self):
        if self.lr_grid is not None:
            grid = tuple(float(lr) for lr in self.lr_grid)
            if not grid or not all(lr > 0 and math.isfinite(lr) for lr in grid):
                raise ConfigError(
                    f"lr_grid must hold positive numbers, got {list(grid)}.",
                    ("lr_grid",),
                )
            if len(set(grid)) != len(grid):
                raise ConfigError(
                    f"lr_grid repeats a value: {list(grid)}.", ("lr_grid",)
                )
            object.__setattr__(self, "lr_grid", tuple(sorted(grid)))
        seeds = self.tune_seeds
        if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
            raise ConfigError(
                f"tune_seeds must be a positive integer, got {seeds!r}.",
                ("tune_seeds",),
            )
        extend = self.lr_extend
        if isinstance(extend, bool) or not isinstance(extend, int) or extend < 0:
            raise ConfigError(
                f"lr_extend must be a non-negative integer, got {extend!r}.",
                ("lr_extend",),
            )
        if not 0 < self.val_fraction < 0.5:
            raise ConfigError(
                f"val_fraction must be in (0, 0.5) for tuning, got "
                f"{self.val_fraction!r}.",
                ("val_fraction",),
            )

    def grid(self, config: Config) -> tuple[float, ...]:
        """The learning rates tried for ``config``."""
        if self.lr_grid is not None:
            return self.lr_grid
        return default_grid(config.peak_learning_rate)

    def seeds(self) -> tuple[int, ...]:
        """The tuning seeds, ``TUNE_SEED0 .. TUNE_SEED0 + tune_seeds - 1``."""
        return tuple(range(TUNE_SEED0, TUNE_SEED0 + self.tune_seeds))


@dataclasses.dataclass(frozen=True)
class Tuned:
    """One key's tuning result.

    Attributes:
      chosen: the chosen values, ``{"learning_rate": lr}``.
      trials: one record per trial: ``learning_rate``, ``seed``,
        ``val_accuracy``, ``val_loss`` (final validation numbers) and
        ``val_curve`` (``[step, validation accuracy]`` at every evaluation).
      grid: the learning rates tried, ascending.
      edge: "low" / "high" when the choice is the grid's first / last point
        (the optimum may lie outside it), else None (also for a one-point grid).
      val_target: the chosen setting's mean final validation accuracy.
      extended: the points added beyond the searched grid's edges.
    """

    chosen: dict[str, float]
    trials: list[dict[str, Any]]
    grid: tuple[float, ...]
    edge: str | None
    val_target: float
    extended: int = 0

    def to_json(self) -> dict[str, Any]:
        """The result as a JSON-ready dict (the fields by name)."""
        return {
            "chosen": dict(self.chosen),
            "trials": [dict(t) for t in self.trials],
            "grid": list(self.grid),
            "edge": self.edge,
            "val_target": self.val_target,
            "extended": self.extended,
        }

    def val_curves(self) -> tuple[np.ndarray, np.ndarray]:
        """The chosen rate's validation-accuracy curves, one per tuning seed.

        Returns:
          ``(steps, accuracy)``: the evaluated steps, ``[n]``, and the curves,
          ``[tuning seeds, n]`` in seed order (paired across keys by seed).

        Raises:
          ValueError: for trials recorded without their curves, or evaluated at
            different steps.
        """
        lr = self.chosen["learning_rate"]
        rows = sorted(
            (t for t in self.trials if t["learning_rate"] == lr),
            key=lambda t: t["seed"],
        )
        if not rows or any("val_curve" not in t for t in rows):
            raise ValueError(f"No validation curves recorded at learning rate {lr}.")
        curves = [np.asarray(t["val_curve"], np.float64).reshape(-1, 2) for t in rows]
        steps = curves[0][:, 0]
        if any(not np.array_equal(c[:, 0], steps) for c in curves):
            raise ValueError("The tuning seeds were evaluated at different steps.")
        return steps, np.stack([c[:, 1] for c in curves])


def trial_config(base: Config, search: Search, lr: float, seed: int) -> Config:
    """``base`` as one tuning trial: learning rate ``lr``, seed ``seed``, scored
    on the held-out ``search.val_fraction``."""
    return dataclasses.replace(
        base, learning_rate=lr, seed=seed, val_fraction=search.val_fraction
    )


def plan(
    bases: Mapping[str, Config],
    search: Search,
    grids: Mapping[str, Sequence[float]] | None = None,
) -> list[tuple[str, float, int, Config]]:
    """The trials of one round of :func:`tune`, in trial order: ``(key, lr, seed,
    config)``.

    Args:
      bases: key -> the config its trials start from.
      search: the search.
      grids: key -> the learning rates of this round (keys left out get none);
        None: every key's :meth:`Search.grid` (the first round).

    Raises:
      ConfigError: for a trial config that cannot run (e.g. a held-out part
        with no example), before anything trains.
    """
    if grids is None:
        grids = {key: search.grid(base) for key, base in bases.items()}
    return [
        (key, lr, seed, trial_config(bases[key], search, lr, seed))
        for key, lrs in grids.items()
        for lr in lrs
        for seed in search.seeds()
    ]


def beyond_edge(grid: Sequence[float], edge: str) -> float:
    """The next learning rate past ``grid``'s ``edge`` ("low" or "high"), at the
    grid's spacing there (:data:`GRID_FACTOR` for a one-point grid).

    Examples:
      >>> beyond_edge((0.01, 0.1), "high"), beyond_edge((0.01, 0.1), "low")
      (1.0, 0.001)
    """
    grid = sorted(grid)
    if edge == "high":
        ratio = grid[-1] / grid[-2] if len(grid) > 1 else GRID_FACTOR
        return grid[-1] * ratio
    ratio = grid[1] / grid[0] if len(grid) > 1 else GRID_FACTOR
    return grid[0] / ratio


def select(grid: Sequence[float], trials: Sequence[Mapping[str, Any]]) -> Tuned:
    """Applies the selection rule to one key's trial records.

    Args:
      grid: the learning rates tried, ascending.
      trials: records with ``learning_rate``, ``seed``, ``val_accuracy`` and
        ``val_loss``; every grid point has the same number of them.

    Returns:
      The :class:`Tuned` result: the highest mean validation accuracy, ties to
      the lower mean validation loss, then to the lower learning rate.

    Examples:
      >>> trials = [
      ...     {"learning_rate": lr, "seed": s, "val_accuracy": a, "val_loss": 1.0}
      ...     for lr, s, a in [(0.1, 0, 0.5), (0.1, 1, 0.7), (1.0, 0, 0.4),
      ...                      (1.0, 1, 0.6)]]
      >>> tuned = select((0.1, 1.0), trials)
      >>> tuned.chosen, tuned.edge, round(tuned.val_target, 3)
      ({'learning_rate': 0.1}, 'low', 0.6)
    """

    def means(lr: float) -> tuple[float, float]:
        rows = [t for t in trials if t["learning_rate"] == lr]
        if not rows:
            raise ValueError(f"No trial at learning rate {lr}.")
        acc = sum(t["val_accuracy"] for t in rows) / len(rows)
        return acc, sum(t["val_loss"] for t in rows) / len(rows)

    scores = [means(lr) for lr in grid]
    best = min(range(len(grid)), key=lambda i: (-scores[i][0], scores[i][1], i))
    edge = None
    if len(grid) > 1 and best in (0, len(grid) - 1):
        edge = "low" if best == 0 else "high"
    return Tuned(
        chosen={"learning_rate": float(grid[best])},
        trials=[dict(t) for t in trials],
        grid=tuple(float(lr) for lr in grid),
        edge=edge,
        val_target=float(scores[best][0]),
    )


def _check_plan(workdir: str, record: list[dict[str, Any]], resume: bool) -> None:
    # A resumed tuning must train the trials it started: trial k is the same.
    path = os.path.join(workdir, PLAN_FILE)
    if resume and os.path.isfile(path):
        with open(path) as f:
            if json.load(f) != record:
                raise ConfigError(
                    f"{path!r} planned other trials (keys, grids or seeds); "
                    "resume with the same flags or choose another --workdir.",
                    ("lr_grid", "tune_seeds"),
                )
    workdirs.write_text(path, json.dumps(record, indent=1))


def tune(
    bases: Mapping[str, Config],
    search: Search,
    workdir: str | os.PathLike,
    *,
    resume: bool = False,
) -> dict[str, Tuned]:
    """Tunes every key's learning rate by the protocol: one
    :func:`.trials.run_trials` call per round (the grid, then each extension).

    Args:
      bases: key -> the config its trials start from (their learning rate, seed
        and ``val_fraction`` are set per trial).
      search: the grid, tuning seeds and held-out fraction.
      workdir: the tuning directory: the grid's trials and their ``plan.json``
        (each trial's key, learning rate and seed) in it, extension ``r``'s in
        ``<workdir>/extend<r>``.
      resume: trials with a checkpoint continue from it (finished ones are only
        reloaded); the plan must be the one the workdir holds.

    Returns:
      key -> its :class:`Tuned` result, in the order of ``bases``. A choice still
      at the grid's edge after ``search.lr_extend`` extensions is printed.

    Raises:
      ConfigError: for a trial that cannot run or a resumed plan that differs.
    """
    workdir = os.fspath(workdir)
    grids = {key: search.grid(base) for key, base in bases.items()}
    records: dict[str, list[dict[str, Any]]] = {key: [] for key in bases}
    new: Mapping[str, Sequence[float]] = grids
    results: dict[str, Tuned] = {}
    for round_ in range(search.lr_extend + 1):
        where = workdir if round_ == 0 else os.path.join(workdir, f"extend{round_}")
        for key, record in _train_round(bases, search, new, where, resume):
            records[key].append(record)
        results = {
            key: dataclasses.replace(
                select(sorted(grids[key]), records[key]),
                extended=len(grids[key]) - len(search.grid(bases[key])),
            )
            for key in bases
        }
        if round_ == search.lr_extend:
            break
        new = {
            key: (beyond_edge(grids[key], result.edge),)
            for key, result in results.items()
            if result.edge
        }
        if not new:
            break
        grids.update({key: (*grids[key], *lrs) for key, lrs in new.items()})
    for key, result in results.items():
        if result.edge:
            print(
                f"{key}: the chosen learning rate "
                f"{result.chosen['learning_rate']:.3g} is at the grid's "
                f"{result.edge} edge after {result.extended} extension(s).",
                flush=True,
            )
    return results


def _train_round(
    bases: Mapping[str, Config],
    search: Search,
    grids: Mapping[str, Sequence[float]],
    workdir: str,
    resume: bool,
) -> list[tuple[str, dict[str, Any]]]:
    # One round's trials through one run_trials call: (key, trial record) each.
    from nsf_optax.experiments.tuning import trials

    planned = plan(bases, search, grids)
    os.makedirs(workdir, exist_ok=True)
    record = [
        {"trial": k, "key": key, "learning_rate": lr, "seed": seed}
        for k, (key, lr, seed, _) in enumerate(planned)
    ]
    _check_plan(workdir, record, resume)
    histories = trials.run_trials([c for *_, c in planned], workdir, resume=resume)
    return [
        (
            key,
            {
                "learning_rate": lr,
                "seed": seed,
                "val_accuracy": float(history[-1]["test_accuracy"]),
                "val_loss": float(history[-1]["test_loss"]),
                "val_curve": [
                    [float(row["step"]), float(row["test_accuracy"])] for row in history
                ],
            },
        )
        for (key, lr, seed, _), history in zip(planned, histories, strict=True)
    ]


def apply(config: Config, tuned: Tuned) -> Config:
    """``config`` with the chosen values, trained on the full training set
    (``val_fraction`` 0)."""
    return dataclasses.replace(config, val_fraction=0.0, **tuned.chosen)


def markdown_trials(tuned: Mapping[str, Tuned]) -> str:
    """The trials as a markdown table: a row per grid index, a column per key.

    Each cell is the learning rate and the mean (over tuning seeds) final
    validation accuracy in %; the chosen cell is bold, and a key whose choice is
    at the grid's edge says so in its header.

    Examples:
      >>> trials = [
      ...     {"learning_rate": lr, "seed": 0, "val_accuracy": a, "val_loss": 1.0}
      ...     for lr, a in [(0.1, 0.5), (1.0, 0.4)]]
      >>> print(markdown_trials({"sgd": select((0.1, 1.0), trials)}))
      | grid index | sgd (edge: low) |
      |---|---|
      | 0 | **0.1: 50.00** |
      | 1 | 1: 40.00 |
    """
    keys = list(tuned)
    header = [f"{k} (edge: {tuned[k].edge})" if tuned[k].edge else k for k in keys]
    lines = [
        "| grid index | " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in range(len(keys) + 1)) + "|",
    ]
    for i in range(max(len(t.grid) for t in tuned.values())):
        cells = [str(i)]
        for key in keys:
            result = tuned[key]
            if i >= len(result.grid):
                cells.append("-")
                continue
            lr = result.grid[i]
            accs = [
                t["val_accuracy"] for t in result.trials if t["learning_rate"] == lr
            ]
            cell = f"{lr:.3g}: {100 * sum(accs) / len(accs):.2f}"
            chosen = lr == result.chosen["learning_rate"]
            cells.append(f"**{cell}**" if chosen else cell)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
