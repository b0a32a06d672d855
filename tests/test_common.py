"""The optax-contrib-style battery, run over every public transform and alias.

Modelled on `optax/contrib/_common_test.py`: extra keyword arguments, no
recompilation while a scheduled ``p`` changes, convergence, `inject_hyperparams`,
dtypes, `MultiSteps`, `masked`, `partition`, and `init` on abstract shapes.
"""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl.testing import parameterized

import nsf_optax
from nsf_optax import p_schedule

_TIDE = p_schedule.cosine_tidal(-0.25, 0.5, period_steps=100)
_PULSE = p_schedule.pulse_tidal(
    0.5, 50, p_schedule.square_tidal(0.25, -0.25, every_steps=20)
)

# (name, factory, kwargs); factories of transforms get a learning rate chained in.
_OPTIMIZERS = (
    ("nsf_p0.5", nsf_optax.nsf, {"learning_rate": 1e-2, "p": 0.5}),
    ("nsf_p0.25", nsf_optax.nsf, {"learning_rate": 1e-2, "p": 0.25}),
    ("nsf_p0", nsf_optax.nsf, {"learning_rate": 1e-2, "p": 0.0}),
    ("nsf_p-0.25", nsf_optax.nsf, {"learning_rate": 1e-2, "p": -0.25}),
    ("nsf_tidal", nsf_optax.nsf, {"learning_rate": 1e-2, "p": _TIDE}),
    (
        "nsf_tidal_rms",
        nsf_optax.nsf,
        {"learning_rate": 1e-2, "p": _TIDE, "normalize": "rms"},
    ),
    (
        "nsfw_pulse",
        nsf_optax.nsfw,
        {"learning_rate": 1e-2, "p": _PULSE, "weight_decay": 1e-4},
    ),
    (
        "nsf_sgd_p0",
        nsf_optax.nsf_sgd,
        {"learning_rate": 1e-3, "momentum": 0.9, "p": 0.0},
    ),
    (
        "nsf_sgd_pulse_rms",
        nsf_optax.nsf_sgd,
        {"learning_rate": 1e-3, "momentum": 0.9, "p": _PULSE, "normalize": "rms"},
    ),
    (
        "nsf_sgd_tidal",
        nsf_optax.nsf_sgd,
        {"learning_rate": 1e-3, "momentum": 0.9, "p": _TIDE},
    ),
    ("scale_by_pexp", nsf_optax.scale_by_pexp, {"p": -0.25}),
    ("scale_by_pexp_momentum", nsf_optax.scale_by_pexp_momentum, {"p": _TIDE}),
    (
        "scale_by_pexp_no_momentum",
        nsf_optax.scale_by_pexp_momentum,
        {"decay": None, "p": 0.25},
    ),
)
_NAMED = tuple(
    {"testcase_name": n, "factory": f, "kwargs": k} for n, f, k in _OPTIMIZERS
)
_ALIASES = tuple(c for c in _NAMED if "learning_rate" in c["kwargs"])


def _make(factory, kwargs):
    """An optimizer; a bare transform is followed by a small fixed step."""
    if "learning_rate" in kwargs:
        return factory(**kwargs)
    return optax.chain(factory(**kwargs), optax.scale(-1e-2))


def _parabola(dtype):
    initial = jnp.array([-1.0, 10.0, 1.0], dtype)
    final = jnp.array([1.0, -1.0, 1.0], dtype)
    return initial, final, lambda x: jnp.sum(jnp.square(x - final))


def _rosenbrock(dtype):
    initial = jnp.zeros(2, dtype)
    final = jnp.ones(2, dtype)

    def f(x):
        return jnp.square(1.0 - x[0]) + 100.0 * jnp.square(x[1] - x[0] ** 2)

    return initial, final, f


def _tree_params():
    return {
        "dense": {"kernel": jnp.full((3, 4), 0.5, jnp.float32), "bias": jnp.zeros(4)},
        "scale": jnp.ones(2),
    }


def _tree_grads(seed):
    keys = jax.random.split(jax.random.key(seed), 3)
    return {
        "dense": {
            "kernel": jax.random.normal(keys[0], (3, 4)),
            "bias": jax.random.normal(keys[1], (4,)),
        },
        "scale": jax.random.normal(keys[2], (2,)),
    }


class BatteryTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(*_NAMED)
    def test_accepts_extra_args(self, factory, kwargs):
        opt = _make(factory, kwargs)
        params = _tree_params()
        state = opt.init(params)
        update = self.variant(
            functools.partial(opt.update, unexpected_extra_arg=1, value=2.0)
        )
        for seed in range(2):
            updates, state = update(_tree_grads(seed), state, params)
            chex.assert_tree_all_finite(updates)

    @parameterized.named_parameters(*_NAMED)
    def test_no_recompilation_while_p_changes(self, factory, kwargs):
        opt = _make(factory, kwargs)
        params = _tree_params()
        chex.clear_trace_counter()

        @jax.jit
        @chex.assert_max_traces(n=1)
        def step(params, state, grads):
            updates, state = opt.update(grads, state, params)
            return optax.apply_updates(params, updates), state

        state = opt.init(params)
        # 120 steps cross the pulse, several tide reversals and p = 0.
        for seed in range(120):
            params, state = step(params, state, _tree_grads(seed % 7))
        chex.assert_tree_all_finite(params)

    @parameterized.named_parameters(*_ALIASES)
    def test_converges(self, factory, kwargs):
        for setup in (_parabola, _rosenbrock):
            initial, final, objective = setup(jnp.float32)
            opt = factory(**kwargs)

            def step(carry, _, opt=opt, objective=objective):
                params, state = carry
                grads = jax.grad(objective)(params)
                updates, state = opt.update(grads, state, params)
                return (optax.apply_updates(params, updates), state), None

            (params, _), _ = jax.jit(
                lambda carry, step=step: jax.lax.scan(step, carry, length=10_000)
            )((initial, opt.init(initial)))
            chex.assert_trees_all_close(params, final, rtol=3e-2, atol=3e-2)

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(*_ALIASES)
    def test_inject_hyperparams(self, factory, kwargs):
        opt = factory(**kwargs)
        injected = optax.inject_hyperparams(factory)(**kwargs)
        params = _tree_params()
        state, state_inj = opt.init(params), injected.init(params)
        update, update_inj = self.variant(opt.update), self.variant(injected.update)
        for seed in range(5):
            grads = _tree_grads(seed)
            updates, state = update(grads, state, params)
            updates_inj, state_inj = update_inj(grads, state_inj, params)
            chex.assert_trees_all_close(updates_inj, updates, rtol=1e-5, atol=1e-7)
        inner = state_inj.inner_state
        if kwargs.get("p") == 0.0 and not kwargs.get("normalize"):
            # A static p = 0 keeps no second moment (an array-free EmptyState
            # per leaf); injected, p is an array, so the moment is kept: all
            # else must agree.
            assert state[0].nu == jax.tree.map(lambda _: optax.EmptyState(), params)
            assert not jax.tree.leaves(state[0].nu)
            state = (state[0]._replace(nu=inner[0].nu), *state[1:])
        chex.assert_trees_all_close(inner, state, rtol=1e-5, atol=1e-7)

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.product(
        name=tuple(n for n, _, _ in _OPTIMIZERS), dtype=("bfloat16", "float32")
    )
    def test_dtypes_and_state_are_stable(self, name, dtype):
        # float16 and the float64 run (own process) are in test_pexp / test_x64.
        _, factory, kwargs = next(c for c in _OPTIMIZERS if c[0] == name)
        opt = _make(factory, kwargs)
        params = jax.tree.map(lambda x: x.astype(dtype), _tree_params())
        state = opt.init(params)
        update = self.variant(opt.update)
        for seed in range(3):
            grads = jax.tree.map(lambda x: x.astype(dtype), _tree_grads(seed))
            updates, new_state = update(grads, state, params)
            chex.assert_trees_all_equal_dtypes(updates, params)
            chex.assert_trees_all_equal_shapes_and_dtypes(new_state, state)
            state = new_state

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(*_NAMED)
    def test_multi_steps(self, factory, kwargs):
        """MultiSteps(k) on a repeated gradient equals one step on it."""
        params = _tree_params()
        grads = _tree_grads(0)
        multi = optax.MultiSteps(_make(factory, kwargs), every_k_schedule=3)
        state = multi.init(params)
        update = self.variant(multi.update)
        for _ in range(3):
            updates, state = update(grads, state, params)
        single = _make(factory, kwargs)
        expected, _ = single.update(grads, single.init(params), params)
        chex.assert_trees_all_close(updates, expected, rtol=1e-6, atol=1e-8)

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(*_NAMED)
    def test_masked(self, factory, kwargs):
        mask = {"dense": {"kernel": True, "bias": False}, "scale": True}
        opt = optax.masked(_make(factory, kwargs), mask)
        full = _make(factory, kwargs)
        params = _tree_params()
        grads = _tree_grads(1)
        updates, _ = self.variant(opt.update)(grads, opt.init(params), params)
        expected, _ = full.update(grads, full.init(params), params)
        chex.assert_trees_all_close(
            updates["dense"]["kernel"], expected["dense"]["kernel"], rtol=1e-6
        )
        chex.assert_trees_all_equal(updates["dense"]["bias"], grads["dense"]["bias"])

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(*_NAMED)
    def test_partition(self, factory, kwargs):
        labels = {"dense": {"kernel": "nsf", "bias": "sgd"}, "scale": "nsf"}
        opt = optax.partition(
            {"nsf": _make(factory, kwargs), "sgd": optax.sgd(1e-2)}, labels
        )
        params = _tree_params()
        grads = _tree_grads(2)
        updates, _ = self.variant(opt.update)(grads, opt.init(params), params)
        chex.assert_trees_all_close(
            updates["dense"]["bias"], -1e-2 * grads["dense"]["bias"], rtol=1e-6
        )
        sub_params = {"dense": {"kernel": params["dense"]["kernel"]}}
        sub_grads = {"dense": {"kernel": grads["dense"]["kernel"]}}
        alone = _make(factory, kwargs)
        expected, _ = alone.update(sub_grads, alone.init(sub_params), sub_params)
        chex.assert_trees_all_close(
            updates["dense"]["kernel"], expected["dense"]["kernel"], rtol=1e-6
        )

    @parameterized.named_parameters(*_NAMED)
    def test_init_on_shape_dtype_structs(self, factory, kwargs):
        opt = _make(factory, kwargs)
        params = _tree_params()
        abstract = jax.tree.map(
            lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), params
        )
        abstract_state = jax.eval_shape(opt.init, abstract)
        concrete_state = opt.init(params)
        chex.assert_trees_all_equal_shapes_and_dtypes(
            jax.tree.map(lambda x: np.zeros(x.shape, x.dtype), abstract_state),
            concrete_state,
        )
