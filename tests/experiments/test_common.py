"""One battery over every paper experiment: its ``--quick --json`` and text report.

In the manner of optax's ``contrib/_common_test.py``: the experiments are read
from :data:`nsf_optax.experiments.report.EXPERIMENTS`, so a new one is tested
here without an edit. Each experiment's quick run happens once; its JSON, text
report and figures are drawn from it.
"""

import contextlib
import dataclasses
import io
import json
import re

import pytest

from nsf_optax.experiments import report

_NAMES = sorted(report.EXPERIMENTS)
_RESULTS: dict[str, object] = {}


def _cached(name):
    """The experiment, its ``run`` recording (then reusing) the quick result."""
    exp = report.experiment(name)

    def run(settings, figures):
        if name not in _RESULTS:
            assert settings == exp.quick(), "--quick runs the quick settings"
            _RESULTS[name] = exp.run(settings, True)
        return _RESULTS[name]

    return dataclasses.replace(exp, run=run)


def _main(name, argv):
    """``(status, stdout, stderr)`` of the command line, in-process."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = report.main(_cached(name), argv)
    return status, out.getvalue(), err.getvalue()


def _strict(constant):
    raise AssertionError(f"not strict JSON: {constant}")


@pytest.mark.parametrize("name", _NAMES)
def test_quick_json_text_and_plots(name, tmp_path):
    # One test per experiment, so that its quick run happens once (also under
    # pytest-xdist, which may send tests of one module to different workers).
    status, out, _ = _main(name, ["--quick", "--json"])
    assert status == 0
    data = json.loads(out, parse_constant=_strict)
    keys = {"experiment", "evidence", "evidence_note", "settings", "verdicts"}
    assert keys | {"verdict_details"} <= set(data)
    assert data["experiment"] == name
    assert data["evidence"] is False and "not evidence" in data["evidence_note"]
    assert data["verdicts"], "an experiment scores at least one claim"
    for claim, holds in data["verdicts"].items():
        assert holds is None or isinstance(holds, bool), (claim, holds)
    status, text, _ = _main(name, ["--quick"])
    assert status == 0 and "not evidence" in text
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    status, _, _ = _main(name, ["--quick", "--plots", str(tmp_path), "--json"])
    assert status == 0
    names = [p.name for p in tmp_path.iterdir()]
    assert names and all(n.endswith(".png") for n in names)


@pytest.mark.parametrize("name", _NAMES)
def test_usage_mistake_is_one_line_and_status_2(name):
    status, out, err = _main(name, ["--quick", "--no_such_flag"])
    assert status == 2 and not out
    assert err.count("\n") == 1 and "error: unrecognized arguments" in err


@pytest.mark.parametrize("name", _NAMES)
@pytest.mark.parametrize("steps", ["0", "-1"])
def test_a_bad_setting_is_one_line_and_status_2(name, steps):
    status, out, err = _main(name, ["--num_steps", steps])
    assert status == 2 and not out
    assert err.count("\n") == 1 and "num_steps must be" in err, err


@pytest.mark.parametrize("name", _NAMES)
def test_help_spells_flags_with_underscores(name):
    out = io.StringIO()
    with pytest.raises(SystemExit) as exit_, contextlib.redirect_stdout(out):
        report.main(report.experiment(name), ["--help"])
    assert exit_.value.code == 0
    flags = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9_-]*", out.getvalue()))
    assert {"--quick", "--json", "--plots"} <= flags
    assert not [f for f in flags if "-" in f[2:]], "hyphen spellings are hidden"


def test_full_size_runs_are_evidence():
    note = report.evidence(False, ["num_steps"])
    assert note["evidence"] is True and "num_steps" in note["evidence_note"]


def test_old_spelling_works_with_a_notice():
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        argv = ["--quick", "--num-steps", "100", "--json"]
        assert report.main(report.experiment("density"), argv) == 0
    err = err.getvalue()
    assert "--num-steps is now --num_steps" in err


def test_to_json_is_strict():
    text = json.dumps(report.to_json({"a": float("inf"), 0.5: [float("nan")]}))
    assert json.loads(text, parse_constant=_strict) == {"a": None, "0.5": [None]}
