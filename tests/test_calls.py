"""Every way optax's users call an optimizer: Python numbers, eager updates,
extra arguments, introspection.

The twins run compiled here: our updates are one compiled program in every
variant (eagerly too), so their rounding is a jitted step's.
"""

import importlib
import inspect
import logging

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from absl.testing import parameterized

import nsf_optax
from nsf_optax import p_schedule

_TIDE = p_schedule.cosine_tidal(-0.25, 0.5, period_steps=10)
_SQUARE = p_schedule.pulse_tidal(0.5, 2, p_schedule.square_tidal(0.25, -0.25, 3))

# (name, ours, optax's twin at ours' default p).
_TWINS = (
    ("nsf", lambda: nsf_optax.nsf(1e-2), lambda: optax.adam(1e-2)),
    ("nsfw", lambda: nsf_optax.nsfw(1e-2), lambda: optax.adamw(1e-2)),
    (
        "nsf_sgd",
        lambda: nsf_optax.nsf_sgd(1e-2, 0.9),
        lambda: optax.sgd(1e-2, 0.9),
    ),
    ("scale_by_pexp", nsf_optax.scale_by_pexp, optax.scale_by_adam),
    (
        "scale_by_pexp_momentum",
        nsf_optax.scale_by_pexp_momentum,
        lambda: optax.trace(0.9),
    ),
)


def _scalar_trees():
    """Params and gradients as Python floats, NumPy 0-d arrays and scalars."""
    return [
        (1.0, 0.5),
        ({"a": 1.0, "b": -2.0}, {"a": 0.5, "b": 3.0}),
        ({"a": np.float32(1.0)}, {"a": np.float32(0.25)}),
        ({"a": np.array(1.0, np.float32)}, {"a": np.array(-0.75, np.float32)}),
        ({"a": jnp.array(1.0)}, {"a": 0.125}),
    ]


class PythonNumbersTest(chex.TestCase):
    """Python and NumPy scalars as params and updates, as optax takes them."""

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(*_TWINS)
    def test_scalars_give_the_twins_updates(self, ours, theirs):
        ours, theirs = ours(), theirs()
        for params, grads in _scalar_trees():
            s_ours, s_theirs = ours.init(params), theirs.init(params)
            update = self.variant(ours.update)
            for _ in range(3):
                u_ours, s_ours = update(grads, s_ours, params)
                u_theirs, s_theirs = jax.jit(theirs.update)(grads, s_theirs, params)
                chex.assert_trees_all_close(u_ours, u_theirs, rtol=1e-6)

    @parameterized.named_parameters(*_TWINS)
    def test_python_ints_are_refused_as_params(self, ours, theirs):
        del theirs
        with pytest.raises(TypeError, match=r"^params\['a'\] has dtype int32"):
            ours().init({"a": 3})

    @chex.variants(with_jit=True, without_jit=True)
    def test_extra_args(self):
        """optax's ExtraArgsTest: extra keyword arguments pass through a chain."""

        def use_loss() -> optax.GradientTransformationExtraArgs:
            def update(updates, state, params=None, *, loss):
                del params
                return jax.tree.map(lambda u: u * loss, updates), state

            return optax.GradientTransformationExtraArgs(
                lambda params: optax.EmptyState(), update
            )

        for name, ours, theirs in _TWINS:
            del name
            tx, ref = optax.chain(ours(), use_loss()), optax.chain(theirs(), use_loss())
            params, grads = {"a": 1.0}, {"a": 0.5}
            u, _ = self.variant(tx.update)(grads, tx.init(params), params, loss=2.0)
            want, _ = jax.jit(ref.update)(grads, ref.init(params), params, loss=2.0)
            chex.assert_trees_all_close(u, want, rtol=1e-6)


class _CompileCounter(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        if record.getMessage().startswith("Compiling"):
            self.messages.append(record.getMessage().split(" with ")[0])


def _optimizers():
    """Every public transform and alias with static, scheduled, injected p."""
    out = []
    for normalize in (None, "rms"):
        for p_name, p in (("static", 0.3), ("tide", _TIDE), ("square", _SQUARE)):
            kw = {"p": p, "normalize": normalize}
            out += [
                (f"nsf_{p_name}_{normalize}", nsf_optax.nsf(1e-2, **kw)),
                (f"nsfw_{p_name}_{normalize}", nsf_optax.nsfw(1e-2, **kw)),
                (f"nsf_sgd_{p_name}_{normalize}", nsf_optax.nsf_sgd(1e-2, 0.9, **kw)),
                (f"scale_by_pexp_{p_name}_{normalize}", nsf_optax.scale_by_pexp(**kw)),
                (
                    f"momentum_{p_name}_{normalize}",
                    nsf_optax.scale_by_pexp_momentum(**kw),
                ),
            ]
        for factory in (nsf_optax.nsf, nsf_optax.nsf_sgd):
            out.append(
                (
                    f"injected_{factory.__name__}_{normalize}",
                    optax.inject_hyperparams(factory)(
                        learning_rate=1e-2, p=0.3, normalize=normalize
                    ),
                )
            )
    out.append(("nsf_sgd_p0", nsf_optax.nsf_sgd(1e-2, 0.9)))
    return out


@pytest.mark.parametrize("name, tx", _optimizers())
def test_eager_updates_compile_nothing_after_the_first_step(name, tx):
    """Eager is jitted minus the jit: later steps reuse the first one's program."""
    del name
    params = {"w": jnp.ones((3, 2)), "b": jnp.zeros(2)}
    grads = jax.tree.map(lambda x: x + 0.5, params)
    state = tx.init(params)
    updates, state = tx.update(grads, state, params)  # compiles
    params = optax.apply_updates(params, updates)  # compiles optax's add
    counter = _CompileCounter()
    logger = logging.getLogger("jax")
    logger.addHandler(counter)
    try:
        with jax.log_compiles(True):
            for _ in range(5):
                updates, state = tx.update(grads, state, params)
                params = optax.apply_updates(params, updates)
    finally:
        logger.removeHandler(counter)
    assert counter.messages == []


def test_compile_counter_sees_a_compilation():
    """The counter above is not blind: an eager jnp.power on a new exponent
    compiles (optax's bias correction avoids it by being jitted)."""
    counter = _CompileCounter()
    logger = logging.getLogger("jax")
    logger.addHandler(counter)
    try:
        with jax.log_compiles(True):
            jnp.asarray(0.9) ** jnp.asarray(123457, jnp.int32)
    finally:
        logger.removeHandler(counter)
    assert counter.messages


# The library and the spectral experiments that import without cycles.
_PUBLIC_MODULES = (
    "nsf_optax",
    "nsf_optax.p_schedule",
    "nsf_optax.spectral",
    "nsf_optax.experiments.decay.experiment",
    "nsf_optax.experiments.density.experiment",
    "nsf_optax.experiments.boundary.experiment",
)


@pytest.mark.parametrize("module_name", _PUBLIC_MODULES)
def test_annotations_are_objects(module_name):
    """inspect.signature reads types, not strings (no postponed annotations)."""
    module = importlib.import_module(module_name)
    checked = 0
    for name in module.__all__:
        value = getattr(module, name)
        if not callable(value) or isinstance(value, type):
            continue
        signature = inspect.signature(value)
        annotations = [q.annotation for q in signature.parameters.values()]
        annotations.append(signature.return_annotation)
        for annotation in annotations:
            assert not isinstance(annotation, str), (name, annotation)
        checked += 1
    assert checked >= 1
    lr = inspect.signature(nsf_optax.nsf).parameters["learning_rate"].annotation
    assert lr is optax.ScalarOrSchedule
