"""The decay experiment's command line: its flags, run and report.

What the shared command line (:mod:`nsf_optax.experiments.report`) runs for
``python -m nsf_optax.experiments.decay``: the table under one protocol, and on
request the other readings, the settings search and the robustness band.
"""

import argparse
import dataclasses
import time
from typing import Any, NamedTuple

from nsf_optax.experiments import report
from nsf_optax.experiments.decay import figures
from nsf_optax.experiments.decay import verdicts as decay_verdicts
from nsf_optax.experiments.decay.band import BAND_FIELDS, robustness_band
from nsf_optax.experiments.decay.search import (
    FIT_MAX_ABS_DIFF,
    SEARCH_GRID,
    TOP_FRACTION,
    DecaySearch,
    refine_settings,
    search_settings,
)
from nsf_optax.experiments.decay.settings import (
    ACCUMULATE,
    ENERGY,
    REGRESSION,
    T_FIT_SETTINGS,
    TAU_ENERGY,
    TAU_EXPONENT,
    DecaySettings,
)
from nsf_optax.experiments.decay.table import (
    PAPER_TABLE,
    DecayTable,
    compare_with_paper,
    decay_table,
    format_table,
    readings,
)

__all__ = ["EXPERIMENT", "DecayOptions", "DecayReport", "protocol", "run_options"]

# Command-line options for the DecaySettings fields: (type, help).
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
# Flags of the analyses beside the table, DecayOptions fields: (type, help); a
# type None is a switch.
_ANALYSES = {
    "readings": (None, "the table under each other reading"),
    "search": (
        None,
        "search SEARCH_GRID, refine its best, verdicts over its settings (~3 min)",
    ),
    "top": (int, "search results to show (default 5)"),
    "robustness": (None, "+-20%% band around the settings, verdicts over its draws"),
    "draws": (int, "joint draws of the band (default 30)"),
    "seed": (int, "seed of the joint draws (default 0)"),
}
# --quick: a shorter horizon and window (the verdicts there are no evidence).
_QUICK_SIZE = {"num_steps": 200, "window": (0.0, 2.0)}

# How the command line names each set of settings the verdicts are counted over.
_OVER = {
    "fit": f"search settings with max |diff| <= {FIT_MAX_ABS_DIFF}",
    "top": f"best {TOP_FRACTION:.0%} of the search",
    "band": "+-20 % band, joint draws",
}


@dataclasses.dataclass(frozen=True)
class DecayOptions:
    """What one command runs: a protocol and the optional analyses.

    Attributes:
      settings: the protocol of the table.
      readings: also the table under each other reading of the text.
      search: also search :data:`SEARCH_GRID`, refine its best, and count the
        verdicts over its settings (about 3 minutes).
      top: search results shown.
      robustness: also the +-20 % band around ``settings``, and the verdicts
        over its draws.
      draws: joint draws of the band.
      seed: seed of the joint draws.
    """

    settings: DecaySettings = DecaySettings()
    readings: bool = False
    search: bool = False
    top: int = 5
    robustness: bool = False
    draws: int = 30
    seed: int = 0


class DecayReport(NamedTuple):
    """What :func:`run_options` computed (``None``: not asked for)."""

    options: DecayOptions
    table: DecayTable
    readings: dict[str, tuple[DecaySettings, DecayTable]] | None
    search: dict[str, Any] | None  # the JSON of the search and its refinement
    found: tuple[DecaySearch, DecaySearch] | None  # (search, refinement)
    band: dict[str, Any] | None  # robustness_band's answer


def _add_flags(parser: argparse.ArgumentParser) -> None:
    report.add_flags(parser, _OPTIONS)
    for field, (choices, text) in _CHOICES.items():
        report.add_flag(parser, field, choices=choices, help=text)
    report.add_flag(
        parser,
        "window",
        type=float,
        nargs=2,
        metavar=("T0", "T1"),
        help="fit window in t",
    )
    report.add_flag(
        parser,
        "t_fit",
        action="store_true",
        help="start from the earlier settings: every row fitted against t",
    )
    for field, (kind, text) in _ANALYSES.items():
        if kind is None:  # a switch; None when not given, like the others
            report.add_flag(parser, field, action="store_true", default=None, help=text)
        else:
            report.add_flag(parser, field, type=kind, help=text)


def protocol(args: argparse.Namespace) -> DecaySettings:
    """The :class:`DecaySettings` the flags ask for (see ``parse_settings``)."""
    base = T_FIT_SETTINGS if args.t_fit else DecaySettings()
    if getattr(args, "quick", False):
        base = dataclasses.replace(base, **_QUICK_SIZE)
    changes = {
        field: getattr(args, field)
        for field in (*_OPTIONS, *_CHOICES, "window")
        if getattr(args, field) is not None
    }
    if "window" in changes:
        changes["window"] = tuple(changes["window"])
    return dataclasses.replace(base, **changes)


def _options(base: DecayOptions, args: argparse.Namespace) -> DecayOptions:
    # The protocol's start depends on --t_fit and --quick: see protocol().
    base = dataclasses.replace(base, settings=protocol(args))
    return report.replace_given(base, args, list(_ANALYSES))


def _jsonable(settings: DecaySettings) -> dict[str, Any]:
    out = dataclasses.asdict(settings)
    out["amplitudes"] = settings.amplitudes().tolist()
    return out


def _search(settings: DecaySettings, top: int):
    """The search and its refinement, and their JSON."""
    start = time.perf_counter()
    found = search_settings(SEARCH_GRID, settings, top=top)
    searched = time.perf_counter() - start
    refined = refine_settings(found.ranked[0][0])
    out = {
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
    return (found, refined), out


def run_options(options: DecayOptions) -> DecayReport:
    """Runs the table and the analyses ``options`` asks for.

    Returns:
      A :class:`DecayReport`.
    """
    s = options.settings
    found = search = band = None
    if options.search:
        found, search = _search(s, options.top)
    if options.robustness:
        band = robustness_band(s, BAND_FIELDS, draws=options.draws, seed=options.seed)
    return DecayReport(
        options=options,
        table=decay_table(s),
        readings=readings(s) if options.readings else None,
        search=search,
        found=found,
        band=band,
    )


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


def _over(result: DecayReport) -> dict[str, Any]:
    """The verdicts counted over settings: the search's and the band's."""
    over: dict[str, Any] = {}
    if result.found is not None:
        found = result.found[0]
        over["fit"] = {
            "max_abs_diff_at_most": FIT_MAX_ABS_DIFF,
            **found.verdicts["fit"],
        }
        over["top"] = {"fraction": TOP_FRACTION, **found.verdicts["top"]}
    if result.band is not None:
        over["band"] = {
            "settings": result.options.draws,
            "holds": result.band["verdicts_hold"],
        }
    return over


def _json(result: DecayReport) -> dict[str, Any]:
    table = result.table
    out: dict[str, Any] = {
        "settings": _jsonable(result.options.settings),
        "verdict_details": decay_verdicts.verdicts(table),
        "modes": list(table.modes),
        "rows": _rows(table),
        "paper_comparison": compare_with_paper(table),
    }
    if result.readings is not None:
        out["readings"] = {
            name: {
                "settings": _jsonable(s),
                "paper_comparison": compare_with_paper(t),
                "rows": _rows(t),
            }
            for name, (s, t) in result.readings.items()
        }
    if result.search is not None:
        out["search"] = result.search
    if result.band is not None:
        out["robustness"] = result.band
    if over := _over(result):
        out["verdicts_over_settings"] = over
    return out


def _free(settings: DecaySettings) -> str:
    """The searched settings (and the horizon they imply) as one line."""
    fields = (*SEARCH_GRID, "num_steps", "energy", "accumulate")
    return ", ".join(f"{k}={getattr(settings, k)}" for k in fields)


def _score_line(score: dict[str, float]) -> str:
    return f"max |diff| {score['max_abs_diff']:.3f}, mean {score['mean_abs_diff']:.3f}"


def _text_table(table: DecayTable) -> list[str]:
    lines = [f"protocol: {_free(table.settings)}\n", format_table(table)]
    lines.append(f"\nvs paper (48 cells): {_score_line(compare_with_paper(table))}")
    for name, v in decay_verdicts.verdicts(table).items():
        numbers = {k: x for k, x in v.items() if k != "holds"}
        lines.append(f"{name}: {'holds' if v['holds'] else 'does not hold'} {numbers}")
    return lines


def _text_readings(found: dict[str, tuple[DecaySettings, DecayTable]]) -> list[str]:
    lines = ["\nreadings (one setting changed from the protocol above):"]
    for name, (_, t) in found.items():
        lines.append(f"  {name:<26} {_score_line(compare_with_paper(t))}")
    for name, (_, other) in found.items():
        if name != "default":
            lines.append(f"\n{name}:\n{format_table(other)}")
    return lines


def _text_search(search: dict[str, Any], found: DecaySearch, refined: DecaySearch):
    lines = [
        f"\nsearch over {search['settings']} settings ({search['seconds']:.0f} s), "
        "best max |diff| first:"
    ]
    lines += [f"  {_score_line(score)}: {_free(best)}" for best, score in found.ranked]
    r = search["refined"]
    lines.append(
        f"refined ({r['settings_scored']} settings, {r['seconds']:.0f} s): "
        f"{_score_line(r)}: {_free(refined.ranked[0][0])}"
    )
    return lines


def _text_band(band: dict[str, Any]) -> list[str]:
    j = band["joint"]
    lines = [f"\nrobustness, +-20 % on {', '.join(BAND_FIELDS)}:"]
    for e in band["one_at_a_time"]:
        lines.append(f"  {e['field']} x{e['factor']:.1f}: {_score_line(e)}")
    lines.append(
        f"  jointly, {j['draws']} draws: max |diff| median {j['median_max']:.3f} "
        f"worst {j['worst_max']:.3f}; mean median {j['median_mean']:.3f} "
        f"worst {j['worst_mean']:.3f}"
    )
    return lines


def _text(result: DecayReport) -> str:
    lines = _text_table(result.table)
    if result.readings is not None:
        lines += _text_readings(result.readings)
    if result.search is not None and result.found is not None:
        lines += _text_search(result.search, *result.found)
    if result.band is not None:
        lines += _text_band(result.band)
    if over := _over(result):
        lines.append("\nverdicts over settings (fraction in which each holds):")
        for name, entry in over.items():
            holds = ", ".join(f"{k} {v:.2f}" for k, v in entry["holds"].items())
            lines.append(f"  {_OVER[name]} ({entry['settings']}): {holds}")
    return "\n".join(lines)


EXPERIMENT = report.Experiment(
    name="decay",
    description=(
        "Early-time decay constants lambda_k of the paper's 1-D model "
        "de/dt = -eta e / (E + eps)^p(t) (arXiv:2509.04713, Sec. 4.1), for "
        "constant p in {-0.5, -0.25, 0, 0.25, 0.5} and three cosine-tidal "
        "ranges, beside the paper's table. Unset options take DecaySettings' "
        "defaults (or T_FIT_SETTINGS' with --t_fit)."
    ),
    defaults=DecayOptions,
    quick=lambda: DecayOptions(dataclasses.replace(DecaySettings(), **_QUICK_SIZE)),
    add_flags=_add_flags,
    settings=_options,
    run=lambda options, _: run_options(options),
    verdicts=lambda result: decay_verdicts.claims(result.table),
    to_json=_json,
    text=_text,
    figures=lambda result: figures.figures(result.table),
    protocol=lambda options: options.settings,
)
