"""Property tests: finite inputs never give NaN, across |p| <= 2 and 60 decades.

The documented numerics (see `nsf_optax.nsf`): every update is bounded by
``|direction| / eps``, so finite gradients give finite updates whenever that
bound is below the float32 maximum: for the Adam-flavoured update (direction
``mhat``, ``|mhat| <= max|g|``) any ``|g| <= 1e30``; for the SGD-flavoured one
(direction the momentum, up to ``max|g| / (1 - momentum)``) any ``|g| <= 1e29``.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import nsf_optax

# too_slow: generating examples is slow on a loaded machine, not a failure of the code.
_SETTINGS = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)


def _magnitudes(max_exp):
    exps = st.floats(min_value=-30, max_value=max_exp)
    signs = st.sampled_from([-1.0, 1.0])
    value = st.builds(lambda s, e: s * 10.0**e, signs, exps)
    return st.one_of(value, st.just(0.0))


def _grads(max_exp):
    return st.lists(
        st.lists(_magnitudes(max_exp), min_size=4, max_size=4), min_size=3, max_size=3
    )


_P = st.floats(min_value=-2.0, max_value=2.0)

# Found by test_sgd_flavour_is_finite (no longer reached by its derandomised
# stream): a momentum of 9e24 under the gain vhat**-2 ~ 1e-40 leaves an update
# whose RMS is ~1e-15, so the ratio of the two RMS in normalize="rms" overflows
# float32.
_RMS_OVERFLOW_GRADS = [
    [-1e5, -1e5, -1.0, -1.0],
    [0.0, 0.0, 0.0, -1e25],
    [0.0, -1.0, -1e5, -1.0],
]


@functools.partial(jax.jit, static_argnames=("factory", "normalize"))
def _updates(grads, p, factory, normalize):
    """All updates over a gradient sequence, with a traced p."""
    opt = getattr(nsf_optax, factory)(p=lambda count: p, normalize=normalize)
    state = opt.init(grads[0])

    def step(state, g):
        u, state = opt.update(g, state)
        return state, u

    _, us = jax.lax.scan(step, state, grads)
    return us


def _check_finite_updates(grads, p, static):
    """The momentum flavour's updates with ``normalize="rms"``, checked finite."""
    return _check(grads, p, "scale_by_pexp_momentum", "rms", static)


def _check(grads, p, factory, normalize, static):
    grads = jnp.asarray(np.array(grads, np.float32))
    assert bool(jnp.all(jnp.isfinite(grads)))
    if static:
        opt = getattr(nsf_optax, factory)(p=p, normalize=normalize)
        state = opt.init(grads[0])
        us = []
        for g in grads:
            u, state = opt.update(g, state)
            us.append(u)
        us = jnp.stack(us)
    else:
        us = _updates(grads, jnp.float32(p), factory, normalize)
    assert us.dtype == jnp.float32
    assert not bool(jnp.any(jnp.isnan(us))), (p, grads, us)
    assert bool(jnp.all(jnp.isfinite(us))), (p, grads, us)
    return us


@_SETTINGS
@given(
    grads=_grads(30),
    p=_P,
    normalize=st.sampled_from([None, "rms"]),
    static=st.booleans(),
)
def test_adam_flavour_is_finite(grads, p, normalize, static):
    _check(grads, p, "scale_by_pexp", normalize, static)


@_SETTINGS
@given(
    grads=_grads(29),
    p=_P,
    normalize=st.sampled_from([None, "rms"]),
    static=st.booleans(),
)
@example(grads=_RMS_OVERFLOW_GRADS, p=2.0, normalize="rms", static=True)
@example(grads=_RMS_OVERFLOW_GRADS, p=2.0, normalize="rms", static=False)
def test_sgd_flavour_is_finite(grads, p, normalize, static):
    _check(grads, p, "scale_by_pexp_momentum", normalize, static)


@_SETTINGS
@given(grads=_grads(30), p=st.sampled_from([0.0, 0.25, 0.5, -0.5, 1.0, 2.0, -2.0]))
def test_special_static_exponents_are_finite(grads, p):
    _check(grads, p, "scale_by_pexp", None, True)


@pytest.mark.parametrize("static", [True, False])
def test_rms_match_survives_a_ratio_beyond_float32(static):
    # The update of _RMS_OVERFLOW_GRADS must still have the momentum's RMS.
    us = _check_finite_updates(_RMS_OVERFLOW_GRADS, 2.0, static)
    got = np.sqrt(np.mean(np.square(np.asarray(us[-1], np.float64))))
    want = np.sqrt(
        np.mean(
            np.square(
                [
                    0.9 * (0.9 * -1e5) + 0.0,
                    0.9 * (0.9 * -1e5) - 1.0,
                    0.9 * (0.9 * -1.0) - 1e5,
                    0.9 * -1e25 - 1.0,
                ]
            )
        )
    )
    np.testing.assert_allclose(got, want, rtol=1e-5)


def _moderate_grads():
    """Gradient sequences over 8 decades (the RMS comparison's own range)."""
    exps = st.floats(min_value=-4, max_value=4)
    value = st.builds(lambda s, e: s * 10.0**e, st.sampled_from([-1.0, 1.0]), exps)
    return st.lists(
        st.lists(value, min_size=6, max_size=6), min_size=2, max_size=4
    ).map(lambda g: jnp.asarray(g, jnp.float32))


def _leaf_rms(u):
    return float(np.sqrt(np.mean(np.square(np.asarray(u, np.float64)))))


_TWINS = {
    "scale_by_pexp": (optax.scale_by_adam, {}),
    "scale_by_pexp_momentum": (optax.trace, {"decay": 0.9}),
}


@pytest.mark.parametrize("factory", list(_TWINS))
@pytest.mark.parametrize("how", ["static", "scheduled", "injected"])
# Each example compiles both updates afresh (p is static or a new closure): 25
# examples per case (150 in all) keep the six cases at about a minute on 2 cores.
@settings(_SETTINGS, max_examples=25)
@given(grads=_moderate_grads(), p=st.floats(min_value=-1.0, max_value=1.5))
def test_rms_keeps_the_twins_step_size(factory, how, grads, p):
    """normalize="rms": every update's RMS is the twin's (Adam's update in the
    Adam flavour, the momentum in the SGD flavour) for any p, however given."""
    make = getattr(nsf_optax, factory)
    if how == "static":
        ours = make(p=p, normalize="rms")
    elif how == "scheduled":
        ours = make(p=lambda count: jnp.float32(p), normalize="rms")
    else:
        ours = optax.inject_hyperparams(make)(p=p, normalize="rms")
    twin_factory, twin_kwargs = _TWINS[factory]
    if how == "injected":  # hyperparameters as float32 arrays on both sides
        twin_factory = optax.inject_hyperparams(twin_factory)
    twin = twin_factory(**twin_kwargs)
    s_ours, s_twin = ours.init(grads[0]), twin.init(grads[0])
    update_ours, update_twin = jax.jit(ours.update), jax.jit(twin.update)
    for g in grads:
        u_ours, s_ours = update_ours(g, s_ours)
        u_twin, s_twin = update_twin(g, s_twin)
        assert _leaf_rms(u_ours) == pytest.approx(_leaf_rms(u_twin), rel=2e-6)
