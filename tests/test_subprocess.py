"""Runs the checks that need a fresh process (x64, 8 forced host devices)."""

import os
import pathlib
import subprocess
import sys

import pytest

_ROOT = pathlib.Path(__file__).resolve().parents[1]


def _run(name: str, env_extra: dict[str, str]) -> str:
    env = {**os.environ, **env_extra}
    proc = subprocess.run(
        [sys.executable, "-m", "tests._subprocess_checks", name],
        cwd=_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_float64_dtypes_and_reference():
    assert "x64: ok" in _run("x64", {"JAX_ENABLE_X64": "1"})


@pytest.mark.parametrize("devices", [8])
def test_sharding_over_forced_host_devices(devices):
    flags = f"--xla_force_host_platform_device_count={devices}"
    out = _run("sharding", {"XLA_FLAGS": flags, "JAX_PLATFORMS": "cpu"})
    assert "sharding: ok" in out
