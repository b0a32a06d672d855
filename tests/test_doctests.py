"""Runs the doctested examples of the core modules."""

import doctest

import pytest

import nsf_optax._pexp
import nsf_optax.p_schedule


@pytest.mark.parametrize("module", [nsf_optax._pexp, nsf_optax.p_schedule])
def test_doctests(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"no doctest found in {module.__name__}"
    assert result.failed == 0, f"{result.failed} doctest(s) failed in {module.__name__}"
