"""Every fast path of the p-gain against a float64 reference of the formula.

The fast paths (``nsf_optax/_power.py``): a static ``p`` in ``{0, 1, +-1/2,
+-1/4}`` uses exact sqrt / rsqrt forms; any other ``p``, static or traced (a
schedule), uses the polynomial ``2 ** (p * log2 x)`` in float32; ``normalize=
"rms"`` uses a one-pass sum of squares with a scaled fallback.

The reference takes the float32 moments the transform stored (the moment
updates and bias corrections are optax's own code, rounding included) and
evaluates, in float64, ``mhat / ((vhat + eps_root) ** p + eps)``. The float32
limits are applied to it as documented: ``g**2`` above float32's max is
``inf`` in the stored moment (as in ``optax.adam``), and values below the
smallest normal float32 read as 0, in the second moment (XLA's CPU ``sqrt``
and ``log`` do the same) and in the update. The tolerance is the documented
error bound of the polynomial, ``1e-6 + 1e-7 * |p * log2 x|`` relative, and
2e-6 for the exact forms; zeros, infinities and NaNs must match exactly.
"""

import chex
import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import optax
from absl.testing import parameterized

import nsf_optax
from nsf_optax import _power, _transform, p_schedule

_F32_TINY = float(np.finfo(np.float32).tiny)
_EXACT_P = (0.0, 1.0, 0.5, -0.5, 0.25, -0.25)
# General exponents kept to |p| < 1, so that x ** p stays inside float32's
# normal range for every normal x (beyond it the polynomial saturates; see
# test_power_saturates_beyond_the_normal_range).
_GENERAL_P = (0.3, -0.7, 0.75, -0.9, 1e-3)
# A schedule that crosses exact and general values, and 0, step by step.
_P_SEQUENCE = (0.5, 0.0, -0.3, 0.25, -0.5, 0.7, 0.0, -0.25, 0.1)


def _reference_power(x: np.ndarray, p: float) -> np.ndarray:
    """x ** p in float64, with float32 denormals read as 0 (but x ** 1 is x)."""
    if p != 1.0:
        x = np.where(x < _F32_TINY, 0.0, x)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return np.power(x, np.float64(np.float32(p)))


def _assert_close(
    got, want, p: float, x: np.ndarray, exact_form: bool, leafwise: bool = False
) -> None:
    """Relative error within the bound; 0, inf and NaN identical.

    ``leafwise``: the bound of the worst coordinate applies to all of them (an
    RMS rescaling spreads every coordinate's error over the leaf).
    """
    got = np.asarray(got, np.float64)
    want = np.asarray(want, np.float64)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    special = (np.isinf(want) | (want == 0)) & ~np.isnan(want)
    np.testing.assert_array_equal(got[special], want[special])
    ok = ~special & ~np.isnan(want)
    with np.errstate(divide="ignore"):
        log2x = np.abs(np.log2(np.where(x > 0, x, 1.0)))
    if exact_form:
        rtol = np.full_like(want, 2e-6)
    else:
        rtol = 1e-6 + 1e-7 * np.abs(p) * np.where(np.isfinite(log2x), log2x, 0.0)
    if leafwise:
        rtol = np.full_like(rtol, rtol.max())
    err = np.abs(got[ok] - want[ok]) / np.abs(want[ok])
    assert np.all(err <= rtol[ok]), (
        f"p={p}: max relative error {err.max():.3g}, "
        f"worst error / bound {np.max(err / rtol[ok]):.3g}"
    )


def _power_inputs() -> np.ndarray:
    """Log-uniform over float32's range, plus 0, denormals, extremes, inf, NaN."""
    rng = np.random.default_rng(0)
    edges = [0.0, 1e-45, 1e-40, _F32_TINY, 1.0, 0.5, 2.0, 3.0e38, np.inf, np.nan]
    return np.concatenate([10.0 ** rng.uniform(-37.9, 38.5, 20_000), edges]).astype(
        np.float32
    )


def _grads(n_steps: int) -> list[dict[str, jax.Array]]:
    """Gradients with 0, tiny (1e-30), huge (1e30) and ordinary entries.

    Leaf ``w`` mixes all scales: coordinate 0 is always 0 (vhat = 0, so
    ``0 ** p``), 1 is 1e-30 (g**2 underflows: vhat = 0 with mhat != 0), 2 is
    1e30 (g**2 overflows: vhat = inf), 3 is 1e19 (vhat near float32's max).
    Leaf ``tiny`` is all ~1e-25 and leaf ``huge`` all ~1e25, so that the RMS
    of their updates takes the scaled (underflow / overflow) fallback.
    """
    rng = np.random.default_rng(1)
    out = []
    for _ in range(n_steps):
        w = rng.standard_normal((4, 8)) * 10.0 ** rng.uniform(-4, 1, (4, 8))
        w.flat[:4] = [0.0, 1e-30, 1e30, 1e19]
        out.append(
            {
                "w": jnp.asarray(w, jnp.float32),
                "tiny": jnp.asarray(1e-25 * rng.standard_normal(8), jnp.float32),
                "huge": jnp.asarray(1e25 * rng.standard_normal(8), jnp.float32),
            }
        )
    return out


def _inverse_bias_correction(decay: float, count: int, variant) -> float:
    """``1 / (1 - decay**count)`` as the transform computes it, in float32.

    Its rounding (1e-5 relative and more at b2 = 0.999 and small counts, and
    not the same op by op and compiled) is part of every float32 Adam, not of
    the fast paths: the float64 reference takes it over from optax itself,
    compiled, as the transforms run it in both variants (an eager update is one
    compiled program).
    """
    del variant
    one = jnp.ones([], jnp.float32)
    count = jnp.asarray(count, jnp.int32)
    return float(
        jax.jit(optax.tree.bias_correction, static_argnums=1)(one, decay, count)
    )


def _reference_update(
    direction, nu, inv_bias_correction, p, eps, eps_root, normalize, reference_p
):
    """The formula in float64 from the stored float32 moments (one leaf).

    Results below float32's smallest normal are flushed to 0, as XLA does
    (before the RMS rescaling too: an update that underflowed stays zero).
    ``normalize``: rescaled to the RMS of the update at ``reference_p`` (1/2 in
    the Adam flavour, 0 in the SGD flavour).
    """
    nu_hat = np.asarray(nu, np.float64) * inv_bias_correction
    x = nu_hat + eps_root
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        u = direction / (_reference_power(x, p) + eps)
        u = np.where(np.abs(u) < _F32_TINY, 0.0, u)
        if normalize and p != reference_p:
            target = direction / (_reference_power(x, reference_p) + eps)
            target = np.where(np.abs(target) < _F32_TINY, 0.0, target)
            rms_u = np.sqrt(np.mean(np.square(u)))
            if rms_u > 0:  # an all-zero update stays zero
                u = u * (np.sqrt(np.mean(np.square(target))) / rms_u)
    return np.where(np.abs(u) < _F32_TINY, 0.0, u), x


class PowerTest(chex.TestCase):
    """``_power`` itself, over the whole float32 range."""

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters(*[(p,) for p in _EXACT_P + _GENERAL_P])
    def test_static_p(self, p):
        x = _power_inputs()
        got = self.variant(lambda x: _power.power(x, p))(jnp.asarray(x))
        # A static p = 1 returns x itself, so inf stays inf and NaN stays NaN.
        _assert_close(got, _reference_power(x, p), p, x, p in _EXACT_P)

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters(*[(p,) for p in (*_P_SEQUENCE, -0.9, 0.9)])
    def test_traced_p(self, p):
        x = _power_inputs()
        got = self.variant(_power.power)(jnp.asarray(x), jnp.float32(p))
        _assert_close(got, _reference_power(x, p), p, x, exact_form=False)

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters((0.5,), (-0.5,), (126 / 128,), (-126 / 128,), (0.3,))
    def test_a_bounded_p_needs_no_clip(self, p):
        """|p| <= 126/128 declared: the clip left out changes no value."""
        x = jnp.asarray(_power_inputs())
        bounded = self.variant(lambda x, p_t: _power.power(x, p_t, abs_max=abs(p)))
        got = bounded(x, jnp.float32(p))
        want = self.variant(_power.power)(x, jnp.float32(p))
        np.testing.assert_array_equal(got, want)

    def test_only_a_bound_within_126_128_drops_the_clip(self):
        x = jnp.asarray([3e38, 2e-38], jnp.float32)
        selects = {}
        for abs_max in (None, 126 / 128, 1.0):
            fn = jax.jit(lambda x, p, m=abs_max: _power.power(x, p, abs_max=m))
            selects[abs_max] = fn.lower(x, jnp.float32(0.9)).as_text().count("select")
        self.assertEqual(selects[None], selects[1.0])
        self.assertLess(selects[126 / 128], selects[None])

    @chex.variants(with_jit=True, without_jit=True)
    def test_traced_p_zero_is_exactly_one(self):
        x = _power_inputs()
        got = self.variant(_power.power)(jnp.asarray(x), jnp.float32(0.0))
        np.testing.assert_array_equal(got, np.ones_like(x))

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters((2.0,), (-2.0,), (1.5,))
    def test_power_saturates_beyond_the_normal_range(self, p):
        # x ** p beyond [2**-126, 2**126] saturates there (documented); the
        # update it divides is then 0 to float32 precision either way.
        x = jnp.asarray([1e30, 1e-30, 3e38, 2e-38], jnp.float32)
        got = np.asarray(self.variant(_power.power)(x, jnp.float32(p)))
        want = np.clip(_reference_power(np.asarray(x), p), 2.0**-126, 2.0**126)
        np.testing.assert_allclose(got, want, rtol=3e-5)


class UpdateTest(chex.TestCase):
    """Whole updates, against the float64 reference, step by step."""

    def _check(self, tx, p_of_count, grads, *, b2, eps, eps_root, normalize, exact):
        params = jax.tree.map(jnp.zeros_like, grads[0])
        state = tx.init(params)
        update = self.variant(tx.update)
        for step, g in enumerate(grads):
            p = p_of_count(step)
            u, state = update(g, state, params)
            adam = isinstance(state, _transform.ScaleByPexpState)
            if adam:
                scale = _inverse_bias_correction(0.9, step + 1, self.variant)
                direction = {
                    k: np.asarray(m, np.float64) * scale for k, m in state.mu.items()
                }
            else:
                direction = {
                    k: np.asarray(t, np.float64) for k, t in state.trace.items()
                }
            for key in g:
                nu = state.nu[key]
                if isinstance(nu, optax.EmptyState):  # a static p = 0 keeps none
                    nu = np.zeros(())
                want, x = _reference_update(
                    direction[key],
                    nu,
                    _inverse_bias_correction(b2, step + 1, self.variant),
                    p,
                    eps,
                    eps_root,
                    normalize,
                    0.5 if adam else 0.0,
                )
                _assert_close(u[key], want, p, x, exact, leafwise=normalize)

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters(
        *[(p, False) for p in _EXACT_P + _GENERAL_P[:3]],
        (0.3, True),
        (-0.5, True),
    )
    def test_scale_by_pexp_static_p(self, p, normalize):
        tx = nsf_optax.scale_by_pexp(
            p=p, eps_root=1e-30, normalize="rms" if normalize else None
        )
        self._check(
            tx,
            lambda _: p,
            _grads(3),
            b2=0.999,
            eps=1e-8,
            eps_root=1e-30,
            normalize=normalize,
            exact=p in _EXACT_P,
        )

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters((False,), (True,))
    def test_scale_by_pexp_scheduled_p_crossing_values(self, normalize):
        seq = jnp.asarray(_P_SEQUENCE, jnp.float32)
        schedule = lambda count: seq[count]  # noqa: E731
        tx = nsf_optax.scale_by_pexp(p=schedule, normalize="rms" if normalize else None)
        self._check(
            tx,
            lambda step: _P_SEQUENCE[step],
            _grads(len(_P_SEQUENCE)),
            b2=0.999,
            eps=1e-8,
            eps_root=0.0,
            normalize=normalize,
            exact=False,
        )

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters((0.0, False), (-0.25, False), (0.3, True))
    def test_scale_by_pexp_momentum(self, p, normalize):
        tx = nsf_optax.scale_by_pexp_momentum(
            p=p, normalize="rms" if normalize else None
        )
        self._check(
            tx,
            lambda _: p,
            _grads(3),
            b2=0.999,
            eps=1e-8,
            eps_root=0.0,
            normalize=normalize,
            exact=p in _EXACT_P,
        )

    @chex.variants(with_jit=True, without_jit=True)
    def test_scheduled_p_through_zero_is_sgd_bit_for_bit(self):
        seq = jnp.asarray(_P_SEQUENCE, jnp.float32)
        grads = _grads(len(_P_SEQUENCE))
        ours = nsf_optax.nsf_sgd(0.1, 0.9, p=lambda count: seq[count])
        theirs = optax.sgd(0.1, momentum=0.9)
        s1, s2 = ours.init(grads[0]), theirs.init(grads[0])
        # optax compiled: ours is one compiled program in both variants.
        update1, update2 = self.variant(ours.update), jax.jit(theirs.update)
        for step, g in enumerate(grads):
            u1, s1 = update1(g, s1)
            u2, s2 = update2(g, s2)
            if _P_SEQUENCE[step] == 0.0:
                chex.assert_trees_all_equal(u1, u2)


def _declared(values, index):
    """A schedule of your own that declares ``values`` and its ``index``."""

    def schedule(count):
        return jnp.asarray(values, jnp.float32)[index(count)]

    schedule.values = tuple(values)  # pyright: ignore[reportFunctionMemberAccess]
    schedule.index = index  # pyright: ignore[reportFunctionMemberAccess]
    return schedule


def _has_conditional(jaxpr) -> bool:
    """Whether a cond / switch appears anywhere in ``jaxpr``, nested included."""
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "cond":
            return True
        for sub in jax.extend.core.jaxprs_in_params(eqn.params):
            if _has_conditional(sub):
                return True
    return False


class DispatchTest(chex.TestCase):
    """Declared schedule values select the static kernels inside the fused loop."""

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.product(
        alias=("nsf", "nsf_sgd"),
        pulse_value=(0.5, 0.0),
        normalize=(None, "rms"),
    )
    def test_each_step_is_the_static_p_update_bit_for_bit(
        self, alias, pulse_value, normalize
    ):
        # The paper's shape: a pulse, then a square tide between sqrt forms.
        schedule = p_schedule.pulse_tidal(
            pulse_value, 2, p_schedule.square_tidal(0.25, -0.25, every_steps=2)
        )
        factory = getattr(nsf_optax, alias)
        grads = _grads(6)
        tx = factory(0.1, p=schedule, normalize=normalize)
        state = tx.init(grads[0])
        update = self.variant(tx.update)
        for step, g in enumerate(grads):
            u, state = update(g, state)
            static = factory(0.1, p=float(schedule(step)), normalize=normalize)
            s = static.init(grads[0])
            for h in grads[: step + 1]:
                want, s = static.update(h, s)
            chex.assert_trees_all_equal(u, want)

    @chex.variants(with_jit=True, without_jit=True)
    def test_a_declaration_of_your_own_defines_p(self):
        """values[index(count)] is p, each step its static kernel, bit for bit."""
        values = (0.5, -0.5, 0.3)
        p = _declared(values, lambda count: jnp.asarray(count % 3, jnp.int32))
        tx = nsf_optax.scale_by_pexp(p=p)
        grads = _grads(4)
        state = tx.init(grads[0])
        for step, g in enumerate(grads):
            u, state = self.variant(tx.update)(g, state)
            static = nsf_optax.scale_by_pexp(p=values[step % 3])
            s = static.init(grads[0])
            for h in grads[: step + 1]:
                want, s = jax.jit(static.update)(h, s)
            chex.assert_trees_all_equal(u, want)
            self.assertEqual(float(state.p), float(np.float32(values[step % 3])))

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters(None, "rms")
    def test_a_declared_range_changes_no_update(self, normalize):
        """The cosine tide (bounds declared) against the same tide undeclared:
        bit for bit, at every step."""
        tide = p_schedule.cosine_tidal(-0.5, 0.5, period_steps=6)
        self.assertEqual(tide.bounds, (-0.5, 0.5))
        grads = _grads(7)
        txs = [
            nsf_optax.scale_by_pexp(p=p, normalize=normalize)
            for p in (tide, lambda count: tide(count))
        ]
        states = [tx.init(grads[0]) for tx in txs]
        for g in grads:
            (u, s), (want, s_want) = (
                self.variant(tx.update)(g, st)
                for tx, st in zip(txs, states, strict=True)
            )
            chex.assert_trees_all_equal(u, want)
            states = [s, s_want]

    @chex.variants(with_jit=True, without_jit=True)
    def test_a_declared_range_defines_p(self):
        """A value outside the declared range is clipped to it."""

        def schedule(count):
            return jnp.where(count % 2 == 0, 0.7, -0.9).astype(jnp.float32)

        schedule.bounds = (-0.25, 0.5)  # pyright: ignore[reportFunctionMemberAccess]

        def clipped(count):
            return jnp.where(count % 2 == 0, 0.5, -0.25).astype(jnp.float32)

        grads = _grads(4)
        tx, ref = (nsf_optax.scale_by_pexp(p=p) for p in (schedule, clipped))
        state, ref_state = tx.init(grads[0]), ref.init(grads[0])
        for step, g in enumerate(grads):
            u, state = self.variant(tx.update)(g, state)
            want, ref_state = jax.jit(ref.update)(g, ref_state)
            chex.assert_trees_all_equal(u, want)
            self.assertEqual(float(state.p), (0.5, -0.25)[step % 2])

    def test_injected_schedule_keeps_the_dispatch(self):
        """inject_hyperparams with the schedule passed (static_args=("p",))."""
        p = p_schedule.pulse_tidal(0.5, 2, p_schedule.square_tidal(0.25, -0.25, 2))
        injected = optax.inject_hyperparams(nsf_optax.nsf, static_args=("p",))(
            learning_rate=0.1, p=p
        )
        direct = nsf_optax.nsf(0.1, p=p)
        grads = _grads(6)
        s_inj, s_dir = injected.init(grads[0]), direct.init(grads[0])
        jaxpr = jax.make_jaxpr(injected.update)(grads[0], s_inj)
        self.assertFalse(_has_conditional(jaxpr.jaxpr))
        for g in grads:
            u_inj, s_inj = jax.jit(injected.update)(g, s_inj)
            u_dir, s_dir = jax.jit(direct.update)(g, s_dir)
            # Injected, b1 and b2 are float32 arrays: b2**t and 1 - b2**t are
            # rounded in float32 (1e-5 relative at b2 = 0.999), not in double.
            chex.assert_trees_all_close(u_inj, u_dir, rtol=1e-4)

    @parameterized.parameters("nsf", "nsf_sgd")
    def test_no_conditional_selects_the_kernel(self, alias):
        # XLA's CPU backend materialises every operand and result of a
        # conditional's branch: over the leaves that cost 4.6-5.7x Adam's step.
        p = p_schedule.pulse_tidal(
            0.5, 2, p_schedule.square_tidal(0.25, -0.25, every_steps=2)
        )
        tx = getattr(nsf_optax, alias)(0.1, p=p)
        grads = _grads(1)[0]
        jaxpr = jax.make_jaxpr(tx.update)(grads, tx.init(grads))
        self.assertFalse(_has_conditional(jaxpr.jaxpr))
        # The check itself sees a conditional where there is one.
        with_cond = jax.make_jaxpr(
            lambda x: jax.lax.cond(x.sum() > 0, jnp.sin, jnp.cos, x)
        )(grads["w"])
        self.assertTrue(_has_conditional(with_cond.jaxpr))
