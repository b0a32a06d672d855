"""The paper's 1-D spectral decay table (Sec. 4.1.2) and its command line.

Usage::

  python -m nsf_optax.experiments.decay              # the table and the verdicts
  python -m nsf_optax.experiments.decay --readings   # + the text's other readings
  python -m nsf_optax.experiments.decay --search --robustness  # + verdicts over
  settings
  python -m nsf_optax.experiments.decay --t-fit      # the earlier table, all on t
  python -m nsf_optax.experiments.decay --json       # everything as JSON

This module is the experiment's public face. The settings live in
:mod:`~nsf_optax.experiments.decay.settings`, the model (the error ODE and the
fit) in :mod:`~nsf_optax.experiments.decay.model`, the table, comparison and
verdicts in :mod:`~nsf_optax.experiments.decay.table`, the settings search and the
verdicts over its settings and the robustness band in
:mod:`~nsf_optax.experiments.decay.search`.
"""

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

from nsf_optax.experiments.decay.model import (
    DecayFit,
    DecayTrace,
    fit_decay,
    simulate_decay,
)
from nsf_optax.experiments.decay.search import (
    BAND_FIELDS,
    FIT_MAX_ABS_DIFF,
    SEARCH_GRID,
    TOP_FRACTION,
    DecaySearch,
    refine_settings,
    robustness_band,
    search_settings,
)
from nsf_optax.experiments.decay.settings import (
    ACCUMULATE,
    ENERGY,
    PAPER_MODES,
    REGRESSION,
    T_FIT_SETTINGS,
    TAU_ENERGY,
    TAU_EXPONENT,
    DecaySettings,
)
from nsf_optax.experiments.decay.table import (
    PAPER_TABLE,
    DecayRow,
    DecayTable,
    compare_with_paper,
    decay_table,
    default_rows,
    format_table,
    readings,
    spectral_trend,
    verdicts,
)

__all__ = [
    "BAND_FIELDS",
    "FIT_MAX_ABS_DIFF",
    "PAPER_MODES",
    "PAPER_TABLE",
    "SEARCH_GRID",
    "TOP_FRACTION",
    "T_FIT_SETTINGS",
    "DecayFit",
    "DecayRow",
    "DecaySearch",
    "DecaySettings",
    "DecayTable",
    "DecayTrace",
    "compare_with_paper",
    "decay_table",
    "default_rows",
    "fit_decay",
    "format_table",
    "main",
    "parse_settings",
    "readings",
    "refine_settings",
    "robustness_band",
    "search_settings",
    "simulate_decay",
    "spectral_trend",
    "verdicts",
]

# Command-line options for the DecaySettings fields: (flag, type, help).
_OPTIONS = {
    "eta": (float, "step constant"),
    "eps": (float, "energy floor"),
    "amplitude": (float, "A_0 in A_k = A_0 k^-alpha"),
    "amplitude_decay": (float, "alpha in A_k = A_0 k^-alpha"),
    "dt": (float, "time step"),
    "num_steps": (int, "number of steps"),
    "num_points": (int, "grid size M"),
    "record_every": (int, "record every this many steps"),
    "tidal_period_steps": (int, "period of the tidal rows"),
}
_CHOICES = {
    "energy": (tuple(ENERGY), "what E accumulates"),
    "accumulate": (ACCUMULATE, "E as a time integral or a plain sum"),
    "regression": (REGRESSION, "regression variable"),
    "tau_exponent": (TAU_EXPONENT, "exponent in tau"),
    "tau_energy": (TAU_ENERGY, "spatially averaged energy in tau"),
}


# How the command line names each set of settings the verdicts are counted over.
_OVER = {
    "fit": f"search settings with max |diff| <= {FIT_MAX_ABS_DIFF}",
    "top": f"best {TOP_FRACTION:.0%} of the search",
    "band": "+-20 % band, joint draws",
}


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m nsf_optax.experiments.decay",
        description=(
            "Early-time decay constants lambda_k of the paper's 1-D model "
            "de/dt = -eta e / (E + eps)^p(t) (arXiv:2509.04713, Sec. 4.1), for "
            "constant p in {-0.5, -0.25, 0, 0.25, 0.5} and three cosine-tidal "
            "ranges, beside the paper's table. Unset options take DecaySettings' "
            "defaults (or T_FIT_SETTINGS' with --t-fit)."
        ),
    )
    for field, (kind, text) in _OPTIONS.items():
        ap.add_argument("--" + field.replace("_", "-"), type=kind, help=text)
    for field, (choices, text) in _CHOICES.items():
        ap.add_argument("--" + field.replace("_", "-"), choices=choices, help=text)
    ap.add_argument(
        "--window", type=float, nargs=2, metavar=("T0", "T1"), help="fit window in t"
    )
    ap.add_argument(
        "--t-fit",
        action="store_true",
        help="start from the earlier settings: every row fitted against t",
    )
    ap.add_argument("--json", action="store_true", help="print JSON")
    ap.add_argument(
        "--readings", action="store_true", help="the table under each other reading"
    )
    ap.add_argument(
        "--search",
        action="store_true",
        help="search SEARCH_GRID, refine its best, verdicts over its settings (~3 min)",
    )
    ap.add_argument("--top", type=int, default=5, help="search results to show")
    ap.add_argument(
        "--robustness",
        action="store_true",
        help="+-20%% band around the settings, verdicts over its draws",
    )
    ap.add_argument("--draws", type=int, default=30, help="joint draws of the band")
    ap.add_argument("--seed", type=int, default=0, help="seed of the joint draws")
    return ap


def parse_settings(args: argparse.Namespace) -> DecaySettings:
    """Builds :class:`DecaySettings` from parsed command-line arguments.

    Options left unset keep the defaults (``T_FIT_SETTINGS``' with ``--t-fit``).

    Examples:
      >>> parse_settings(_parser().parse_args(["--eps", "0.5"])).eps
      0.5
      >>> parse_settings(_parser().parse_args(["--t-fit"])).regression
      't'
    """
    base = T_FIT_SETTINGS if args.t_fit else DecaySettings()
    changes = {
        field: getattr(args, field)
        for field in (*_OPTIONS, *_CHOICES, "window")
        if getattr(args, field) is not None
    }
    if "window" in changes:
        changes["window"] = tuple(changes["window"])
    return dataclasses.replace(base, **changes)


def _jsonable(settings: DecaySettings) -> dict[str, Any]:
    out = dataclasses.asdict(settings)
    out["amplitudes"] = settings.amplitudes().tolist()
    return out


def _free(settings: DecaySettings) -> str:
    """The searched settings (and the horizon they imply) as one line."""
    fields = (*SEARCH_GRID, "num_steps", "energy", "accumulate")
    return ", ".join(f"{k}={getattr(settings, k)}" for k in fields)


def _rows(table: DecayTable) -> dict[str, Any]:
    return {
        label: {
            "variable": fit.variable,
            "lambda": fit.lam.tolist(),
            "r2": fit.r2.tolist(),
            "lambda_t": fit.lam_t.tolist(),
            "r2_t": fit.r2_t.tolist(),
            "lambda_tau": fit.lam_tau.tolist(),
            "r2_tau": fit.r2_tau.tolist(),
            "paper": list(PAPER_TABLE[label]) if label in PAPER_TABLE else None,
        }
        for label, fit in table.rows.items()
    }


def _score_line(score: dict[str, float]) -> str:
    return f"max |diff| {score['max_abs_diff']:.3f}, mean {score['mean_abs_diff']:.3f}"


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit status.

    Examples:
      >>> main(["--num-steps", "200", "--window", "0", "1", "--json"])
      ... # doctest: +ELLIPSIS
      {...}
      0
    """
    args = _parser().parse_args(argv)
    settings = parse_settings(args)
    table = decay_table(settings)
    result: dict[str, Any] = {
        "settings": _jsonable(settings),
        "modes": list(table.modes),
        "rows": _rows(table),
        "paper_comparison": compare_with_paper(table),
        "verdicts": verdicts(table),
    }
    if args.readings:
        result["readings"] = {
            name: {
                "settings": _jsonable(s),
                "paper_comparison": compare_with_paper(t),
                "rows": _rows(t),
            }
            for name, (s, t) in readings(settings).items()
        }
    found = refined = None
    over: dict[str, Any] = {}
    if args.search:
        start = time.perf_counter()
        found = search_settings(SEARCH_GRID, settings, top=args.top)
        searched = time.perf_counter() - start
        refined = refine_settings(found.ranked[0][0])
        result["search"] = {
            "settings": found.num_settings,
            "seconds": searched,
            "best": [{"settings": _jsonable(s), **sc} for s, sc in found.ranked],
            "refined": {
                "settings": _jsonable(refined.ranked[0][0]),
                **refined.ranked[0][1],
                "settings_scored": refined.num_settings,
                "seconds": time.perf_counter() - start - searched,
            },
        }
        over["fit"] = {
            "max_abs_diff_at_most": FIT_MAX_ABS_DIFF,
            **found.verdicts["fit"],
        }
        over["top"] = {"fraction": TOP_FRACTION, **found.verdicts["top"]}
    if args.robustness:
        band = robustness_band(settings, BAND_FIELDS, draws=args.draws, seed=args.seed)
        result["robustness"] = band
        over["band"] = {"settings": args.draws, "holds": band["verdicts_hold"]}
    if over:
        result["verdicts_over_settings"] = over
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"protocol: {_free(settings)}\n")
    print(format_table(table))
    print(f"\nvs paper (48 cells): {_score_line(result['paper_comparison'])}")
    for name, v in result["verdicts"].items():
        numbers = {k: x for k, x in v.items() if k != "holds"}
        print(f"{name}: {'holds' if v['holds'] else 'does not hold'} {numbers}")
    if args.readings:
        print("\nreadings (one setting changed from the protocol above):")
        for name, entry in result["readings"].items():
            print(f"  {name:<26} {_score_line(entry['paper_comparison'])}")
        for name, (_, other) in readings(settings).items():
            if name != "default":
                print(f"\n{name}:\n{format_table(other)}")
    if found is not None and refined is not None:
        s = result["search"]
        print(
            f"\nsearch over {s['settings']} settings ({s['seconds']:.0f} s), "
            "best max |diff| first:"
        )
        for best, score in found.ranked:
            print(f"  {_score_line(score)}: {_free(best)}")
        r = s["refined"]
        print(
            f"refined ({r['settings_scored']} settings, {r['seconds']:.0f} s): "
            f"{_score_line(r)}: {_free(refined.ranked[0][0])}"
        )
    if args.robustness:
        band = result["robustness"]
        j = band["joint"]
        print(f"\nrobustness, +-20 % on {', '.join(BAND_FIELDS)}:")
        for e in band["one_at_a_time"]:
            print(f"  {e['field']} x{e['factor']:.1f}: {_score_line(e)}")
        print(
            f"  jointly, {j['draws']} draws: max |diff| median {j['median_max']:.3f} "
            f"worst {j['worst_max']:.3f}; mean median {j['median_mean']:.3f} "
            f"worst {j['worst_mean']:.3f}"
        )
    if over:
        print("\nverdicts over settings (fraction in which each holds):")
        for name, entry in over.items():
            holds = ", ".join(f"{k} {v:.2f}" for k, v in entry["holds"].items())
            print(f"  {_OVER[name]} ({entry['settings']}): {holds}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
