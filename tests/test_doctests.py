"""Runs the doctested examples of the core modules (every public function's)."""

import doctest
import inspect

import pytest

import nsf_optax
import nsf_optax._alias
import nsf_optax._monitoring
import nsf_optax._transform
import nsf_optax.p_schedule

_MODULES = [
    nsf_optax._alias,
    nsf_optax._monitoring,
    nsf_optax._transform,
    nsf_optax.p_schedule,
]


@pytest.mark.parametrize("module", _MODULES, ids=lambda m: m.__name__)
def test_doctests(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"no doctest found in {module.__name__}"
    assert result.failed == 0, f"{result.failed} doctest(s) failed in {module.__name__}"


def test_every_public_function_has_an_example():
    functions = [getattr(nsf_optax, name) for name in nsf_optax.__all__]
    functions += [
        getattr(nsf_optax.p_schedule, n) for n in nsf_optax.p_schedule.__all__
    ]
    for f in functions:
        if inspect.isfunction(f):
            assert ">>> " in (f.__doc__ or ""), f.__name__
            assert inspect.getmodule(f) in _MODULES, f.__name__
