"""The spectral-bias experiment's verdicts: band times, censoring, the claims.

Used by :mod:`nsf_optax.experiments.bias.experiment`; :func:`bias_verdicts` is
re-exported there.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
from scipy import stats

from nsf_optax.experiments.bias.settings import BiasResult, BiasSettings, row_key
from nsf_optax.spectral._frequency import time_to_learn
from nsf_optax.spectral._stats import mean_ci

__all__ = ["CLAIMS", "bias_verdicts", "claims"]

# The claims, as :func:`claims` reports them.
CLAIMS = ("a", "b", "c", "eq4")


def _log_times(ttl: np.ndarray, num_steps: int) -> np.ndarray:
    """log10 of time-to-learn; never learned counts as ``num_steps`` (a bound)."""
    return np.log10(np.maximum(np.where(np.isnan(ttl), num_steps, ttl), 1.0))


def _bands(values: np.ndarray, band_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Means over the low and the high band (last axis: frequencies, ascending)."""
    return values[..., :band_size].mean(-1), values[..., -band_size:].mean(-1)


def _ci(values: np.ndarray) -> dict[str, float]:
    m, h = mean_ci(np.asarray(values, np.float64))
    return {"mean": float(m), "ci95": float(h)}


def _spearman(a: Sequence[float], b: Sequence[float]) -> float:
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(stats.spearmanr(a, b).statistic)  # pyright: ignore[reportAttributeAccessIssue]


def _error_area(errors: np.ndarray) -> np.ndarray:
    """Mean over the run of log10 relative error, ``[S, K]`` (nan: diverged)."""
    with np.errstate(invalid="ignore"):
        return np.mean(np.log10(np.maximum(errors, 1e-4)), axis=1)


def _late_error(errors: np.ndarray) -> np.ndarray:
    """Mean relative error over the last 10 % of the log, ``[S, K]``."""
    return errors[:, -max(1, errors.shape[1] // 10) :].mean(1)


class _Stats(NamedTuple):
    """Per row key: the band statistics the summary and the claims rest on."""

    ttl: dict[str, np.ndarray]  # [S, K] time to learn (nan: never)
    logt: dict[str, np.ndarray]  # [S, K] log10 time, never -> num_steps
    low: dict[str, np.ndarray]  # [S] low-band mean of logt
    high: dict[str, np.ndarray]  # [S] high-band mean of logt
    ratio: dict[str, np.ndarray]  # [S] high - low
    complete: dict[str, bool]  # both bands learned in every seed
    late_low: dict[str, float]  # worst late low-band error over seeds
    area_ratio: dict[str, np.ndarray]  # [S] log-error area, high - low
    low_learned: dict[str, bool]  # the low band learned in every seed


def _stats(result: BiasResult, threshold: float | None) -> _Stats:
    s = result.settings
    b, T = s.band_size, s.num_steps
    if threshold is None:
        ttl = result.time_to_learn
    else:
        ttl = {
            key: np.asarray(
                time_to_learn(err, np.arange(err.shape[1]), threshold), np.float64
            )
            for key, err in result.errors.items()
        }
    logt = {k: _log_times(v, T) for k, v in ttl.items()}
    low = {k: _bands(v, b)[0] for k, v in logt.items()}
    high = {k: _bands(v, b)[1] for k, v in logt.items()}
    area = {k: _error_area(e) for k, e in result.errors.items()}
    return _Stats(
        ttl=ttl,
        logt=logt,
        low=low,
        high=high,
        ratio={k: high[k] - low[k] for k in logt},
        complete={
            k: bool(not np.isnan(np.concatenate([v[:, :b], v[:, -b:]], 1)).any())
            for k, v in ttl.items()
        },
        late_low={
            k: float(np.max(_late_error(e)[:, :b])) for k, e in result.errors.items()
        },
        area_ratio={k: _bands(v, b)[1] - _bands(v, b)[0] for k, v in area.items()},
        low_learned={k: bool(not np.isnan(v[:, :b]).any()) for k, v in ttl.items()},
    )


def _summary(result: BiasResult, st: _Stats) -> dict[str, Any]:
    summary = {}
    for row in result.rows:
        key = row.key
        final_loss = result.loss[key][:, -1]
        summary[key] = {
            "lr": row.lr,
            "lr_at_edge": row.lr_at_edge,
            "final_log10_loss": _ci(np.log10(final_loss)),
            "diverged_seeds": int(np.sum(~np.isfinite(final_loss))),
            "low_band_log10_steps": _ci(st.low[key]),
            "high_band_log10_steps": _ci(st.high[key]),
            "log10_ratio_high_low": _ci(st.ratio[key]),
            "log10_error_area_high_minus_low": _ci(st.area_ratio[key]),
            "complete": st.complete[key],
            "learned_fraction": float(np.mean(~np.isnan(st.ttl[key]))),
            "late_error_low_band_max": st.late_low[key],
        }
    return summary


def _claim_a(s: BiasSettings, st: _Stats) -> dict[str, Any]:
    cases = {}
    for n in s.normalizes:
        for p in (0.5, 0.0):
            key = row_key(f"p={p:g}", n)
            if key not in st.logt:
                continue
            rho = _spearman(s.freqs, st.logt[key].mean(0))
            r = _ci(st.ratio[key])
            cases[key] = {
                "spearman_k_vs_log10_time": rho,
                "log10_ratio_high_low": r,
                "complete": st.complete[key],
                "holds": bool(rho >= s.min_spearman and r["mean"] - r["ci95"] > 0),
            }
    return cases


def _case_b(s: BiasSettings, st: _Stats, keys: dict[float, str]) -> dict[str, Any]:
    ok = sorted(p for p, k in keys.items() if st.complete[k])
    trained = sorted(p for p, k in keys.items() if st.low_learned[k])
    case: dict[str, Any] = {
        "log10_ratio_high_low": {f"{p:g}": _ci(st.ratio[k]) for p, k in keys.items()},
        "log10_error_area_high_minus_low": {
            f"{p:g}": _ci(st.area_ratio[k]) for p, k in keys.items()
        },
        "complete_ps": ok,
        "low_band_learned_ps": trained,
    }
    stat, used, name = (
        (st.ratio, ok, "time") if len(ok) >= 3 else (st.area_ratio, trained, "area")
    )
    if len(used) < 3:
        case.update(decided_by=None, holds=False)
        return case
    rho = _spearman(used, [float(np.nanmean(stat[keys[p]])) for p in used])
    d = _ci(stat[keys[used[0]]] - stat[keys[used[-1]]])
    case.update(
        decided_by=name,
        spearman_p_vs_ratio=rho,
        ratio_lowest_minus_highest_p=d,
        holds=bool(rho >= s.min_spearman and d["mean"] + d["ci95"] < 0),
    )
    return case


def _claim_b(s: BiasSettings, st: _Stats) -> dict[str, Any]:
    norm_names = {None: "none", "rms": "rms"}
    cases = {}
    for n in s.normalizes:
        keys = {p: row_key(f"p={p:g}", n) for p in s.ps}
        if any(k not in st.ratio for k in keys.values()):
            continue
        cases[norm_names[n]] = _case_b(s, st, keys)
    return cases


def _claim_c(result: BiasResult, st: _Stats, thr: float) -> dict[str, Any]:
    s = result.settings
    cases = {}
    for row in result.rows:
        if row.description["kind"] == "constant":
            continue
        ref_p = [p for p in s.ps if abs(p - row.mean_p) < 1e-3]
        case = {"mean_p": row.mean_p, "complete": st.complete[row.key]}
        if not ref_p:
            case.update(reference=None, holds=False)
        else:
            ref = row_key(f"p={ref_p[0]:g}", row.normalize)
            dh = _ci(st.high[row.key] - st.high[ref])
            dl = _ci(st.low[row.key] - st.low[ref])
            case.update(
                reference=ref,
                high_band_log10_steps_minus_reference=dh,
                low_band_log10_steps_minus_reference=dl,
                late_error_low_band_max=st.late_low[row.key],
                holds=bool(
                    st.complete[row.key]
                    and dh["mean"] + dh["ci95"] < 0
                    and dl["mean"] <= math.log10(1 + s.low_band_tolerance)
                    and st.late_low[row.key] < thr
                ),
            )
        cases[row.key] = case
    return cases


def _claim_eq4(result: BiasResult) -> dict[str, Any]:
    s, b = result.settings, result.settings.band_size
    cases = {}
    for p in s.ps:
        key = row_key(f"p={p:g}", None)
        if key not in result.log_nu:
            continue
        lo_nu, hi_nu = _bands(result.log_nu[key], b)  # [S, P]
        with np.errstate(divide="ignore", invalid="ignore"):
            log_gain = np.log10(result.kernel_gain[key] / result.kernel[key])
        lo_g, hi_g = _bands(log_gain, b)
        premise = _ci((hi_nu - lo_nu).mean(-1))
        gain = _ci((hi_g - lo_g).mean(-1))
        cases[key] = {
            "weighted_log10_nu_high_minus_low": premise,
            "log10_gain_high_over_low": gain,
            "premise_holds": bool(premise["mean"] - premise["ci95"] > 0),
            "gain_direction_holds": (
                None if p == 0 else bool(-np.sign(p) * gain["mean"] - gain["ci95"] > 0)
            ),
        }
    premise_holds = bool(cases) and all(c["premise_holds"] for c in cases.values())
    gain_holds = bool(cases) and all(
        c["gain_direction_holds"]
        for c in cases.values()
        if c["gain_direction_holds"] is not None
    )
    return {
        "claim": "high frequencies live on coordinates with a large second "
        "moment, so the gain vhat^-p filters them (Eq. 4)",
        "holds": premise_holds and gain_holds,
        "premise_holds": premise_holds,
        "gain_direction_holds": gain_holds,
        "cases": cases,
    }


def _claim(text: str, cases: dict[str, Any]) -> dict[str, Any]:
    holds = bool(cases) and all(c["holds"] for c in cases.values())
    return {"claim": text, "holds": holds, "cases": cases}


def bias_verdicts(
    result: BiasResult, threshold: float | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    r"""Per-setting summary and the verdicts on the paper's claims.

    With :math:`t_k` the time to learn frequency :math:`k` (never learned:
    ``num_steps``, a lower bound) and the band means :math:`L` and :math:`H` of
    :math:`\log_{10} t_k` over the ``band_size`` lowest and highest
    frequencies, :math:`r = H - L` is the log ratio of high- to low-band time
    (a global speed-up cancels in it). A setting is *complete* when every
    frequency of both bands is learned in every seed; only then are its
    :math:`L`, :math:`H` and :math:`r` exact. Per ``normalize``, with 95 %
    t-intervals over seeds (paired where two settings are compared: the seeds
    share init and target):

    * (a) *spectral bias at p = 1/2 and p = 0*: for both, the Spearman
      correlation of :math:`k` with the seed-mean :math:`\log_{10} t_k` is at
      least ``min_spearman`` and :math:`r > 0` (interval above 0). Censoring
      only lowers :math:`H`, so it can only make (a) fail.
    * (b) *lowering p shortens the high band relative to the low band*: over
      the complete constant-``p`` settings (at least three), the Spearman
      correlation of ``p`` with the seed-mean :math:`r` is at least
      ``min_spearman``, and :math:`r` at the lowest complete ``p`` minus
      :math:`r` at the highest is below 0 (interval below 0). With fewer than
      three complete settings the same test runs on an uncensored statistic,
      the log-error area :math:`a = \bar E_H - \bar E_L`, where
      :math:`\bar E` is the band mean of :math:`E_k`, the mean over the run of
      :math:`\log_{10}` of the relative error (lower: learned earlier), over
      the settings that learn their low band in every seed (a setting that
      learns nothing has a flat, meaningless ratio); ``decided_by`` says which.
    * (c) *a tidal schedule learns the high band earlier than the constant p at
      its mean (its time average), without losing the low band*: per tidal
      schedule (complete; its reference may be censored, which only makes the
      test stricter), :math:`H_{\text{tidal}} - H_{\text{const}} < 0`
      (interval below 0), :math:`L_{\text{tidal}} - L_{\text{const}} \le
      \log_{10}(1 +` ``low_band_tolerance``:math:`)`, and the low band's error
      averaged over the last 10 % of steps is below the threshold in every seed.
    * ``eq4``, the coordinate-to-frequency bridge, on the runs without
      ``normalize`` at constant ``p``: *premise*: the high band's tangent
      energy :math:`|J_{ki}|^2` sits on coordinates with larger
      :math:`\hat v_i` than the low band's (band difference of the weighted
      :math:`\log_{10}\hat v` above 0); *gain*: the energy-weighted mean gain
      :math:`\sum_i |J_{ki}|^2\gamma_i / \sum_i |J_{ki}|^2`, high band over low
      band, is below 1 for ``p > 0`` and above 1 for ``p < 0``. Both averaged
      over the probes; runs that diverged are left out (NaN).

    Each claim's ``holds`` is the conjunction over its cases; the cases carry
    the numbers.

    Args:
      result: a :class:`BiasResult` (its ``summary`` and ``verdicts`` unused).
      threshold: recompute the time to learn from ``result.errors`` at this
        relative error; ``None`` uses ``result.time_to_learn``.

    Returns:
      ``(summary, verdicts)``, JSON-ready dicts.

    Examples:
      See :func:`bias_experiment`.
    """
    s = result.settings
    thr = s.threshold if threshold is None else threshold
    st = _stats(result, threshold)
    verdicts = {
        "threshold": thr,
        "a": _claim(
            "at p = 1/2 and p = 0 low frequencies are learned first", _claim_a(s, st)
        ),
        "b": _claim(
            "lowering p shortens the time to learn high k relative to low k",
            _claim_b(s, st),
        ),
        "c": _claim(
            "a tidal schedule learns the high band earlier than the "
            "constant p at its mean without losing the low band",
            _claim_c(result, st, thr),
        ),
        "eq4": _claim_eq4(result),
    }
    return _summary(result, st), verdicts


def claims(result: BiasResult) -> dict[str, bool]:
    """``{claim: holds}`` for each of :data:`CLAIMS`, from ``result.verdicts``."""
    return {name: bool(result.verdicts[name]["holds"]) for name in CLAIMS}
