"""Every call written for the optax twin means the same for ours.

The twins share their positional arguments (names, order, defaults; our
``scale_by_pexp_momentum`` gives ``optax.trace``'s ``decay`` the paper's 0.9
as a default); ``p`` and our other extras are keyword-only. Called with the
twin's full positional argument list, ours at its default ``p`` (1/2 for the
Adam flavour, 0 for the SGD flavour) gives the twin's updates and moments bit
for bit: the same arithmetic in the same order.
"""

import inspect

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl.testing import parameterized

import nsf_optax

_TWINS = (
    (nsf_optax.scale_by_pexp, optax.scale_by_adam),
    (nsf_optax.nsf, optax.adam),
    (nsf_optax.nsfw, optax.adamw),
    (nsf_optax.nsf_sgd, optax.sgd),
    (nsf_optax.scale_by_pexp_momentum, optax.trace),
)
_MASK = {"w": True, "b": False}
_ADAM, _ADAMW = _TWINS[1], _TWINS[2]
_SGD, _TRACE = _TWINS[3], _TWINS[4]
# The twin's whole positional list (non-default values) and keywords, or none.
_CALLS = tuple(
    {"testcase_name": name, "pair": pair, "args": args, "kwargs": kwargs}
    for name, pair, args, kwargs in (
        ("scale_by_adam", _TWINS[0], (0.8, 0.99, 1e-6, 1e-9, jnp.bfloat16), {}),
        ("adam", _ADAM, (0.05, 0.8, 0.99, 1e-6, 1e-9, jnp.bfloat16), {}),
        ("nadam", _ADAM, (0.05, 0.8, 0.99, 1e-6, 0.0, None), {"nesterov": True}),
        ("adam_defaults", _ADAM, (0.05,), {}),
        ("adamw", _ADAMW, (0.05, 0.8, 0.99, 1e-6, 1e-9, jnp.bfloat16, 1e-2, _MASK), {}),
        ("adamw_defaults", _ADAMW, (0.05,), {}),
        ("sgd", _SGD, (0.05, 0.9, True, jnp.bfloat16), {}),
        ("sgd_defaults", _SGD, (0.05,), {}),
        ("sgd_no_momentum", _SGD, (0.05, None), {}),
        ("trace", _TRACE, (0.9, True, jnp.bfloat16), {}),
    )
)


def _params():
    return {"w": jnp.array([[0.5, -1.0, 2.0], [3.0, 0.25, -0.75]]), "b": jnp.ones(2)}


def _grads(n):
    rng = np.random.default_rng(0)
    return [
        jax.tree.map(
            lambda x: jnp.asarray(
                rng.standard_normal(x.shape) * 10.0 ** rng.uniform(-4, 1, x.shape),
                jnp.float32,
            ),
            _params(),
        )
        for _ in range(n)
    ]


@parameterized.parameters(*_TWINS)
class SignatureTest(parameterized.TestCase):
    def test_shared_arguments_then_keyword_only_extras(self, ours, theirs):
        ours_params = list(inspect.signature(ours).parameters.values())
        theirs_params = list(inspect.signature(theirs).parameters.values())
        for i, twin in enumerate(theirs_params):
            if twin.kind is inspect.Parameter.KEYWORD_ONLY:
                mine = inspect.signature(ours).parameters[twin.name]
            else:
                mine = ours_params[i]
            self.assertEqual((mine.name, mine.kind), (twin.name, twin.kind))
            if twin.default is not inspect.Parameter.empty:
                self.assertEqual(mine.default, twin.default, twin.name)
        shared = {q.name for q in theirs_params}
        extras = [q for q in ours_params if q.name not in shared]
        self.assertIn("p", [q.name for q in extras])
        for q in extras:
            self.assertIs(q.kind, inspect.Parameter.KEYWORD_ONLY, q.name)


class SameCallSameUpdatesTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(*_CALLS)
    def test_twin_call(self, pair, args, kwargs):
        ours, theirs = pair
        tx_ours, tx_theirs = ours(*args, **kwargs), theirs(*args, **kwargs)
        params = _params()
        s_ours, s_theirs = tx_ours.init(params), tx_theirs.init(params)
        update_ours = self.variant(tx_ours.update)
        # optax compiled: ours is one compiled program in both variants (an eager
        # step's rounding is a jitted step's, fused multiply-adds included).
        update_theirs = jax.jit(tx_theirs.update)
        for g in _grads(5):
            u_ours, s_ours = update_ours(g, s_ours, params)
            u_theirs, s_theirs = update_theirs(g, s_theirs, params)
            chex.assert_trees_all_equal(u_ours, u_theirs)
        # The moments too (ours adds the gain's count, p and hyperparameters).
        moments = [x for x in jax.tree.leaves(s_theirs) if x.ndim > 0]
        mine = [x for x in jax.tree.leaves(s_ours) if x.ndim > 0]
        chex.assert_trees_all_equal(mine[: len(moments)], moments)
