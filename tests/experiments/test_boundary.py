"""Tests for the 2-D angle decision-boundary demo."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import nsf_optax
from nsf_optax.experiments.boundary import experiment as boundary


class AngleDataTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_shapes_and_balance(self):
        make = self.variant(functools.partial(boundary.make_angle_data, n=200))
        x, y, near = make(jax.random.key(0))
        chex.assert_shape(x, (200, 2))
        chex.assert_shape(y, (200,))
        assert x.dtype == jnp.float32 and y.dtype == jnp.int32
        assert int(y.sum()) == 100
        # 20 % near branch in each class.
        assert int(near[y == 0].sum()) == 20 and int(near[y == 1].sum()) == 20

    @chex.variants(with_jit=True, without_jit=True)
    def test_deterministic_by_seed(self):
        make = self.variant(functools.partial(boundary.make_angle_data, n=64))
        a, b, c = (
            make(jax.random.key(3)),
            make(jax.random.key(3)),
            make(jax.random.key(4)),
        )
        np.testing.assert_array_equal(a[0], b[0])
        assert not np.array_equal(np.asarray(a[0]), np.asarray(c[0]))

    def test_classes_are_point_reflections_without_noise(self):
        x, y, _ = boundary.make_angle_data(jax.random.key(1), 100, noise=0.0)
        # Class 1 lies in its angle: far branch y = 0.2, near branch x = -0.5.
        x1 = np.asarray(x[y == 1])
        on_far = np.isclose(x1[:, 1], 0.2, atol=1e-6)
        on_near = np.isclose(x1[:, 0], -0.5, atol=1e-6)
        assert np.all(on_far | on_near)
        assert np.all(np.asarray(x[y == 0])[:, 1] <= 0.2 + 1e-6)


@pytest.mark.parametrize("kw", [{"n": 3}, {"noise": -1.0}, {"near_fraction": 2.0}])
def test_bad_arguments(kw):
    args = {"n": 10, **kw}
    with pytest.raises(ValueError):
        boundary.make_angle_data(jax.random.key(0), **args)


class UpdateNormsTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_at_p0_they_are_per_example_gradient_norms(self):
        x, y, _ = boundary.make_angle_data(jax.random.key(0), 20)
        params = boundary.init_mlp(jax.random.key(1))

        def loss(params, x, y):
            logits = boundary.mlp_apply(params, x)
            return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, y))

        @jax.jit
        def state_and_reference(params):
            tx = nsf_optax.nsf(1e-2, p=0.0)
            grads = jax.grad(loss)(params, x, y)
            _, state = tx.update(grads, tx.init(params), params)
            per_example = jax.vmap(jax.grad(loss), in_axes=(None, 0, 0))(
                params, x[:, None], y[:, None]
            )
            sq = [
                jnp.sum(g.reshape(20, -1) ** 2, 1) for g in jax.tree.leaves(per_example)
            ]
            return state, jnp.sqrt(sum(sq))

        state, ref = state_and_reference(params)
        norms = self.variant(boundary.update_norms)(params, state, x, y, 0.0)
        chex.assert_shape(norms, (20,))
        # At p = 0 the gain is 1 / (1 + eps): the norms are the gradient norms.
        np.testing.assert_allclose(norms, ref, rtol=1e-5)


def test_demo_small_is_deterministic():
    settings = boundary.EXPERIMENT.quick()  # 40 steps, 2 seeds, 3 constant p
    a = boundary.boundary_demo(settings)
    b = boundary.boundary_demo(settings, snapshots=False)
    assert a.labels == ["p=-0.25", "p=0", "p=0.5", "tidal[-0.5,0.5]"]
    assert a.accuracy.shape == (4, 2, 5)
    np.testing.assert_array_equal(a.accuracy, b.accuracy)
    snaps = a.snapshots["p=0"]
    assert [s.step for s in snaps] == [10, 40]
    assert snaps[0].prob.shape == (8, 8)
    # Top 10 % per class: 2 of the 20 points of each class.
    assert int(snaps[0].top.sum()) == 4
    assert set(a.verdicts) >= {"ranking", "negative_p_fastest", "sgd_slowest"}
    assert a.summary["p=0"]["early_accuracy_minus_p0_mean"] == 0.0
