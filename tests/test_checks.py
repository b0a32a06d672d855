"""Bad input: one clear error at construction, whatever the value's type.

Numbers may be Python, NumPy (scalar or 0-d) or JAX (0-d) values; concrete
ones are checked like Python floats. Traced values (``inject_hyperparams``
under ``jit``) have their shape and dtype checked; their value cannot be, and
is used as given (pinned below).
"""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import nsf_optax

# Every concrete spelling of a number.
_SPELLINGS = (
    ("python", float),
    ("numpy scalar", np.float32),
    ("numpy 0-d", lambda x: np.asarray(x, np.float64)),
    ("jax 0-d", lambda x: jnp.asarray(x, jnp.float32)),
)
_FACTORIES = {
    "scale_by_pexp": nsf_optax.scale_by_pexp,
    "scale_by_pexp_momentum": nsf_optax.scale_by_pexp_momentum,
    "nsf": lambda **kw: nsf_optax.nsf(1e-3, **kw),
    "nsfw": lambda **kw: nsf_optax.nsfw(1e-3, **kw),
    "nsf_sgd": lambda **kw: nsf_optax.nsf_sgd(1e-3, **kw),
}
_ADAM_LIKE = ("scale_by_pexp", "nsf", "nsfw")
_SGD_LIKE = ("scale_by_pexp_momentum", "nsf_sgd")

# (argument, bad value, factories); every spelling of the value is tried.
_OUT_OF_RANGE = [
    ("b1", 1.0, _ADAM_LIKE),
    ("b1", -0.1, _ADAM_LIKE),
    ("b1", 1.5, _ADAM_LIKE),
    ("b2", 1.0, _ADAM_LIKE + _SGD_LIKE),
    ("b2", float("nan"), _ADAM_LIKE + _SGD_LIKE),
    ("momentum", 1.0, ("nsf_sgd",)),
    ("momentum", -0.5, ("nsf_sgd",)),
    ("decay", 1.0, ("scale_by_pexp_momentum",)),
    ("eps", -1.0, _ADAM_LIKE + _SGD_LIKE),
    ("eps", float("nan"), _ADAM_LIKE + _SGD_LIKE),
    ("eps", float("inf"), _ADAM_LIKE + _SGD_LIKE),
    ("eps_root", -1e-8, _ADAM_LIKE + _SGD_LIKE),
    ("p", float("nan"), _ADAM_LIKE + _SGD_LIKE),
    ("p", float("inf"), _ADAM_LIKE + _SGD_LIKE),
    ("p", float("-inf"), _ADAM_LIKE + _SGD_LIKE),
    ("weight_decay", -1e-4, ("nsfw",)),
    ("weight_decay", float("nan"), ("nsfw",)),
]


@pytest.mark.parametrize("spelling, convert", _SPELLINGS)
@pytest.mark.parametrize(
    "name, value, factory",
    [(n, v, f) for n, v, fs in _OUT_OF_RANGE for f in fs],
)
def test_out_of_range_raises_value_error(name, value, factory, spelling, convert):
    del spelling
    with pytest.raises(ValueError, match=rf"^{name} must be"):
        _FACTORIES[factory](**{name: convert(value)})


@pytest.mark.parametrize("spelling, convert", _SPELLINGS)
def test_learning_rate_must_be_finite(spelling, convert):
    del spelling
    for factory in (nsf_optax.nsf, nsf_optax.nsfw, nsf_optax.nsf_sgd):
        with pytest.raises(ValueError, match=r"^learning_rate must be"):
            factory(convert(float("nan")))


@pytest.mark.parametrize(
    "value",
    [
        "0.5",
        None,
        True,
        np.True_,
        jnp.asarray(True),
        1 + 0j,
        jnp.asarray(1j),
        jnp.bfloat16,
        np.float32,
        jnp.dtype("float32"),
        [0.5],
    ],
    ids=repr,
)
@pytest.mark.parametrize("name", ["b1", "b2", "eps", "eps_root", "p"])
def test_not_a_number_raises_type_error(name, value):
    with pytest.raises(TypeError, match=rf"^{name} must be"):
        nsf_optax.scale_by_pexp(**{name: value})


@pytest.mark.parametrize(
    "value", [jnp.asarray([0.1, 0.2]), np.asarray([0.5]), np.zeros((1, 1))], ids=str
)
@pytest.mark.parametrize("name", ["b1", "eps", "p"])
def test_non_scalar_raises_value_error(name, value):
    with pytest.raises(ValueError, match=rf"^{name} must be .*\(0-d\)"):
        nsf_optax.scale_by_pexp(**{name: value})


def test_a_callable_hyperparameter_other_than_p_points_to_inject_hyperparams():
    with pytest.raises(TypeError, match=r"b1 must be .*inject_hyperparams"):
        nsf_optax.nsf(1e-3, b1=optax.constant_schedule(0.9))


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"mu_dtype": 1e-4}, "mu_dtype"),
        ({"mu_dtype": jnp.int32}, "mu_dtype"),
        ({"mu_dtype": "not a dtype"}, "mu_dtype"),
        ({"mu_dtype": jnp.zeros(2)}, "mu_dtype"),
        ({"nu_dtype": jnp.bool_}, "nu_dtype"),
        ({"nesterov": 0.999}, "nesterov"),
        ({"nesterov": None}, "nesterov"),
        ({"nesterov": "yes"}, "nesterov"),
    ],
)
def test_dtypes_and_flags_raise_type_error(kwargs, name):
    with pytest.raises(TypeError, match=rf"^{name} must be"):
        nsf_optax.scale_by_pexp(**kwargs)


@pytest.mark.parametrize(
    "call, name",
    [
        (
            lambda: nsf_optax.nsf_sgd(0.1, accumulator_dtype=jnp.int8),
            "accumulator_dtype",
        ),
        (lambda: nsf_optax.nsf_sgd(0.1, momentum="0.9"), "momentum"),
        (lambda: nsf_optax.nsf_sgd("0.1"), "learning_rate"),
        (lambda: nsf_optax.nsf(None), "learning_rate"),
        (lambda: nsf_optax.nsfw(0.1, weight_decay="1e-4"), "weight_decay"),
        (lambda: nsf_optax.nsfw(0.1, weight_decay=None), "weight_decay"),
    ],
)
def test_alias_arguments_raise_type_error(call, name):
    with pytest.raises(TypeError, match=rf"^{name} must be"):
        call()


@pytest.mark.parametrize(
    "value, error",
    [("l2", ValueError), ("RMS", ValueError), (1, TypeError), (True, TypeError)],
)
def test_normalize(value, error):
    """A wrong string is a wrong value; anything else a wrong type."""
    with pytest.raises(error, match=r"^normalize must be None or 'rms'"):
        nsf_optax.scale_by_pexp(normalize=value)


def _python_branch(count):
    return 0.5 if count < 10 else 0.25


@pytest.mark.parametrize("factory", list(_FACTORIES))
@pytest.mark.parametrize(
    "p, error, match",
    [
        (lambda: 0.5, TypeError, "calling it on a traced int32 count"),
        (_python_branch, TypeError, "calling it on a traced int32 count"),
        (lambda count: "0.5", TypeError, "returned"),
        (lambda count: jnp.ones(2) * count, ValueError, "returned"),
    ],
)
def test_p_schedules_are_checked_when_built(factory, p, error, match):
    """A p callable that an update could not call fails at construction."""
    with pytest.raises(error, match=rf"^p must be a schedule.*{match}"):
        _FACTORIES[factory](p=p)


def _first(count):
    return jnp.zeros([], jnp.int32)


@pytest.mark.parametrize(
    "values, index, error, match",
    [
        ("ab", _first, TypeError, r"^p\.values"),
        ((), _first, ValueError, r"^p\.values"),
        ((0.5, float("nan")), _first, ValueError, r"^p\.values"),
        ((0.5, 0.25), None, TypeError, r"^p\.index"),
        ((0.5, 0.25), 1, TypeError, r"^p\.index"),
        ((0.5, 0.25), lambda c: 0 if c < 3 else 1, TypeError, r"^p\.index"),
        (None, _first, TypeError, r"^p\.values"),
    ],
)
def test_declarations_are_checked_when_built(values, index, error, match):
    def schedule(count):
        return jnp.float32(0.5)

    schedule.values = values  # pyright: ignore[reportFunctionMemberAccess]
    schedule.index = index  # pyright: ignore[reportFunctionMemberAccess]
    with pytest.raises(error, match=match):
        nsf_optax.nsf(1e-3, p=schedule)


@pytest.mark.parametrize(
    "bounds, error",
    [
        ("ab", TypeError),
        (0.5, TypeError),
        ((0.5,), ValueError),
        ((0.5, 0.25), ValueError),
        ((0.0, float("inf")), ValueError),
        ((float("nan"), 0.5), ValueError),
        ((jnp.float32(0.0), "x"), TypeError),
    ],
)
def test_range_declarations_are_checked_when_built(bounds, error):
    def schedule(count):
        return jnp.float32(0.25)

    schedule.bounds = bounds  # pyright: ignore[reportFunctionMemberAccess]
    with pytest.raises(error, match=r"^p\.bounds"):
        nsf_optax.nsf(1e-3, p=schedule)


def test_accepted_spellings_build_and_agree():
    """Python, NumPy and JAX spellings of one value give the same updates."""
    grads = jnp.array([1e-3, -0.5, 2.0])
    ref = None
    for _, convert in _SPELLINGS:
        kwargs = {k: convert(v) for k, v in {"b1": 0.8, "eps": 1e-6, "p": 0.3}.items()}
        tx = nsf_optax.scale_by_pexp(**kwargs)
        updates, _ = tx.update(grads, tx.init(grads))
        if ref is None:
            ref = updates
        chex.assert_trees_all_close(updates, ref, rtol=1e-6)
    # Integers are real numbers; a schedule is a callable that is not a type.
    nsf_optax.scale_by_pexp(b1=0, eps=0, p=1)
    nsf_optax.nsfw(1, weight_decay=optax.linear_schedule(1e-4, 0.0, 100))
    nsf_optax.nsf_sgd(0.1, None)


def test_the_optax_positional_traps_are_closed():
    """Calls that meant mu_dtype / nesterov can no longer set p."""
    lr = 1e-3
    # optax.adam's sixth positional argument is mu_dtype, and means that here.
    state = nsf_optax.nsf(lr, 0.9, 0.999, 1e-8, 0.0, jnp.bfloat16).init(jnp.ones(2))
    assert state[0].mu.dtype == jnp.bfloat16 and float(state[0].p) == 0.5
    with pytest.raises(TypeError, match=r"^mu_dtype must be"):
        nsf_optax.nsfw(lr, 0.9, 0.999, 1e-8, 0.0, 1e-4)
    with pytest.raises(TypeError, match=r"^nesterov must be True or False"):
        nsf_optax.nsf_sgd(0.1, 0.9, 0.999)
    with pytest.raises(TypeError, match="positional"):
        nsf_optax.nsf(lr, 0.9, 0.999, 1e-8, 0.0, None, 0.3)


class ScheduleOutputTest(chex.TestCase):
    def test_vector_schedule_raises_when_built_naming_p(self):
        with pytest.raises(ValueError, match=r"^p must be a schedule.*returned"):
            nsf_optax.nsf(1e-3, p=lambda count: jnp.array([0.1, 0.2]))

    def test_complex_or_bool_schedule_raises_when_built(self):
        for bad in (lambda c: jnp.asarray(0.5j), lambda c: c > 3, lambda c: "0.5"):
            with pytest.raises(TypeError, match=r"^p must be a schedule.*returned"):
                nsf_optax.scale_by_pexp_momentum(p=bad)

    @chex.variants(with_jit=True, without_jit=True)
    def test_integer_schedule_is_a_real_exponent(self):
        tx = nsf_optax.scale_by_pexp(p=lambda count: jnp.asarray(0, jnp.int32))
        updates, state = self.variant(tx.update)(jnp.ones(2), tx.init(jnp.ones(2)))
        chex.assert_trees_all_close(updates, jnp.ones(2) / (1 + 1e-8))
        self.assertEqual(float(state.p), 0.0)


class InjectHyperparamsTest(chex.TestCase):
    """``inject_hyperparams`` calls the factory at init and every update."""

    def test_eager_init_checks_concrete_values(self):
        with pytest.raises(ValueError, match=r"^p must be"):
            optax.inject_hyperparams(nsf_optax.nsf)(1e-3, p=float("nan")).init(
                jnp.ones(2)
            )
        with pytest.raises(ValueError, match=r"^b1 must be"):
            optax.inject_hyperparams(nsf_optax.nsf)(1e-3, b1=1.5).init(jnp.ones(2))

    @chex.variants(with_jit=True, without_jit=True)
    def test_shape_is_checked_even_when_traced(self):
        tx = optax.inject_hyperparams(nsf_optax.nsf)(1e-3, p=jnp.array([0.1, 0.2]))
        with pytest.raises(ValueError, match=r"^p must be .*shape \(2,\)"):
            self.variant(tx.init)(jnp.ones(2))

    def test_traced_nan_p_gives_nan_updates(self):
        """Documented: a traced value cannot be checked and is used as given."""
        tx = optax.inject_hyperparams(nsf_optax.nsf)(1e-3, p=0.5)
        state = jax.jit(tx.init)(jnp.ones(2))
        state.hyperparams["p"] = jnp.asarray(jnp.nan)
        updates, _ = jax.jit(tx.update)(jnp.ones(2), state)
        assert bool(jnp.all(jnp.isnan(updates)))
        # Eagerly the same state is checked when the factory is called again.
        with pytest.raises(ValueError, match=r"^p must be"):
            tx.update(jnp.ones(2), state)

    def test_a_dtype_hyperparameter_needs_static_args(self):
        """A dtype is callable, so inject_hyperparams takes it for a schedule."""
        with pytest.raises(TypeError, match=r"^mu_dtype must be"):
            optax.inject_hyperparams(nsf_optax.nsf)(1e-3, mu_dtype=jnp.bfloat16).init(
                jnp.ones(2)
            )
        tx = optax.inject_hyperparams(nsf_optax.nsf, static_args="mu_dtype")(
            1e-3, mu_dtype=jnp.bfloat16
        )
        assert tx.init(jnp.ones(2)).inner_state[0].mu.dtype == jnp.bfloat16


class IntegerLeavesTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_integer_params_are_refused_at_init(self):
        params = {"w": jnp.ones(2), "step": jnp.zeros((), jnp.int32)}
        for tx in (nsf_optax.nsf(1e-3), nsf_optax.nsf_sgd(1e-3, 0.9)):
            with pytest.raises(TypeError, match=r"params\['step'\] has dtype int32"):
                self.variant(tx.init)(params)

    @chex.variants(with_jit=True, without_jit=True)
    def test_masked_integer_params_are_fine(self):
        params = {"w": jnp.ones(2), "step": jnp.zeros((), jnp.int32)}
        tx = optax.masked(nsf_optax.nsf(1e-3), {"w": True, "step": False})
        grads = {"w": jnp.ones(2), "step": jnp.zeros((), jnp.int32)}
        updates, _ = self.variant(tx.update)(grads, tx.init(params), params)
        assert updates["step"].dtype == jnp.int32

    def test_integer_updates_are_refused(self):
        tx = nsf_optax.scale_by_pexp()
        state = tx.init(jnp.ones(2))
        with pytest.raises(TypeError, match="updates has dtype int32"):
            tx.update(jnp.ones(2, jnp.int32), state)
