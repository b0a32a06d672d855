"""Data parallel on 4 forced host devices matches the single-device run."""

import os
import pathlib
import subprocess
import sys

import numpy as np

_ROOT = pathlib.Path(__file__).resolve().parents[2]


def _start(devices: int, out: pathlib.Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
        "JAX_PLATFORMS": "cpu",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "tests.experiments._sharded_run", str(out)],
        cwd=_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_sharded_matches_single_device(tmp_path):
    outs = {n: tmp_path / f"run{n}.npz" for n in (1, 4)}
    procs = {n: _start(n, out) for n, out in outs.items()}
    for proc in procs.values():
        log, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, log
    single, sharded = (np.load(outs[n]) for n in (1, 4))
    assert int(single["devices"]) == 1 and int(sharded["devices"]) == 4
    assert bool(sharded["replicated"])
    arrays = sorted(k for k in single.files if k.startswith("arr_"))
    assert arrays and arrays == sorted(k for k in sharded.files if k.startswith("arr_"))
    for key in arrays:
        np.testing.assert_allclose(sharded[key], single[key], rtol=2e-4, atol=2e-5)
    np.testing.assert_allclose(sharded["test_loss"], single["test_loss"], rtol=1e-4)
