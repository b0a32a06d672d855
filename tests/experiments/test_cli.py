"""The command lines: flags from the typed Config, and one line + exit 2 per mistake."""

import dataclasses
import os
import subprocess
import sys

import pytest

from nsf_optax.experiments.compare import command
from nsf_optax.experiments.resnet import __main__ as run_cli
from nsf_optax.experiments.resnet import configs, input_pipeline
from nsf_optax.experiments.resnet.configs.default import field_specs
from nsf_optax.experiments.runner import cli
from nsf_optax.experiments.runner.errors import ConfigError, ConfigTypeError, UsageError

TINY = ["--config", "tiny"]


@pytest.fixture
def no_data_loading(monkeypatch):
    """Fails the test if a command gets as far as loading its data."""

    def refuse(*args, **kwargs):
        raise AssertionError("the data was loaded before the mistake was reported")

    monkeypatch.setattr(input_pipeline, "load_dataset", refuse)


def _one_line_error(capsys, prog=run_cli.PROG):
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"{prog}: error: "), lines[0]
    return lines[0]


def test_every_field_is_a_flag_with_help_and_choices():
    parser = run_cli.build_parser()
    actions = {a.dest: a for a in parser._actions}
    for spec in field_specs().values():
        action = actions[spec.name]
        assert action.option_strings[0] == f"--{spec.name}"
        assert action.help and len(action.help) > 10, spec.name
        assert action.help.startswith(spec.help.replace("%", "%%")), spec.name
        if spec.choices is not None:
            assert tuple(action.choices or ()) == tuple(spec.choices)
        if spec.bound is not None:
            assert spec.bound.describe() in action.help
    for flag in ("config", "workdir", "max_steps_this_run", "resume_step"):
        assert actions[flag].help


def test_flag_spellings_keep_working():
    argv = [*TINY, "--num_steps", "40", "--workdir", "w", "--resume", "--no-progress"]
    argv += ["--flip", "--num_filters", "none", "--learning_rate", "NONE"]
    argv += ["--data_dir", "none", "--optimizer", "sgd", "--p_value", "-0.5"]
    args = run_cli.build_parser().parse_args(argv)
    config = cli.config_from_flags(configs.get_config(args.config), args, field_specs())
    assert config == dataclasses.replace(
        configs.get_config("tiny"),
        num_steps=40,
        resume=True,
        progress=False,
        flip=True,
        num_filters=None,
        learning_rate=None,
        optimizer="sgd",
        p_value=-0.5,
    )
    assert args.workdir == "w"
    # Flags not given keep the preset's values, booleans included.
    args = run_cli.build_parser().parse_args(TINY)
    assert cli.config_from_flags(configs.get_config("tiny"), args, field_specs()) == (
        configs.get_config("tiny")
    )


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["--num_steps", "abc"],
            "argument --num_steps: expected an integer, got 'abc'",
        ),
        (["--config", "nope"], "argument --config: invalid choice: 'nope'"),
        (["--p_value", "nan"], "argument --p_value: p_value must be finite"),
        (["--seed", "-1"], "argument --seed: seed must be in [0, 4294967296)"),
        (["--optimizer", "lamb"], "argument --optimizer: invalid choice: 'lamb'"),
        (["--momentum", "1"], "argument --momentum: momentum must be in [0, 1)"),
        (["--num_filters", "0"], "argument --num_filters: num_filters must be > 0"),
        (["--max_steps_this_run", "0"], "argument --max_steps_this_run: must be > 0"),
        (["--num_step", "3"], "unrecognized arguments: --num_step 3"),
        (["--p_min", "0.5", "--p_max", "0.2"], "--p_min, --p_max: p_min (0.5) must"),
        (["--dataset", "cifar10"], "--data_dir: dataset 'cifar10' needs data_dir"),
        (["--model", "resnet1d"], "--model, --dataset: model 'resnet1d' needs"),
    ],
)
def test_flag_mistakes_are_one_line(argv, expected, capsys, tmp_path, no_data_loading):
    workdir = tmp_path / "run"
    assert run_cli.main([*TINY, "--workdir", str(workdir), *argv]) == 2
    assert expected in _one_line_error(capsys)
    assert not workdir.exists()


def test_path_mistakes_are_one_line(capsys, tmp_path, no_data_loading):
    a_file = tmp_path / "file"
    a_file.write_text("")
    cases = [
        (["--workdir", str(a_file)], f"--workdir '{a_file}' is a file"),
        (["--workdir", str(a_file / "x")], f"'{a_file}' is a file"),
        (
            ["--dataset", "cifar10", "--data_dir", str(tmp_path / "none")],
            "CIFAR-10 --data_dir",
        ),
    ]
    if os.path.isdir("/sys") and os.geteuid() == 0:  # root may write anywhere else
        cases.append((["--workdir", "/sys/nsf-optax-test"], "/sys/nsf-optax-test"))
    for argv, expected in cases:
        argv = [*TINY, "--workdir", str(tmp_path / "run"), *argv]
        assert run_cli.main(argv) == 2
        assert expected in _one_line_error(capsys)
    assert sorted(os.listdir(tmp_path)) == ["file"]


def test_batch_larger_than_the_data_writes_nothing(capsys, tmp_path):
    workdir = tmp_path / "a" / "run"
    assert run_cli.main([*TINY, "--workdir", str(workdir), "--batch_size", "2000"]) == 2
    assert "--batch_size: batch_size (2000) exceeds the 1437" in _one_line_error(capsys)
    assert not (tmp_path / "a").exists()  # the directories it created are gone


def test_compare_mistakes_are_one_line(capsys, tmp_path, no_data_loading):
    base = ["--config", "tiny", "--workdir", str(tmp_path / "c")]
    for argv, expected in [
        (["--methods", "sgd,lamb"], "argument --methods: Unknown method 'lamb'"),
        (["--methods", "adam"], "argument --methods: methods must include"),
        (["--seeds", "0"], "argument --seeds: must be > 0, got 0"),
        (["--config", "default"], "argument --config: invalid choice"),
        (["--p_value", "inf"], "argument --p_value: p_value must be finite"),
    ]:
        assert command.main([*base, *argv]) == 2
        assert expected in _one_line_error(capsys, command.PROG)
    assert not (tmp_path / "c").exists()


def test_bugs_keep_their_traceback(monkeypatch):
    # Only UsageError means "the user's mistake"; anything else propagates.
    def broken():
        raise ValueError("a bug")

    with pytest.raises(ValueError, match="a bug"):
        cli.run("prog", broken)
    assert not issubclass(ValueError, UsageError)


@pytest.mark.parametrize(
    ("overrides", "error", "match"),
    [
        (dict(optimizer="lamb"), ConfigError, "Unknown optimizer"),
        (dict(num_steps=-5), ConfigError, "num_steps must be > 0"),
        (dict(warmup_steps=-1), ConfigError, "warmup_steps must be >= 0"),
        (dict(seed=-1), ConfigError, "seed must be in"),
        (dict(p_value=float("nan")), ConfigError, "p_value must be finite"),
        (dict(eps=float("inf")), ConfigError, "eps must be >= 0"),
        (dict(num_steps=2.5), ConfigTypeError, "num_steps must be an integer"),
        (dict(num_steps=True), ConfigTypeError, "num_steps must be a number"),
        (dict(flip=1), ConfigTypeError, "flip must be a bool"),
        (dict(p_value="0.1"), ConfigTypeError, "p_value must be a number"),
    ],
)
def test_config_checks_every_value(overrides, error, match):
    with pytest.raises(error, match=match):
        dataclasses.replace(configs.get_config("tiny"), **overrides)


def test_config_takes_numpy_and_jax_scalars_as_python():
    import jax.numpy as jnp
    import numpy as np

    config = dataclasses.replace(
        configs.get_config("tiny"),
        num_steps=np.int64(7),
        seed=jnp.asarray(3),
        p_value=np.float32(0.5),
        flip=np.bool_(True),
    )
    assert (config.num_steps, config.seed, config.p_value, config.flip) == (
        7,
        3,
        0.5,
        True,
    )
    assert type(config.num_steps) is int and type(config.p_value) is float


_HELP_IMPORTS = """
import runpy, sys
import nsf_optax  # the core: whatever it imports is not --help's doing
core = set(sys.modules)
sys.argv = [sys.argv[1], "--help"]
try:
    runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
except SystemExit as e:
    assert e.code == 0, e.code
heavy = {"jax", "flax", "orbax.checkpoint", "optax", "matplotlib", "sklearn",
         "tqdm", "mnist1d", "tensorstore", "scipy"}
# (Looking up "orbax.checkpoint" imports the empty "orbax" namespace: harmless.)
print("LOADED", sorted(heavy & (set(sys.modules) - core)))
"""


@pytest.mark.parametrize(
    "command",
    [
        "nsf_optax.experiments.resnet",
        "nsf_optax.experiments.landscape",
        "nsf_optax.experiments.compare",
    ],
)
def test_help_parses_before_importing_jax_or_flax(command):
    proc = subprocess.run(
        [sys.executable, "-c", _HELP_IMPORTS, command],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "JAX_PLATFORMS": "cpu"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "LOADED []" in proc.stdout, proc.stdout.splitlines()[-1]
    for name in field_specs():
        if command.endswith("resnet"):  # every config field is a flag of the run
            assert f"--{name}" in proc.stdout
