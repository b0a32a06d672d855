"""Checks that need their own process: jax flags must be set before import.

Run as ``python -m tests._subprocess_checks NAME``; `test_subprocess.py` drives it.
"""

import os
import sys


def x64() -> None:
    """float64 params: updates, state and p-power stay float64."""
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import numpy as np
    import optax

    import nsf_optax
    from nsf_optax import p_schedule
    from tests import _reference

    tide = p_schedule.cosine_tidal(-0.5, 0.5, period_steps=5)
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal(6) * 10.0 ** rng.uniform(-3, 1, 6) for _ in range(8)]
    for p in (0.5, 0.25, -0.5, 0.3, 0.0, tide):
        for factory in (nsf_optax.scale_by_pexp, nsf_optax.scale_by_pexp_momentum):
            opt = factory(p=p)
            params = jnp.zeros(6, jnp.float64)
            state = opt.init(params)
            for g in grads:
                updates, new_state = jax.jit(opt.update)(jnp.asarray(g), state)
                assert updates.dtype == jnp.float64, updates.dtype
                for a, b in zip(
                    jax.tree.leaves(new_state), jax.tree.leaves(state), strict=True
                ):
                    assert a.dtype == b.dtype, (a.dtype, b.dtype)
                state = new_state
    # float64 agrees with the float64 reference to float64 precision.
    opt = nsf_optax.scale_by_pexp(b1=0.9, b2=0.99, p=tide)
    state = opt.init(jnp.zeros(6))
    ref = _reference.pexp_updates(
        grads, b1=0.9, b2=0.99, eps=1e-8, eps_root=0.0, p_of_count=tide
    )
    for g, want in zip(grads, ref, strict=True):
        got, state = opt.update(jnp.asarray(g), state)
        np.testing.assert_allclose(got, want, rtol=1e-6)
    # p = 1/2 is Adam in float64 too, static or traced (inject_hyperparams).
    pairs = (
        (nsf_optax.nsf(1e-2), optax.adam(1e-2)),
        (
            optax.inject_hyperparams(nsf_optax.nsf)(1e-2),
            optax.inject_hyperparams(optax.adam)(1e-2),
        ),
    )
    for ours, theirs in pairs:
        s1, s2 = ours.init(jnp.zeros(6)), theirs.init(jnp.zeros(6))
        for g in grads:
            u1, s1 = jax.jit(ours.update)(jnp.asarray(g), s1)
            u2, s2 = jax.jit(theirs.update)(jnp.asarray(g), s2)
            np.testing.assert_array_equal(u1, u2)
            assert u1.dtype == jnp.float64


def sharding() -> None:
    """Sharded params keep their sharding through init and a jitted update."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax
    from jax.sharding import Mesh, NamedSharding
    from jax.sharding import PartitionSpec as P

    import nsf_optax
    from nsf_optax import p_schedule

    assert jax.device_count() == 8, jax.devices()
    mesh = Mesh(np.array(jax.devices()).reshape(4, 2), ("data", "model"))
    shardings = {
        "w": NamedSharding(mesh, P("data", "model")),
        "b": NamedSharding(mesh, P("model")),
        "s": NamedSharding(mesh, P()),
    }
    params = {
        "w": jnp.arange(64.0).reshape(8, 8) / 64,
        "b": jnp.linspace(-1, 1, 8),
        "s": jnp.ones(()),
    }
    params = jax.device_put(params, shardings)
    tide = p_schedule.square_tidal(0.25, -0.25, every_steps=2)
    for opt in (
        nsf_optax.nsf(1e-2, p=tide),
        nsf_optax.nsf(1e-2, p=-0.5, normalize="rms"),
        nsf_optax.nsf_sgd(1e-2, 0.9, p=tide),
    ):
        # Eager init: every moment takes its parameter's sharding.
        state = opt.init(params)
        for key in params:
            found = optax.tree.get_all_with_path(state, key)
            assert len(found) >= 2, found
            for _, moment in found:
                assert moment.sharding == shardings[key], (key, moment.sharding)

        @jax.jit
        def step(params, state, opt=opt):
            grads = jax.grad(lambda q: sum(jnp.sum(x**2) for x in jax.tree.leaves(q)))(
                params
            )
            updates, state = opt.update(grads, state, params)
            return optax.apply_updates(params, updates), state

        new_params, new_state = step(params, state)
        new_params, new_state = step(new_params, new_state)
        for key in params:
            assert new_params[key].sharding.is_equivalent_to(
                shardings[key], new_params[key].ndim
            ), (key, new_params[key].sharding)
        for key in params:
            for _, moment in optax.tree.get_all_with_path(new_state, key):
                assert moment.sharding.is_equivalent_to(shardings[key], moment.ndim), (
                    key,
                    moment.sharding,
                )
        # The sharded run equals the same computation on one device.
        single = jax.device_put(jax.device_get(params), jax.devices()[0])
        ref_params, _ = step(*step(single, jax.jit(opt.init)(single)))
        for key in params:
            np.testing.assert_allclose(
                np.asarray(new_params[key]), np.asarray(ref_params[key]), rtol=1e-6
            )


if __name__ == "__main__":
    name = sys.argv[1]
    print(f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')}")
    {"x64": x64, "sharding": sharding}[name]()
    print(f"{name}: ok")
