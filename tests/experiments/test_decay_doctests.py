"""Runs the doctested examples of the decay experiment's modules and figures."""

import doctest

import pytest

from nsf_optax.experiments.decay import band, model, search, settings, table
from nsf_optax.experiments.decay import experiment as decay
from nsf_optax.experiments.decay import verdicts as decay_verdicts

_MODULES = [settings, model, table, decay_verdicts, search, band, decay]


@pytest.mark.parametrize("module", _MODULES, ids=lambda m: m.__name__)
def test_doctests(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"no doctest found in {module.__name__}"
    assert result.failed == 0, f"{result.failed} doctest(s) failed in {module.__name__}"


@pytest.mark.parametrize("name", ["plot_lambda_vs_k", "plot_decay_mosaic"])
def test_figure_doctests(name):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nsf_optax.experiments.decay import figures as plots

    finder, runner = doctest.DocTestFinder(), doctest.DocTestRunner()
    (test,) = finder.find(getattr(plots, name), name, globs=vars(plots).copy())
    result = runner.run(test)
    plt.close("all")
    assert result.attempted > 0 and result.failed == 0
