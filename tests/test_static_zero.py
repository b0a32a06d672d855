"""A static p = 0 (optax.sgd's twin) keeps no second moment: optax.sgd's state and
step, and gain readers that answer 1 / (1 + eps).

(Declared schedule values and their kernels: tests/test_fast_paths.py.)
"""

import chex
import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import optax
from absl.testing import parameterized

import nsf_optax
from nsf_optax import p_schedule

# The paper's ResNet schedule: a pulse at 1/2, then a square tide 1/4, -1/4.
_PAPER = p_schedule.pulse_tidal(0.5, 3, p_schedule.square_tidal(0.25, -0.25, 2))
_STEPS = 10  # p: 0.5 x3, 0.25 x2, -0.25 x2, 0.25 x2, -0.25


def _grads(step):
    rng = np.random.default_rng(step)
    return {
        "w": jnp.asarray(rng.standard_normal((3, 4)) * 10.0 ** rng.uniform(-3, 1)),
        "b": jnp.asarray(rng.standard_normal(4), jnp.float32),
    }


_FACTORIES = (
    ("nsf", nsf_optax.scale_by_pexp, {}),
    ("nsf_rms", nsf_optax.scale_by_pexp, {"normalize": "rms"}),
    ("nsf_sgd", nsf_optax.scale_by_pexp_momentum, {}),
    ("nsf_sgd_rms", nsf_optax.scale_by_pexp_momentum, {"normalize": "rms"}),
)


class StaticZeroTest(chex.TestCase):
    """A static p = 0 (optax.sgd's twin) keeps no second moment."""

    @chex.variants(with_jit=True, without_jit=True)
    def test_state_is_sgds_plus_scalars(self):
        params = _grads(100)
        ours, theirs = nsf_optax.nsf_sgd(0.1, 0.9), optax.sgd(0.1, 0.9)
        s_ours, s_theirs = ours.init(params), theirs.init(params)
        for step in range(3):
            u_ours, s_ours = self.variant(ours.update)(_grads(step), s_ours)
            u_theirs, s_theirs = jax.jit(theirs.update)(_grads(step), s_theirs)
            chex.assert_trees_all_equal(u_ours, u_theirs)

        def size(tree):
            return sum(x.size for x in jax.tree.leaves(tree))

        # The trace and 5 recorded scalars; nu keeps the params' structure with
        # no array (an EmptyState per leaf), so a step carries no more leaves.
        self.assertEqual(size(s_ours), size(s_theirs) + 5)
        self.assertEqual(
            len(jax.tree.leaves(s_ours)), len(jax.tree.leaves(s_theirs)) + 5
        )
        self.assertEqual(
            s_ours[0].nu, jax.tree.map(lambda _: optax.EmptyState(), params)
        )

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters(1e-8, 0.5)
    def test_gain_readers_answer_one_over_one_plus_eps(self, eps):
        params = _grads(100)
        tx = nsf_optax.nsf_sgd(0.1, 0.9, eps=eps)
        _, state = tx.update(_grads(0), tx.init(params))
        gain = self.variant(nsf_optax.pexp_gain)(state)
        want = float(1 / np.float32(1 + np.float32(eps)))
        for leaf in jax.tree.leaves(gain):
            np.testing.assert_allclose(leaf, want, rtol=1e-7)
        stats = self.variant(nsf_optax.gain_stats)(state)
        np.testing.assert_allclose(stats["log10_gain_mean"], np.log10(want), atol=1e-7)

    def test_a_traced_zero_keeps_the_moment(self):
        """Only a static 0 is known never to read the moment."""
        tx = nsf_optax.nsf_sgd(0.1, 0.9, p=lambda count: jnp.float32(0.0))
        params = _grads(100)
        _, state = tx.update(_grads(0), tx.init(params))
        chex.assert_trees_all_equal_shapes(state[0].nu, params)

    def test_adam_flavour_rms_keeps_the_moment_for_its_reference(self):
        """normalize="rms" measures Adam's update, which reads the moment."""
        params = _grads(100)
        plain = nsf_optax.scale_by_pexp(p=0.0).init(params)
        normed = nsf_optax.scale_by_pexp(p=0.0, normalize="rms").init(params)
        self.assertEqual(jax.tree.leaves(plain.nu), [])
        chex.assert_trees_all_equal_shapes(normed.nu, params)

    @parameterized.parameters("nsf_sgd", "nsf")
    def test_injected_zero_keeps_one_state_from_eager_init_to_jitted_update(
        self, alias
    ):
        """inject_hyperparams passes p = 0 as an array: concrete at an eager
        init, traced in a jitted update; both keep the moment."""
        params = _grads(100)
        tx = optax.inject_hyperparams(getattr(nsf_optax, alias))(0.1, p=0.0)
        state = tx.init(params)
        for step in range(2):
            _, new_state = jax.jit(tx.update)(_grads(step), state)
            chex.assert_trees_all_equal_shapes_and_dtypes(new_state, state)
            state = new_state
        chex.assert_trees_all_equal_shapes(state.inner_state[0].nu, params)
