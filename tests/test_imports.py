"""The core imports without the examples' or notebooks' dependencies."""

import subprocess
import sys

_CHECK = """
import sys
import nsf_optax
from nsf_optax import p_schedule
heavy = {"flax", "matplotlib", "sklearn", "orbax", "tqdm", "mnist1d"}
loaded = sorted(heavy & {name.split(".")[0] for name in sys.modules})
assert not loaded, loaded
assert set(nsf_optax.__all__) <= set(dir(nsf_optax))
print("ok")
"""


def test_core_import_is_light():
    proc = subprocess.run(
        [sys.executable, "-c", _CHECK], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"
