"""What a finished run left, to compare an interrupted run with an uninterrupted one."""

import os
import pathlib
import subprocess
import sys

import numpy as np

from nsf_optax.experiments.resnet import train
from nsf_optax.experiments.runner import checkpointing


def final_checkpoint(workdir, step=None):
    """A verified checkpoint of a run (the newest by default): (step, items,
    history without times)."""
    loaded = checkpointing.Checkpoints(train.checkpoint_dir(workdir)).find_resume(step)
    history = [
        {k: v for k, v in row.items() if k != "elapsed_s"}
        for row in loaded.meta.get("history", [])  # a population: per run, aside
    ]
    return loaded.step, loaded.items, history


def assert_same_run(a, b):
    (step_a, items_a, history_a), (step_b, items_b, history_b) = a, b
    assert step_a == step_b and history_a == history_b
    assert items_a.keys() == items_b.keys()
    for name in items_a:
        assert items_a[name].keys() == items_b[name].keys(), name
        for key in items_a[name]:
            np.testing.assert_array_equal(items_a[name][key], items_b[name][key])


def one_stderr_line(capsys) -> str:
    """The single line a command wrote to stderr."""
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


_ROOT = pathlib.Path(__file__).resolve().parents[2]


def start_on_host_devices(module: str, devices: int, out) -> subprocess.Popen:
    """``python -m module out`` in its own process with ``devices`` forced CPU
    devices (XLA reads the flag when jax is imported), output captured."""
    env = {
        **os.environ,
        "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
        "JAX_PLATFORMS": "cpu",
    }
    return subprocess.Popen(
        [sys.executable, "-m", module, str(out)],
        cwd=_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
