"""One command line and one report for the paper's experiments.

Every paper experiment (``decay``, ``density``, ``boundary``, ``bias``) is one
folder of the same shape and one :class:`Experiment` record:

* ``settings.py``: a frozen dataclass of its settings (and its result types, so
  that the command line, the verdicts and the figures all import them from one
  place);
* ``model.py``: what it simulates or trains;
* ``verdicts.py``: the paper's claims scored on a result;
* ``figures.py``: its matplotlib figures (imported lazily);
* ``experiment.py``: ``run(settings) -> result`` and its :class:`Experiment`
  record ``EXPERIMENT``; ``__main__.py`` calls :func:`main` with it.

:func:`main` owns what the four share: the flags ``--quick``, ``--json`` and
``--plots DIR``, one flag spelling (underscores: ``--num_steps``; the old
hyphen spellings still work for one release, hidden, with a one-line notice),
the text report, strict JSON (:func:`to_json`: NaN and infinities become
``null``), figure saving, and the launch prologue of every command (a usage
mistake is one line on stderr and exit status 2). Every report says whether its
verdicts are evidence: a ``--quick`` run is a smoke test (``"evidence": false``),
a full-size run records ``"evidence": true``.

A new experiment starts as a copy of the smallest one, ``density/``, registered
in :data:`EXPERIMENTS`. One test (``tests/experiments/test_common.py``) runs
every registered experiment's ``--quick --json`` through the same assertions.
"""

import argparse
import dataclasses
import importlib
import json
import math
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Generic, Protocol, TypeVar

import numpy as np

from nsf_optax.experiments.runner import cli
from nsf_optax.experiments.runner.errors import UsageError

__all__ = [
    "EXPERIMENTS",
    "Command",
    "Experiment",
    "add_flag",
    "add_flags",
    "command",
    "evidence",
    "experiment",
    "main",
    "parser",
    "replace_given",
    "report_json",
    "report_text",
    "save_figures",
    "to_json",
]

# name -> the module whose ``EXPERIMENT`` is that experiment (imported on demand).
EXPERIMENTS: dict[str, str] = {
    "decay": "nsf_optax.experiments.decay.experiment",
    "density": "nsf_optax.experiments.density.experiment",
    "boundary": "nsf_optax.experiments.boundary.experiment",
    "bias": "nsf_optax.experiments.bias.experiment",
}

S = TypeVar("S")
R = TypeVar("R")

_QUICK_NOTE = (
    "quick run: a smoke test of the code path at a small size; its verdicts are "
    "not evidence (run without --quick for the published size)"
)


@dataclasses.dataclass(frozen=True)
class Experiment(Generic[S, R]):
    """One paper experiment, as the shared command line runs it.

    Attributes:
      name: the command is ``python -m nsf_optax.experiments.<name>``.
      description: the ``--help`` text.
      defaults: the full-size settings (the published run).
      quick: the ``--quick`` settings, a smoke-test size.
      add_flags: adds the experiment's own flags to the parser (with
        :func:`add_flag`: underscore spelling, hyphen alias).
      settings: ``(base, args) -> settings``: the flags applied to ``base``
        (``defaults`` or ``quick``); a ``ValueError`` or ``TypeError`` here is a
        usage mistake (one line, exit status 2).
      run: ``(settings, figures) -> result``; ``figures`` says whether
        :attr:`figures` will be drawn (what only they need may be skipped).
      verdicts: ``result -> {claim: True, False or None}`` (None: not decided).
      to_json: ``result -> dict``: its ``"settings"``, its
        ``"verdict_details"`` (the numbers behind each verdict) and what else
        the report carries (tables); :func:`to_json` makes strict JSON of it.
      text: ``result -> str``: the text report.
      figures: ``result -> {file name: matplotlib figure}``.
      protocol: ``settings -> the part the published run fixes``; the evidence
        note names its fields that differ from the defaults' (by default the
        whole settings; an experiment whose settings also choose optional
        analyses leaves those out).
    """

    name: str
    description: str
    defaults: Callable[[], S]
    quick: Callable[[], S]
    add_flags: Callable[[argparse.ArgumentParser], None]
    settings: Callable[[S, argparse.Namespace], S]
    run: Callable[[S, bool], R]
    verdicts: Callable[[R], Mapping[str, bool | None]]
    to_json: Callable[[R], dict[str, Any]]
    text: Callable[[R], str]
    figures: Callable[[R], Mapping[str, Any]]
    protocol: Callable[[S], Any] = lambda settings: settings


def experiment(name: str) -> Experiment:
    """The registered experiment called ``name`` (a key of :data:`EXPERIMENTS`).

    Raises:
      KeyError: naming the registered experiments.
    """
    if name not in EXPERIMENTS:
        raise KeyError(f"unknown experiment {name!r}; choose from {list(EXPERIMENTS)}")
    return importlib.import_module(EXPERIMENTS[name]).EXPERIMENT


def to_json(obj: Any) -> Any:
    """``obj`` as strict-JSON-ready Python: NaN and infinities become ``None``.

    Dataclasses become dicts, NumPy arrays and scalars lists and numbers,
    tuples lists, and dict keys strings (``str(0.5) == "0.5"``).

    Examples:
      >>> to_json({0.5: (1.0, float("nan")), "k": np.arange(2)})
      {'0.5': [1.0, None], 'k': [0, 1]}
    """
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        obj = dataclasses.asdict(obj)
    if isinstance(obj, Mapping):
        return {str(k): to_json(v) for k, v in obj.items()}
    if isinstance(obj, np.ndarray):
        return to_json(obj.tolist())
    if isinstance(obj, list | tuple):
        return [to_json(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def evidence(quick: bool, changed: Sequence[str] = ()) -> dict[str, Any]:
    """Whether a run's verdicts are evidence, and the sentence that says why.

    Args:
      quick: the run used the ``--quick`` size.
      changed: the settings fields that differ from the published run.

    Returns:
      ``{"evidence": bool, "evidence_note": str}``.

    Examples:
      >>> evidence(True)["evidence"]
      False
    """
    if quick:
        return {"evidence": False, "evidence_note": _QUICK_NOTE}
    note = "full-size run"
    if changed:
        note += f"; settings changed from the published run: {', '.join(changed)}"
    return {"evidence": True, "evidence_note": note}


def replace_given(base: S, args: argparse.Namespace, fields: Sequence[str]) -> S:
    """``base`` with each of ``fields`` whose flag was given (not None) replaced.

    Args:
      base: a settings dataclass.
      args: the parsed flags; each field's flag has ``dest`` the field's name
        and default ``None``.
      fields: the fields to take from the flags.

    Returns:
      The new settings (``dataclasses.replace``: its checks run again).
    """
    given = {f: getattr(args, f) for f in fields if getattr(args, f) is not None}
    return dataclasses.replace(base, **given)  # pyright: ignore[reportArgumentType]


def _changed(settings: Any, defaults: Any, prefix: str = "") -> list[str]:
    """The fields of two settings dataclasses that differ, nested ones dotted."""
    if not (dataclasses.is_dataclass(settings) and type(settings) is type(defaults)):
        return [prefix.rstrip(".")] if prefix and settings != defaults else []
    out = []
    for f in dataclasses.fields(settings):
        new, old = getattr(settings, f.name), getattr(defaults, f.name)
        if dataclasses.is_dataclass(new):
            out += _changed(new, old, f"{prefix}{f.name}.")
        elif new != old:
            out.append(prefix + f.name)
    return out


def report_json(
    exp: Experiment[S, R], result: R, note: Mapping[str, Any]
) -> dict[str, Any]:
    """The JSON report: experiment, evidence, settings, verdicts, the rest.

    Args:
      exp: the experiment.
      result: what its ``run`` returned.
      note: :func:`evidence`'s answer.

    Returns:
      Strict-JSON-ready ``{"experiment", "evidence", "evidence_note",
      "settings", "verdicts", "verdict_details", ...}``; ``verdicts`` maps each
      claim to ``True``, ``False`` or ``None``.
    """
    body = dict(exp.to_json(result))
    verdicts = exp.verdicts(result)
    out = {
        "experiment": exp.name,
        **note,
        "settings": body.pop("settings"),
        "verdicts": {k: None if v is None else bool(v) for k, v in verdicts.items()},
        **body,
    }
    return to_json(out)


def report_text(exp: Experiment[S, R], result: R, note: Mapping[str, Any]) -> str:
    """The text report: the experiment's own text, then the evidence line."""
    head = "NOTE: " if not note["evidence"] else ""
    return f"{exp.text(result)}\n\n{head}{note['evidence_note']}"


def save_figures(figures: Mapping[str, Any], directory: str) -> list[str]:
    """Saves each ``{file name: figure}`` under ``directory`` (created); closes them.

    Returns:
      The paths written.
    """
    import matplotlib.pyplot as plt  # lazy: only --plots needs matplotlib

    os.makedirs(directory, exist_ok=True)
    paths = []
    for name, fig in figures.items():
        path = os.path.join(directory, name)
        fig.savefig(path, dpi=120)
        plt.close(fig)
        paths.append(path)
    return paths


class _Renamed(argparse.Action):
    """An old spelling of a flag: does what the new one does, after a notice."""

    def __init__(self, option_strings, dest, *, target: argparse.Action, **kwargs):
        kwargs.update(help=argparse.SUPPRESS, default=argparse.SUPPRESS)
        for key in ("nargs", "type", "choices", "metavar"):
            kwargs.setdefault(key, getattr(target, key))
        super().__init__(option_strings, dest, **kwargs)
        self.target = target

    def __call__(self, parser, namespace, values, option_string=None):
        new = self.target.option_strings[0]
        print(
            f"note: {option_string} is now {new}; the old spelling goes away in "
            "the next release",
            file=sys.stderr,
        )
        self.target(parser, namespace, values, new)


def add_flag(
    parser: argparse.ArgumentParser,
    name: str,
    *,
    old: Sequence[str] | None = None,
    **kwargs: Any,
) -> argparse.Action:
    """Adds ``--name`` (underscores) and its old spellings as hidden aliases.

    Args:
      parser: the parser.
      name: the flag's name, underscores between words (``num_steps``).
      old: the old spellings, each then a hidden alias that prints a one-line
        notice; by default the hyphen spelling (``--num-steps``) when it differs.
      **kwargs: passed to ``parser.add_argument``.

    Returns:
      The new flag's action.
    """
    action = parser.add_argument(f"--{name}", **kwargs)
    if old is None:
        hyphen = "--" + name.replace("_", "-")
        old = () if hyphen == f"--{name}" else (hyphen,)
    for spelling in old:
        parser.add_argument(spelling, dest=action.dest, action=_Renamed, target=action)
    return action


def add_flags(
    parser: argparse.ArgumentParser,
    flags: Mapping[str, tuple[Callable[[str], Any], str]],
) -> None:
    """:func:`add_flag` for each ``{name: (type, help)}``, default None.

    With :func:`replace_given`, a table of settings fields becomes their flags.
    """
    for name, (kind, text) in flags.items():
        add_flag(parser, name, type=kind, help=text)


def parser(exp: Experiment) -> argparse.ArgumentParser:
    """The command-line parser of ``exp``: its flags and the shared ones."""
    ap = cli.ArgumentParser(
        prog=f"python -m nsf_optax.experiments.{exp.name}",
        description=exp.description,
    )
    exp.add_flags(ap)
    ap.add_argument(
        "--quick",
        action="store_true",
        help="a small size: a smoke test, its verdicts are not evidence",
    )
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    add_flag(
        ap,
        "plots",
        old=("--figures",),
        metavar="DIR",
        help="save the figures (PNG, matplotlib) in DIR",
    )
    return ap


def _settings(exp: Experiment[S, R], args: argparse.Namespace) -> S:
    base = exp.quick() if args.quick else exp.defaults()
    try:
        return exp.settings(base, args)
    except (ValueError, TypeError) as e:
        raise UsageError(str(e)) from None


class Command(Protocol):
    """A command's ``main``: runs it on ``argv`` (default ``sys.argv[1:]``)."""

    def __call__(self, argv: Sequence[str] | None = None) -> int: ...


def command(exp: Experiment) -> Command:
    """``exp``'s ``main(argv=None) -> exit status``: :func:`main` bound to it."""

    def run(argv: Sequence[str] | None = None) -> int:
        return main(exp, argv)

    prog = f"python -m nsf_optax.experiments.{exp.name}"
    run.__doc__ = f"Runs ``{prog}`` with ``argv``; returns the exit status."
    return run


def main(exp: Experiment, argv: Sequence[str] | None = None) -> int:
    """Runs one experiment's command line; returns the exit status.

    Parses the flags, builds the settings, runs, prints the text report (or the
    JSON one with ``--json``) and saves the figures with ``--plots DIR``. A
    usage mistake (a bad flag or setting) is one line on stderr and status 2.

    Args:
      exp: the experiment.
      argv: the arguments (default: ``sys.argv[1:]``).

    Returns:
      0, or 2 after a usage mistake.
    """
    prog = f"python -m nsf_optax.experiments.{exp.name}"

    def body() -> None:
        args = parser(exp).parse_args(argv)
        settings = _settings(exp, args)
        result = exp.run(settings, args.plots is not None)
        changed = _changed(exp.protocol(settings), exp.protocol(exp.defaults()))
        note = evidence(args.quick, changed)
        if args.plots is not None:
            save_figures(exp.figures(result), args.plots)
        if args.json:
            print(json.dumps(report_json(exp, result, note), indent=2, allow_nan=False))
        else:
            print(report_text(exp, result, note))

    return cli.run(prog, body)
