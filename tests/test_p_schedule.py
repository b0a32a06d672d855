"""Tests for `nsf_optax.p_schedule`."""

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from absl.testing import parameterized

from nsf_optax import p_schedule


def _tides():
    return {
        "constant": p_schedule.constant(-0.25),
        "cosine": p_schedule.cosine_tidal(-0.5, 0.5, period_steps=40, phase=0.3),
        "square": p_schedule.square_tidal(0.25, -0.25, every_steps=7),
        "pulse": p_schedule.pulse_tidal(
            0.5, 13, p_schedule.square_tidal(0.25, -0.25, every_steps=7)
        ),
    }


class ScheduleTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_constant(self):
        schedule = self.variant(p_schedule.constant(-0.25))
        for count in (0, 1, 10**9):
            value = schedule(jnp.asarray(count))
            self.assertEqual(value.dtype, jnp.float32)
            self.assertEqual(float(value), -0.25)

    @chex.variants(with_jit=True, without_jit=True)
    def test_cosine_tidal_closed_form(self):
        lo, hi, period, phase = -0.5, 0.25, 40, 0.7
        schedule = self.variant(p_schedule.cosine_tidal(lo, hi, period, phase))
        counts = np.arange(0, 5 * period)
        values = np.array([float(schedule(jnp.asarray(c))) for c in counts])
        expected = (hi + lo) / 2 + (hi - lo) / 2 * np.cos(
            2 * np.pi * counts / period + phase
        )
        np.testing.assert_allclose(values, expected, atol=1e-6)

    @chex.variants(with_jit=True, without_jit=True)
    def test_cosine_tidal_cycle_points(self):
        schedule = self.variant(p_schedule.cosine_tidal(-0.5, 0.5, 100))
        for count, expected in [(0, 0.5), (25, 0.0), (50, -0.5), (75, 0.0)]:
            for cycle in (0, 3, 1000):
                value = float(schedule(jnp.asarray(count + 100 * cycle)))
                self.assertAlmostEqual(value, expected, places=6)

    @chex.variants(with_jit=True, without_jit=True)
    def test_square_tidal(self):
        schedule = self.variant(p_schedule.square_tidal(0.25, -0.25, 200))
        got = [float(schedule(jnp.asarray(c))) for c in (0, 199, 200, 399, 400, 599)]
        self.assertEqual(got, [0.25, 0.25, -0.25, -0.25, 0.25, 0.25])

    @chex.variants(with_jit=True, without_jit=True)
    def test_pulse_tidal(self):
        tide = p_schedule.cosine_tidal(-0.5, 0.5, period_steps=10)
        schedule = self.variant(p_schedule.pulse_tidal(1.0, 5, tide))
        for count in range(5):
            self.assertEqual(float(schedule(jnp.asarray(count))), 1.0)
        for count in range(5, 40):
            self.assertAlmostEqual(
                float(schedule(jnp.asarray(count))),
                float(tide(jnp.asarray(count - 5))),
                places=6,
            )

    @chex.variants(with_jit=True, without_jit=True)
    def test_zero_length_pulse_is_the_tide(self):
        tide = p_schedule.square_tidal(0.1, -0.1, 3)
        schedule = self.variant(p_schedule.pulse_tidal(1.0, 0, tide))
        for count in range(12):
            self.assertEqual(
                float(schedule(jnp.asarray(count))), float(tide(jnp.asarray(count)))
            )

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters("constant", "cosine", "square", "pulse")
    def test_huge_count(self, name):
        """A count of 1e10 (a float without x64) neither overflows nor leaves range."""
        schedule = self.variant(_tides()[name])
        for count in (jnp.asarray(1e10), jnp.asarray(2**31 - 1, jnp.int32)):
            value = float(schedule(count))
            self.assertTrue(math.isfinite(value))
            self.assertBetween(value, -0.5 - 1e-6, 0.5 + 1e-6)

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters("cosine", "square")
    def test_periodic_at_int32_limit(self, name):
        """Integer counts are reduced exactly: period holds near the int32 max."""
        schedule = self.variant(_tides()[name])
        period = 40 if name == "cosine" else 14
        base = (2**31 - 1) // period * period - 3 * period
        for offset in range(period):
            a = schedule(jnp.asarray(offset, jnp.int32))
            b = schedule(jnp.asarray(base + offset, jnp.int32))
            self.assertAlmostEqual(float(a), float(b), places=6)


@pytest.mark.parametrize("name", ["constant", "cosine", "square", "pulse"])
def test_composes_with_join_schedules(name):
    tide = _tides()[name]
    joined = optax.join_schedules([p_schedule.constant(0.5), tide], boundaries=[10])
    assert float(joined(3)) == 0.5
    np.testing.assert_allclose(float(joined(25)), float(tide(15)), atol=1e-7)


def test_composes_with_inject_hyperparams():
    tide = p_schedule.square_tidal(0.25, -0.25, every_steps=2)
    opt = optax.inject_hyperparams(optax.sgd)(learning_rate=tide)
    params = jnp.zeros(3)
    state = opt.init(params)
    seen = []
    for _ in range(5):
        _, state = opt.update(jnp.ones(3), state, params)
        # After an update the state holds the value that update used.
        seen.append(float(state.hyperparams["learning_rate"]))
    assert seen == [0.25, 0.25, -0.25, -0.25, 0.25]


def test_under_vmap_and_grad_of_counts():
    tide = p_schedule.cosine_tidal(-1.0, 1.0, period_steps=8)
    values = jax.vmap(tide)(jnp.arange(8))
    np.testing.assert_allclose(values, np.cos(2 * np.pi * np.arange(8) / 8), atol=1e-6)


@pytest.mark.parametrize(
    ("factory", "kwargs", "argname", "error"),
    [
        (p_schedule.constant, {"value": float("nan")}, "value", ValueError),
        (p_schedule.constant, {"value": "0.5"}, "value", TypeError),
        (
            p_schedule.cosine_tidal,
            {"min_value": 0.5, "max_value": -0.5, "period_steps": 10},
            "max_value",
            ValueError,
        ),
        (
            p_schedule.cosine_tidal,
            {"min_value": -0.5, "max_value": 0.5, "period_steps": 0},
            "period_steps",
            ValueError,
        ),
        (
            p_schedule.cosine_tidal,
            {"min_value": -0.5, "max_value": 0.5, "period_steps": 2.5},
            "period_steps",
            TypeError,
        ),
        (
            p_schedule.cosine_tidal,
            {"min_value": -0.5, "max_value": float("inf"), "period_steps": 4},
            "max_value",
            ValueError,
        ),
        (
            p_schedule.cosine_tidal,
            {"min_value": -0.5, "max_value": 0.5, "period_steps": 4, "phase": np.nan},
            "phase",
            ValueError,
        ),
        (
            p_schedule.square_tidal,
            {"high_value": 0.1, "low_value": -0.1, "every_steps": -3},
            "every_steps",
            ValueError,
        ),
        (
            p_schedule.square_tidal,
            {"high_value": float("-inf"), "low_value": -0.1, "every_steps": 3},
            "high_value",
            ValueError,
        ),
        (
            p_schedule.pulse_tidal,
            {"pulse_value": 0.5, "pulse_steps": -1, "tidal": p_schedule.constant(0)},
            "pulse_steps",
            ValueError,
        ),
        (
            p_schedule.pulse_tidal,
            {"pulse_value": 0.5, "pulse_steps": 3, "tidal": 0.25},
            "tidal",
            TypeError,
        ),
        (
            p_schedule.pulse_tidal,
            {"pulse_value": None, "pulse_steps": 3, "tidal": p_schedule.constant(0)},
            "pulse_value",
            TypeError,
        ),
    ],
)
def test_bad_arguments_name_the_argument(factory, kwargs, argname, error):
    """A wrong type is a TypeError, a wrong value a ValueError; both name it."""
    with pytest.raises(error, match=argname):
        factory(**kwargs)


@pytest.mark.parametrize(
    "steps", [10, np.int64(10), np.array(10), jnp.array(10), jnp.array(10, jnp.uint8)]
)
def test_integers_of_every_kind(steps):
    """Python, NumPy and 0-d JAX integers are all the integer 10."""
    tide = p_schedule.cosine_tidal(-0.25, 0.5, period_steps=steps)
    square = p_schedule.square_tidal(0.25, -0.25, every_steps=steps)
    pulse = p_schedule.pulse_tidal(0.5, steps, square)
    assert float(tide(5)) == pytest.approx(-0.25)
    assert [float(square(t)) for t in (9, 10)] == [0.25, -0.25]
    assert [float(pulse(t)) for t in (9, 10)] == [0.5, 0.25]


@pytest.mark.parametrize(
    "value", [0.25, np.float32(0.25), np.array(0.25), jnp.array(0.25), 1]
)
def test_reals_of_every_kind(value):
    assert float(p_schedule.constant(value)(3)) == float(value)


@pytest.mark.parametrize(
    "steps, error",
    [(jnp.array([10]), ValueError), (jnp.array(10.0), TypeError), (True, TypeError)],
)
def test_integer_arrays_must_be_0d_integers(steps, error):
    with pytest.raises(error, match="period_steps"):
        p_schedule.cosine_tidal(-0.25, 0.5, period_steps=steps)


def test_tidal_must_be_traceable():
    def python_branch(count):
        return 0.25 if count < 3 else -0.25

    with pytest.raises(TypeError, match=r"tidal must be a schedule.*traced"):
        p_schedule.pulse_tidal(0.5, 3, python_branch)


def test_finite_schedules_declare_their_values():
    """values[index(t)] is the schedule's value at every step."""
    square = p_schedule.square_tidal(0.25, -0.25, every_steps=3)
    cases = {
        "constant": (p_schedule.constant(0.5), (0.5,)),
        "square": (square, (0.25, -0.25)),
        "pulse": (p_schedule.pulse_tidal(0.5, 4, square), (0.5, 0.25, -0.25)),
        "pulse of a repeated value": (
            p_schedule.pulse_tidal(0.25, 4, square),
            (0.25, 0.25, -0.25),
        ),
    }
    for name, (schedule, values) in cases.items():
        assert schedule.values == values, name
        for t in range(20):
            assert values[int(schedule.index(t))] == float(schedule(t)), (name, t)
    tide = p_schedule.cosine_tidal(-0.25, 0.5, period_steps=8)
    assert not hasattr(tide, "values")
    assert not hasattr(p_schedule.pulse_tidal(0.5, 4, tide), "values")


def test_cosine_tides_declare_their_range():
    """bounds holds every value; a pulse widens it to its own value; no other
    schedule declares one (their values are declared instead)."""
    tide = p_schedule.cosine_tidal(-0.25, 0.5, period_steps=8, phase=0.3)
    assert tide.bounds == (-0.25, 0.5)
    values = np.array([float(tide(t)) for t in range(40)])
    assert values.min() >= -0.25 and values.max() <= 0.5
    assert p_schedule.pulse_tidal(0.5, 4, tide).bounds == (-0.25, 0.5)
    assert p_schedule.pulse_tidal(0.9, 4, tide).bounds == (-0.25, 0.9)
    assert p_schedule.pulse_tidal(-1.0, 4, tide).bounds == (-1.0, 0.5)
    square = p_schedule.square_tidal(0.25, -0.25, every_steps=3)
    for schedule in (square, p_schedule.pulse_tidal(0.5, 4, square)):
        assert not hasattr(schedule, "bounds")


# The registry the examples build their schedules from. ---------------------------


def test_registry_builds_the_schedules_it_names():
    defaults = {name: p.default for name, p in p_schedule.params().items()}
    direct = {
        "constant": p_schedule.constant(-0.125),
        "cosine_tidal": p_schedule.cosine_tidal(-0.25, 0.25, 400),
        "pulse_tidal": p_schedule.pulse_tidal(
            -0.25, 200, p_schedule.square_tidal(0.25, -0.25, 200)
        ),
    }
    assert list(p_schedule.SCHEDULES) == list(direct)
    counts = np.arange(0, 1200, 7)
    for name, schedule in direct.items():
        built = p_schedule.get(name).from_params(defaults)
        np.testing.assert_array_equal(
            jax.vmap(built)(counts), jax.vmap(schedule)(counts)
        )
    assert p_schedule.get("pulse_tidal").periods() == (
        "pulse_steps",
        "tidal_every_steps",
    )


def test_registry_refuses_an_unknown_or_repeated_name():
    with pytest.raises(ValueError, match=r"Unknown p schedule 'tidal'; choose one of"):
        p_schedule.get("tidal")
    with pytest.raises(ValueError, match="already registered"):
        p_schedule.register(p_schedule.get("constant"))


def test_registry_reads_without_jax():
    import subprocess
    import sys

    code = (
        "import sys; from nsf_optax import p_schedule; "
        "assert p_schedule.params()['p_value'].default == -0.125; "
        "assert 'jax' not in sys.modules, 'jax'; print('ok')"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert proc.stdout.strip() == "ok", proc.stderr
