"""The p-landscape of a sweep, with intervals: per label-noise level and p, the mean
final test accuracy over seeds; the best p and the exponents tied with it; the
modes of the landscape and whether the dips between them are real.

Every comparison is paired: runs of one seed share their initial parameters and
batches and differ only in p (:mod:`.population`), so the difference between two
exponents is taken seed by seed and its 95 % Student-t interval over seeds
(``nsf_optax.spectral.mean_ci``) says whether it is distinguishable from zero.

* **best p**: the highest seed-mean accuracy; **tied** with it: the exponents
  whose paired difference to the best has an interval reaching 0.
* **modes**: the local maxima of the seed-mean curve along the p grid (equal
  neighbouring means count as one point); a **dip** between two neighbouring modes
  is significant when the paired difference between the lowest point between them
  and the lower of the two modes has an interval entirely below 0. A landscape
  without a significant dip is unimodal at this resolution.
* **detectable**: beside every difference that is not detected (a tie, a
  difference to p = 0 whose interval reaches 0, a dip that is not significant),
  the smallest true difference a paired t-test of these seeds would detect with
  80 % power (``nsf_optax.spectral.detectable_difference``): "not detected" says
  nothing about differences smaller than that.
* **trend** (:func:`best_p_trend`): does the best p move up with label noise? The
  least-squares slope of the best p against the noise level, with a 95 %
  bootstrap interval over seeds.

Imports numpy and scipy only (no jax).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from nsf_optax.spectral import detectable_difference, mean_ci


def endpoint(p: float, flavour: str) -> str:
    """The name of the exponents the paper calls endpoints, else "".

    Args:
      p: the exponent.
      flavour: "sgd" (``nsf_sgd``: heavy-ball momentum times the gain) or "adam"
        (``nsfw``: Adam's moments).

    Returns:
      "SGD" at p = 0 (in either flavour the update is the momentum); at p = 1/2
      "Adam" for the Adam flavour and "Adam's p" for the SGD flavour (momentum over
      the root of the second moment, not Adam's EMA); else "".
    """
    if p == 0.0:
        return "SGD"
    if p == 0.5:
        return "Adam" if flavour == "adam" else "Adam's p"
    return ""


def _grid(rows: Sequence[dict[str, Any]], noise: float):
    # accuracy[p, seed] and loss[p, seed] of one noise level, p ascending.
    level = [r for r in rows if r["label_noise"] == noise]
    ps = sorted({r["p"] for r in level})
    seeds = sorted({r["seed"] for r in level})
    acc = np.full((len(ps), len(seeds)), np.nan)
    loss = np.full((len(ps), len(seeds)), np.nan)
    for r in level:
        i, j = ps.index(r["p"]), seeds.index(r["seed"])
        acc[i, j] = r["final_test_accuracy"]
        value = r["final_test_loss"]
        loss[i, j] = np.nan if value is None else value
    if np.isnan(acc).any():
        raise ValueError(
            f"label_noise {noise}: every p needs a run for every seed (paired)."
        )
    return ps, seeds, acc, loss


def _ci(values: np.ndarray) -> tuple[float, float]:
    mean, half = mean_ci(np.asarray(values, np.float64))
    return float(mean), float(half)


def _detectable(differences: np.ndarray) -> float:
    # Paired differences of a single seed (or all equal) detect nothing / anything.
    return float(detectable_difference(np.asarray(differences, np.float64)))


def _modes(means: np.ndarray) -> list[int]:
    # Local maxima of a curve, a run of equal values counting as one point.
    groups = [[0]]
    for i in range(1, len(means)):
        if means[i] == means[groups[-1][0]]:
            groups[-1].append(i)
        else:
            groups.append([i])
    values = [means[g[0]] for g in groups]
    modes = []
    for k, g in enumerate(groups):
        left = values[k - 1] if k > 0 else -math.inf
        right = values[k + 1] if k + 1 < len(groups) else -math.inf
        if values[k] > left and values[k] > right:
            modes.append(g[0])
    return modes


def _dips(
    ps: list[float], acc: np.ndarray, means: np.ndarray, modes: list[int]
) -> list[dict[str, Any]]:
    """Per neighbouring pair of modes: the lowest point between them, its paired
    difference to the lower mode and whether that difference is significant."""
    dips = []
    for a, b in itertools.pairwise(modes):
        valley = a + int(np.argmin(means[a : b + 1]))
        lower = a if means[a] <= means[b] else b
        diff = _ci(acc[valley] - acc[lower])
        significant = bool(diff[0] + diff[1] < 0)  # False for nan
        detectable = math.nan if significant else _detectable(acc[valley] - acc[lower])
        dips.append(
            {
                "between": [ps[a], ps[b]],
                "at": ps[valley],
                "diff_mean": diff[0],
                "diff_ci95": diff[1],
                "significant": significant,
                "detectable": detectable,
            }
        )
    return dips


def summarize(
    rows: Sequence[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Per-(noise, p) statistics and per-noise verdicts from a sweep's runs.

    Args:
      rows: one dict per run with ``p``, ``seed``, ``label_noise``,
        ``final_test_accuracy`` and ``final_test_loss`` (None when not finite);
        every p of a noise level run on the same seeds.

    Returns:
      ``(table, verdicts)``. ``table``: one dict per noise level and p (both
      ascending) with ``seeds``, ``accuracy_mean``/``accuracy_ci95``,
      ``loss_mean``/``loss_ci95`` (over finite losses), ``nonfinite_losses``,
      ``vs_best_mean``/``vs_best_ci95`` and ``vs_sgd_mean``/``vs_sgd_ci95``
      (paired accuracy differences; nan without a p = 0 run), ``best``, ``tied``,
      and ``vs_best_detectable`` / ``vs_sgd_detectable``: for a difference not
      detected (its interval reaches 0), the smallest true difference detectable
      at 80 % power with these seeds, else nan. ``verdicts``: one dict per noise
      level with ``best_p``, ``tied_ps``, ``modes`` (the p of each local
      maximum), ``dips`` (per neighbouring pair of modes: the p of the lowest
      point between them, its paired difference to the lower mode with the
      interval, ``significant``, and ``detectable`` when it is not) and
      ``unimodal``. The half-widths and detectable differences are nan with a
      single seed.

    Examples:
      >>> from nsf_optax.experiments.landscape import stats as landscape
      >>> rows = [
      ...     dict(p=p, seed=s, label_noise=0.0, final_test_accuracy=a + s / 100,
      ...          final_test_loss=1.0)
      ...     for p, a in ((0.0, 0.80), (0.5, 0.90)) for s in range(3)]
      >>> table, verdicts = landscape.summarize(rows)
      >>> verdicts[0]["best_p"], verdicts[0]["tied_ps"], verdicts[0]["unimodal"]
      (0.5, [0.5], True)
    """
    table, verdicts = [], []
    for noise in sorted({r["label_noise"] for r in rows}):
        ps, seeds, acc, loss = _grid(rows, noise)
        means = acc.mean(axis=1)
        best = int(np.argmax(means))
        sgd = ps.index(0.0) if 0.0 in ps else None
        tied = []
        for i, p in enumerate(ps):
            vs_best = _ci(acc[i] - acc[best])
            vs_sgd = _ci(acc[i] - acc[sgd]) if sgd is not None else (math.nan,) * 2
            sgd_detected = vs_sgd[0] - vs_sgd[1] > 0 or vs_sgd[0] + vs_sgd[1] < 0
            finite = loss[i][np.isfinite(loss[i])]
            # One seed gives no interval: only the best itself is then tied.
            is_tied = i == best or vs_best[0] + vs_best[1] >= 0
            if is_tied:
                tied.append(p)
            table.append(
                {
                    "label_noise": noise,
                    "p": p,
                    "seeds": len(seeds),
                    "accuracy_mean": float(means[i]),
                    "accuracy_ci95": _ci(acc[i])[1],
                    "loss_mean": _ci(finite)[0] if len(finite) else math.nan,
                    "loss_ci95": _ci(finite)[1] if len(finite) else math.nan,
                    "nonfinite_losses": int(len(seeds) - len(finite)),
                    "vs_best_mean": vs_best[0],
                    "vs_best_ci95": vs_best[1],
                    "vs_sgd_mean": vs_sgd[0],
                    "vs_sgd_ci95": vs_sgd[1],
                    "vs_best_detectable": _detectable(acc[i] - acc[best])
                    if is_tied and i != best
                    else math.nan,
                    "vs_sgd_detectable": _detectable(acc[i] - acc[sgd])
                    if sgd is not None and i != sgd and not sgd_detected
                    else math.nan,
                    "best": i == best,
                    "tied": is_tied,
                }
            )
        modes = _modes(means)
        dips = _dips(ps, acc, means, modes)
        verdicts.append(
            {
                "label_noise": noise,
                "best_p": ps[best],
                "tied_ps": tied,
                "modes": [ps[i] for i in modes],
                "dips": dips,
                "unimodal": not any(d["significant"] for d in dips),
            }
        )
    return table, verdicts


def _pm(mean: float, half: float, scale: float, digits: int) -> str:
    if math.isnan(mean):
        return "-"
    if math.isnan(half):
        return f"{scale * mean:.{digits}f}"
    return f"{scale * mean:.{digits}f} ± {scale * half:.{digits}f}"


def markdown(
    table: Sequence[dict[str, Any]],
    verdicts: Sequence[dict[str, Any]],
    *,
    flavour: str,
    trend: dict[str, Any] | None = None,
) -> str:
    """The tables and verdicts of :func:`summarize` as markdown (accuracy in %).

    Args:
      table: from :func:`summarize`.
      verdicts: from :func:`summarize`.
      flavour: "sgd" or "adam", for the endpoint names (:func:`endpoint`).
      trend: :func:`best_p_trend`'s answer, a closing line; None for none.

    Returns:
      One table per noise level (mean ± 95 % interval over seeds; paired
      differences to the best p and to p = 0, in points, each not detected one
      with the difference detectable at 80 % power) and one verdict line each,
      then the trend's line.
    """
    out = []
    for verdict in verdicts:
        noise = verdict["label_noise"]
        out.append(f"### label noise {noise:g}\n")
        out.append(
            "| p | test accuracy (%) | test loss | vs best (points) "
            "| vs p = 0 (points) | note |"
        )
        out.append("|---:|---:|---:|---:|---:|---|")
        for r in (r for r in table if r["label_noise"] == noise):
            notes = [endpoint(r["p"], flavour)]
            notes.append("**best**" if r["best"] else "tied" if r["tied"] else "")
            if not math.isnan(r["vs_best_detectable"]):
                notes[-1] += f" ({_detects(r['vs_best_detectable'])})"
            # With p = 0 the best, its tie note already says it.
            if not math.isnan(r["vs_sgd_detectable"]) and verdict["best_p"] != 0.0:
                notes.append(f"vs p = 0 ({_detects(r['vs_sgd_detectable'])})")
            if r["nonfinite_losses"]:
                notes.append(f"{r['nonfinite_losses']} non-finite losses")
            loss = _pm(r["loss_mean"], r["loss_ci95"], 1.0, 4)
            accuracy = _pm(r["accuracy_mean"], r["accuracy_ci95"], 100, 2)
            vs_best = _pm(r["vs_best_mean"], r["vs_best_ci95"], 100, 2)
            vs_sgd = _pm(r["vs_sgd_mean"], r["vs_sgd_ci95"], 100, 2)
            out.append(
                f"| {r['p']:g} | {accuracy} | {loss} "
                f"| {'-' if r['best'] else vs_best} "
                f"| {'-' if r['p'] == 0 else vs_sgd} "
                f"| {', '.join(n for n in notes if n)} |"
            )
        dips = "; ".join(
            f"dip at p = {d['at']:g} between {d['between'][0]:g} and "
            f"{d['between'][1]:g}: {_pm(d['diff_mean'], d['diff_ci95'], 100, 2)} "
            f"points ({'significant' if d['significant'] else 'not significant'}"
            f"{'' if d['significant'] else '; ' + _detects(d['detectable'])})"
            for d in verdict["dips"]
        )
        out.append(
            f"\nbest p = {verdict['best_p']:g}; tied with it (paired 95 % interval "
            f"reaching 0): {', '.join(f'{p:g}' for p in verdict['tied_ps'])}; modes at "
            f"p = {', '.join(f'{p:g}' for p in verdict['modes'])}"
            f"{'; ' + dips if dips else ''}: "
            f"{'unimodal' if verdict['unimodal'] else 'not unimodal'}.\n"
        )
    if trend is not None:
        out.append(trend_line(trend))
    return "\n".join(out)


def _detects(detectable: float) -> str:
    # What the design of a not-detected difference could have detected.
    if math.isnan(detectable):
        return "one seed detects nothing"
    return f"detectable ≥ {100 * detectable:.2f} points"


def trend_line(trend: dict[str, Any]) -> str:
    """:func:`best_p_trend`'s answer as one markdown line.

    Args:
      trend: :func:`best_p_trend`'s answer.

    Returns:
      The best p per noise level, the slope with its interval and the verdict.

    Examples:
      >>> trend_line(dict(label_noise=[0.0, 0.4], best_p=[0.0, 0.5], slope=1.25,
      ...                 slope_ci95=[0.0, 2.5], verdict="not detected"))
      '**Does the best p move up with label noise?** best p 0 at ...: not detected.'
    """
    levels = ", ".join(
        f"{p:g} at noise {f:g}"
        for f, p in zip(trend["label_noise"], trend["best_p"], strict=True)
    )
    low, high = trend["slope_ci95"]
    return (
        f"**Does the best p move up with label noise?** best p {levels}; slope "
        f"{trend['slope']:.3g} p per unit noise, 95 % bootstrap interval "
        f"[{low:.3g}, {high:.3g}] (resolution: the p grid): {trend['verdict']}."
    )


def _slopes(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    # Least-squares slope of each row of y (..., levels) against x (levels,).
    # Rounded to 1e-12: best p values on a grid give exact slopes (a flat one is
    # 0, not the 1e-17 that the centring leaves, and not -0).
    dx = x - x.mean()
    slopes = (y - y.mean(axis=-1, keepdims=True)) @ dx / float(dx @ dx)
    return np.round(slopes, 12) + 0.0  # + 0.0: no -0


def best_p_trend(
    rows: Sequence[dict[str, Any]], *, resamples: int = 2000, seed: int = 0
) -> dict[str, Any]:
    """Does the best p move up with label noise? The slope, with its interval.

    Per noise level the best p is the argmax over the p grid of the seed-mean
    final test accuracy (the lowest p on an exact tie); the slope is the
    least-squares slope of that best p against the noise level. Its 95 %
    interval is a percentile bootstrap over seeds: every resample draws each
    level's seeds with replacement (the same draw for every p of the level, as
    the runs are paired), recomputes each level's best p and the slope. The
    resolution is the p grid's: a best p between two grid points is reported as
    one of them, so slopes smaller than the grid's spacing over the noise range
    cannot be seen.

    Args:
      rows: the sweep's runs (see :func:`summarize`), at two or more noise
        levels.
      resamples: bootstrap resamples, >= 1.
      seed: the bootstrap's random seed.

    Returns:
      ``{"label_noise": [levels], "best_p": [per level], "slope": float,
      "slope_ci95": [low, high], "verdict": "up" | "down" | "not detected"}``:
      "up" when the whole interval is above 0, "down" when below, else "not
      detected" (then the interval bounds the slopes the design excludes). The
      interval is ``[nan, nan]`` with fewer than two seeds at some level.

    Raises:
      ValueError: for fewer than two noise levels or ``resamples`` < 1.

    Examples:
      >>> rows = [
      ...     dict(p=p, seed=s, label_noise=f, final_test_accuracy=a + s / 100,
      ...          final_test_loss=1.0)
      ...     for f, best in ((0.0, 0.0), (0.4, 0.5)) for p in (0.0, 0.5)
      ...     for s in range(3) for a in [0.9 if p == best else 0.8]]
      >>> trend = best_p_trend(rows)
      >>> trend["best_p"], round(trend["slope"], 4), trend["verdict"]
      ([0.0, 0.5], 1.25, 'up')
    """
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}.")
    levels = sorted({r["label_noise"] for r in rows})
    if len(levels) < 2:
        raise ValueError(f"a trend needs two or more noise levels, got {levels}.")
    rng = np.random.default_rng(seed)
    best, boot, few_seeds = [], [], False
    for noise in levels:
        ps, _, acc, _ = _grid(rows, noise)
        grid = np.asarray(ps)
        best.append(float(grid[np.argmax(acc.mean(axis=1))]))
        n = acc.shape[1]
        few_seeds |= n < 2
        draws = rng.integers(0, n, size=(resamples, n))
        boot.append(grid[np.argmax(acc[:, draws].mean(axis=-1), axis=0)])
    x = np.asarray(levels, np.float64)
    slope = float(_slopes(x, np.asarray(best)))
    if few_seeds:
        low = high = math.nan
    else:
        low, high = (
            float(v) for v in np.percentile(_slopes(x, np.stack(boot, -1)), [2.5, 97.5])
        )
    verdict = "up" if low > 0 else "down" if high < 0 else "not detected"
    return {
        "label_noise": [float(f) for f in levels],
        "best_p": best,
        "slope": slope,
        "slope_ci95": [low, high],
        "verdict": verdict,
    }
