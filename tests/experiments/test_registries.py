"""The registries: p schedules, optimizers and methods, presets; flags from metadata.

A p schedule registered here, in the test only, must reach every example command
(Config, flags, method labels, the optimizer builder, the budgets' period scaling)
with no other file changed.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from nsf_optax import p_schedule
from nsf_optax.experiments.compare import budgets, command, compare
from nsf_optax.experiments.resnet import __main__ as run_cli
from nsf_optax.experiments.resnet import configs, methods, optimizers
from nsf_optax.experiments.resnet.configs.default import Config, field_specs
from nsf_optax.experiments.runner.errors import ConfigError
from nsf_optax.experiments.runner.fields import field_spec, meta

TINY = configs.get_config("tiny")


def _ramp(ramp_start_value: float, ramp_end_value: float, ramp_steps: int):
    return optax.linear_schedule(ramp_start_value, ramp_end_value, ramp_steps)


@pytest.fixture
def ramp():
    """A p schedule that exists only while the test runs."""
    entry = p_schedule.register(
        p_schedule.Registered(
            name="linear_ramp",
            label="ramp",
            build=_ramp,
            params=(
                p_schedule.Param("ramp_start_value", 0.5, "p at step 0."),
                p_schedule.Param("ramp_end_value", -0.25, "p from ramp_steps on."),
                p_schedule.Param(
                    "ramp_steps",
                    40,
                    "the length of the ramp, in steps.",
                    low=0,
                    low_open=True,
                    period=True,
                ),
            ),
            help="p linear from ramp_start_value to ramp_end_value",
            ordered=(("ramp_end_value", "ramp_start_value"),),
        )
    )
    yield entry
    del p_schedule.SCHEDULES[entry.name]


def test_a_registered_schedule_reaches_config_and_flags(ramp):
    config = dataclasses.replace(TINY, p_schedule="linear_ramp", ramp_steps=8)
    assert config.p_params["ramp_steps"] == config.ramp_steps == 8
    assert config.method == "nsf-ramp"
    assert config.asdict()["ramp_end_value"] == -0.25
    with pytest.raises(ConfigError, match=r"ramp_end_value \(1.0\) must not exceed"):
        dataclasses.replace(config, ramp_end_value=1.0)
    args = run_cli.build_parser().parse_args(
        ["--config", "tiny", "--p_schedule", "linear_ramp", "--ramp_steps", "4"]
    )
    assert args.ramp_steps == 4
    from_flags = run_cli.cli.config_from_flags(TINY, args, field_specs())
    assert (from_flags.p_schedule, from_flags.ramp_steps) == ("linear_ramp", 4)
    assert "--ramp_steps" in run_cli.build_parser().format_help()


def test_a_registered_schedule_reaches_the_optimizer_and_budgets(ramp):
    config = dataclasses.replace(TINY, p_schedule="linear_ramp", ramp_steps=8)
    p = optimizers.create_p_schedule(config)
    assert [float(np.asarray(p(t))) for t in (0, 4, 8, 100)] == [
        0.5,
        0.125,
        -0.25,
        -0.25,
    ]
    tx = optimizers.create_optimizer(config)
    params = {"w": jnp.ones((3, 2)), "b": jnp.zeros(2)}
    updates, _ = tx.update(params, tx.init(params), params)
    assert all(np.isfinite(x).all() for x in jax.tree.leaves(updates))
    quarter = budgets.budget_config(dataclasses.replace(config, num_steps=40), 0.25)
    assert quarter.ramp_steps == 2
    assert budgets.p_periods_of("linear_ramp") == {"ramp_steps": 1}
    assert compare.method_config(TINY, "nsf-ramp", 3).p_schedule == "linear_ramp"
    assert compare.check_methods(["sgd", "nsf-ramp"], 1) == ["sgd", "nsf-ramp"]
    # ... and its cyclic baselines: the learning rate follows the ramp's shape.
    assert methods.overrides("adam-cyclic-ramp") == dict(
        optimizer="adam-cyclic", p_schedule="linear_ramp"
    )
    cyclic = dataclasses.replace(config, optimizer="sgd-cyclic", cyclic_amplitude=4.0)
    assert cyclic.method == "sgd-cyclic-ramp"
    cycle = optimizers.create_lr_cycle(cyclic)  # p from 0.5 down to 0.03125 at step 5
    np.testing.assert_allclose(
        [float(np.asarray(cycle(t))) for t in (0, 5)], [4.0, 0.25], rtol=1e-5
    )


def test_the_registry_refuses_what_it_cannot_keep_apart(ramp):
    with pytest.raises(ValueError, match="already registered"):
        p_schedule.register(ramp)
    clash = dataclasses.replace(ramp, name="other", label="other")
    clash = dataclasses.replace(
        clash, params=(p_schedule.Param("p_min", 0.0, "another p_min."),), ordered=()
    )
    with pytest.raises(ValueError, match="declared differently"):
        p_schedule.register(clash)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: p_schedule.get("ramp"), r"Unknown p schedule 'ramp'; choose one of"),
        (
            lambda: Config(p_schedule="ramp"),
            r"Unknown p_schedule 'ramp'; choose one of \['constant'",
        ),
        (lambda: Config(optimizer="lamb"), r"Unknown optimizer 'lamb'; choose one"),
        (lambda: methods.overrides("nsf-ramp"), r"Unknown method 'nsf-ramp'"),
        (lambda: Config(dataset="mnist"), r"Unknown dataset 'mnist'; choose one"),
        (lambda: Config(model="vit"), r"Unknown model 'vit'; choose one"),
        (lambda: configs.get_config("cifar"), r"Unknown config 'cifar'; choose"),
        (lambda: Config(ramp_steps=3), r"Unknown config field 'ramp_steps'"),
        (
            lambda: budgets.p_periods_of("ramp"),
            r"Unknown p schedule 'ramp'; choose one of",
        ),
    ],
)
def test_unknown_names_are_refused_naming_the_choices(call, match):
    with pytest.raises((ValueError, ConfigError), match=match):
        call()


def test_an_unknown_schedule_on_the_command_line_is_one_line(capsys):
    status = run_cli.main(["--config", "tiny", "--p_schedule", "ramp"])
    assert status == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "argument --p_schedule: invalid choice: 'ramp'" in err[0]
    assert "'pulse_tidal'" in err[0]


def test_every_field_has_help_metadata():
    # A field added without metadata=meta("...") fails here (and in --help).
    for field in dataclasses.fields(Config):
        assert len(field.metadata.get("help", "")) > 10, field.name
    for param in p_schedule.params().values():
        assert len(param.help) > 5, param.name


def test_a_field_without_help_is_refused_by_the_flag_generator():
    @dataclasses.dataclass(frozen=True)
    class Bare:
        flag: bool = False
        helped: bool = dataclasses.field(default=False, metadata=meta("a help text"))

    bare, helped = dataclasses.fields(Bare)
    with pytest.raises(TypeError, match="'flag' has no help metadata"):
        field_spec(bare, bool)
    assert field_spec(helped, bool).help == "a help text"


def test_bounds_and_help_come_from_metadata():
    specs = field_specs()
    bounds = {name: spec.bound for name, spec in specs.items() if spec.bound}
    assert bounds["num_steps"].describe() == "> 0"
    assert bounds["pulse_steps"].describe() == ">= 0"
    assert bounds["p_value"].describe() == "finite"
    assert specs["optimizer"].choices == tuple(methods.OPTIMIZERS)
    assert specs["p_schedule"].choices == tuple(p_schedule.SCHEDULES)
    help_text = run_cli.build_parser().format_help()
    assert "the length of the pulse phase of pulse_tidal. [>= 0]" in " ".join(
        help_text.split()
    )


def test_optimizer_table_and_builders_agree():
    assert set(optimizers.BUILDERS) == set(methods.OPTIMIZERS)
    assert set(methods.DEFAULT_METHODS) <= set(methods.methods())


def test_compare_dataset_flag_is_a_deprecated_alias_of_config(capsys):
    args = command.build_parser().parse_args(["--dataset", "digits"])
    assert args.preset == "digits"
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"{command.PROG}: --dataset is deprecated; use --config (same values)."
    ]
    assert command.build_parser().parse_args(["--config", "tiny"]).preset == "tiny"


def test_p_params_are_frozen_hashable_and_copyable():
    import copy
    import pickle

    config = dataclasses.replace(TINY, p_value=0.25)
    with pytest.raises(TypeError, match="frozen"):
        config.p_params["p_value"] = 0.0  # pyright: ignore[reportIndexIssue]
    assert hash(config) == hash(dataclasses.replace(TINY, p_value=0.25))
    assert pickle.loads(pickle.dumps(config)) == config == copy.deepcopy(config)
    flat = config.asdict()
    assert "p_params" not in flat and flat["p_value"] == 0.25
    assert list(flat)[7:9] == ["p_schedule", "p_value"]  # in p_params's place
