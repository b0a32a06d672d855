"""Does ``p`` steer a network's spectral bias? The paper's thesis on a ReLU MLP.

Rahaman et al.'s spectral-bias experiment (a ReLU MLP fitting a sum of
sinusoids, full batch) trained with :func:`nsf_optax.nsf` at constant ``p``,
a cosine-tidal and a pulse-tidal ``p``, each with and without
``normalize="rms"``, and scored against three readings of the paper's
Sec. 3.2-3.3 thesis (see :func:`bias_verdicts`).

Usage::

  python -m nsf_optax.experiments.bias            # table and verdicts
  python -m nsf_optax.experiments.bias --json     # one JSON object
  python -m nsf_optax.experiments.bias --quick    # a smoke test (CI)
  python -m nsf_optax.experiments.bias --plots DIR

Settings and result types in :mod:`nsf_optax.experiments.bias.settings`, the
model, target and batched training program in
:mod:`nsf_optax.experiments.bias.model`, the tuning and evaluation batches in
:mod:`nsf_optax.experiments.bias.train`, the verdicts in
:mod:`nsf_optax.experiments.bias.verdicts`, the figures in
:mod:`nsf_optax.experiments.bias.figures`; their public names are re-exported
here, with the run and its :class:`~nsf_optax.experiments.report.Experiment`
record.
"""

import argparse
import dataclasses
import json
from typing import Any

import numpy as np

from nsf_optax.experiments import report
from nsf_optax.experiments.bias import figures
from nsf_optax.experiments.bias import verdicts as bias_claims
from nsf_optax.experiments.bias.model import (
    BiasTrace,
    init_relu_mlp,
    make_sine_target,
    relu_mlp_apply,
)
from nsf_optax.experiments.bias.settings import (
    BiasResult,
    BiasRow,
    BiasSettings,
    check_settings,
)
from nsf_optax.experiments.bias.train import draw_data, train_normalize
from nsf_optax.experiments.bias.verdicts import bias_verdicts
from nsf_optax.spectral._frequency import time_to_learn

__all__ = [
    "EXPERIMENT",
    "BiasResult",
    "BiasRow",
    "BiasSettings",
    "BiasTrace",
    "bias_experiment",
    "bias_verdicts",
    "format_table",
    "init_relu_mlp",
    "main",
    "make_sine_target",
    "relu_mlp_apply",
    "result_json",
]

_DEFAULTS = BiasSettings()


def bias_experiment(settings: BiasSettings = _DEFAULTS) -> BiasResult:
    r"""Tunes, trains and measures every setting; scores the claims.

    Every setting (a p schedule with one ``normalize``) gets its own learning
    rate from ``lr_grid``: the one with the lowest mean over the run of
    :math:`\log_{10}` training loss, averaged over ``tune_seeds`` (a diverged
    run scores :math:`+\infty`). It is then trained on ``seeds`` (the same inits
    and targets for every setting) and the per-frequency relative error
    :math:`|\hat f_\theta(k) - \hat f(k)| / |\hat f(k)|` is logged after every
    step; every ``probe_every`` steps the paper's Eq. 4 bridge is probed (see
    :class:`BiasTrace`). All runs of one ``normalize`` share one compiled
    program (``jit`` of a ``vmap`` over runs of a ``lax.scan`` over steps).

    Args:
      settings: :class:`BiasSettings`.

    Returns:
      A :class:`BiasResult`.

    Examples:
      >>> from nsf_optax.experiments.bias.experiment import (
      ...     BiasSettings,
      ...     bias_experiment,
      ... )
      >>> res = bias_experiment(BiasSettings.quick())  # about 15 s on a CPU
      >>> sorted(res.time_to_learn)[:4]
      ['cosine[-0.5,0.5]', 'cosine[-0.5,0.5] rms', 'p=-0.25', 'p=-0.25 rms']
      >>> res.time_to_learn["p=0.5"].shape  # [seeds, freqs]
      (2, 6)
      >>> sorted(result_json(res)["verdict_details"])[:4]
      ['a', 'b', 'c', 'eq4']
      >>> bias_verdicts(res)[1]["b"]["holds"] == res.verdicts["b"]["holds"]
      True
      >>> print(format_table(res).splitlines()[1].split()[0])
      p=-0.5

    References:
      Rahaman et al., `On the Spectral Bias of Neural Networks
      <https://arxiv.org/abs/1806.08734>`_, ICML 2019.

      Zhang & Liu, arXiv:2509.04713, 2025, Sec. 3.2-3.3.
    """
    s = settings
    check_settings(s)
    # One draw for all seeds: one compilation.
    data = draw_data(s, s.tune_seeds + s.seeds)
    rows, traces = [], {}
    for normalize in s.normalizes:
        more_rows, more_traces = train_normalize(s, normalize, data)
        rows += more_rows
        traces.update(more_traces)
    steps = np.arange(s.num_steps + 1)
    ttl = {
        key: np.asarray(time_to_learn(t.errors, steps, s.threshold), np.float64)
        for key, t in traces.items()
    }
    result = BiasResult(
        settings=s,
        rows=rows,
        errors={k: t.errors for k, t in traces.items()},
        loss={k: t.loss for k, t in traces.items()},
        time_to_learn=ttl,
        probe_steps=np.arange(1, s.num_steps // s.probe_every + 1) * s.probe_every,
        kernel_gain={k: t.kernel_gain for k, t in traces.items()},
        kernel={k: t.kernel for k, t in traces.items()},
        log_nu={k: t.log_nu for k, t in traces.items()},
        summary={},
        verdicts={},
    )
    summary, verdicts = bias_verdicts(result)
    verdicts["threshold_sensitivity"] = {
        f"{t:g}": {
            c: v["holds"]
            for c, v in bias_verdicts(result, t)[1].items()
            if c in ("a", "b", "c")
        }
        for t in s.sensitivity_thresholds
    }
    return result._replace(summary=summary, verdicts=verdicts)


def result_json(result: BiasResult) -> dict[str, Any]:
    """The JSON object of the command line: settings, time to learn, verdicts.

    Returns:
      ``{"settings", "time_to_learn", "summary", "verdict_details"}`` (the settings
      with a ``rows`` list: each setting's schedule, ``normalize``, mean p and
      tuned learning rate); ``time_to_learn[row][k]`` lists one step per seed
      (``None``: never). Non-finite numbers are ``None`` (strict JSON).

    Examples:
      See :func:`bias_experiment`.
    """
    s = result.settings
    return {
        "settings": {
            **dataclasses.asdict(s),
            "rows": [
                {
                    "key": r.key,
                    "schedule": r.schedule,
                    "normalize": r.normalize,
                    **r.description,
                    "mean_p": r.mean_p,
                    "lr": r.lr,
                    "tune_mean_log10_loss": list(r.tune_score),
                    "lr_at_edge": r.lr_at_edge,
                }
                for r in result.rows
            ],
        },
        "time_to_learn": {
            key: {
                str(k): [None if np.isnan(v) else int(v) for v in t[:, j]]
                for j, k in enumerate(s.freqs)
            }
            for key, t in result.time_to_learn.items()
        },
        "summary": report.to_json(result.summary),
        "verdict_details": report.to_json(result.verdicts),
    }


def format_table(result: BiasResult) -> str:
    """The per-setting table as text (bands: log10 steps, mean +- 95 % CI).

    Examples:
      See :func:`bias_experiment`.
    """
    lines = [
        f"{'setting':<24}{'lr':>9}  {'low band':>11}  {'high band':>11}  "
        f"{'high - low':>11}  {'area H - L':>11}  learned  log10 loss"
    ]
    for row in result.rows:
        m = result.summary[row.key]

        def f(d):
            return f"{d['mean']:.2f}±{d['ci95']:.2f}"

        lines.append(
            f"{row.key:<24}{row.lr:>9.2e}{'*' if row.lr_at_edge else ' '} "
            f"{f(m['low_band_log10_steps']):>11}  {f(m['high_band_log10_steps']):>11}  "
            f"{f(m['log10_ratio_high_low']):>11}  "
            f"{f(m['log10_error_area_high_minus_low']):>11}  "
            f"{m['learned_fraction']:>6.0%}{' ' if m['complete'] else '+'}  "
            f"{m['final_log10_loss']['mean']:.2f}"
        )
    lines.append(
        "bands: log10 steps to learn, mean±95% CI over seeds; area: mean log10 "
        "error over the run"
    )
    lines.append(
        "* lr at the edge of its grid; + censored (a band frequency never learned "
        "in some seed)"
    )
    return "\n".join(lines)


# The command line: flags, settings, the report.


def _add_flags(parser: argparse.ArgumentParser) -> None:
    report.add_flag(parser, "num_steps", type=int, help="override num_steps")
    report.add_flag(parser, "num_seeds", type=int, help="override the number of seeds")
    report.add_flag(
        parser, "first_seed", type=int, default=0, help="evaluation seeds start here"
    )
    report.add_flag(parser, "threshold", type=float, help="override threshold")


def _settings(base: BiasSettings, args: argparse.Namespace) -> BiasSettings:
    s = report.replace_given(base, args, ["num_steps", "threshold"])
    if args.num_seeds is not None or args.first_seed:
        n = len(s.seeds) if args.num_seeds is None else args.num_seeds
        first = args.first_seed
        s = dataclasses.replace(s, seeds=tuple(range(first, first + n)))
    check_settings(s)
    return s


def _text(result: BiasResult) -> str:
    lines = [format_table(result)]
    lines.append(f"\nverdicts at relative error < {result.verdicts['threshold']:g}:")
    for name in bias_claims.CLAIMS:
        v = result.verdicts[name]
        lines.append(f"\n({name}) {v['claim']}: holds={v['holds']}")
        for case, c in v["cases"].items():
            lines.append(f"  {case}: {json.dumps(report.to_json(c))}")
    sensitivity = json.dumps(result.verdicts["threshold_sensitivity"])
    lines.append(f"\nat other thresholds: {sensitivity}")
    return "\n".join(lines)


def _run(settings: BiasSettings, figures: bool) -> BiasResult:
    del figures  # every figure draws from what the run keeps anyway
    return bias_experiment(settings)


EXPERIMENT = report.Experiment(
    name="bias",
    description=(
        "Spectral bias of a ReLU MLP fitting a sum of sinusoids, trained with "
        "nsf_optax.nsf at constant p, a cosine-tidal and a pulse-tidal p, with "
        "and without normalize='rms'; time to learn each frequency over seeds "
        "and verdicts on the paper's claims (arXiv:2509.04713, Sec. 3.2)."
    ),
    defaults=lambda: _DEFAULTS,
    quick=BiasSettings.quick,
    add_flags=_add_flags,
    settings=_settings,
    run=_run,
    verdicts=bias_claims.claims,
    to_json=result_json,
    text=_text,
    figures=figures.figures,
)


main = report.command(EXPERIMENT)
