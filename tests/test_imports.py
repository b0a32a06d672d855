"""The core imports without the examples' or notebooks' dependencies."""

import subprocess
import sys

_CHECK = """
import sys
import nsf_optax
assert "jax" not in sys.modules, "import nsf_optax must not import jax"
from nsf_optax import p_schedule
heavy = {"flax", "matplotlib", "sklearn", "orbax", "tqdm", "mnist1d"}
loaded = sorted(heavy & {name.split(".")[0] for name in sys.modules})
assert not loaded, loaded
assert set(nsf_optax.__all__) == set(nsf_optax._LAZY) | {"__version__"}
assert set(nsf_optax.__all__) <= set(dir(nsf_optax))
for name in nsf_optax.__all__:
    getattr(nsf_optax, name)
print("ok")
"""


def test_core_import_is_light():
    proc = subprocess.run(
        [sys.executable, "-c", _CHECK], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_no_module_shadows_an_exported_name():
    # `import pkg.name` rebinds `pkg.name` to the module: a public function or
    # class of that name would be replaced silently.
    import importlib
    import pkgutil
    import types

    import nsf_optax

    packages = [nsf_optax]
    while packages:
        package = packages.pop()
        exported = set(getattr(package, "__all__", ()))
        for info in pkgutil.iter_modules(package.__path__):
            shadowed = info.name in exported and not isinstance(
                getattr(package, info.name), types.ModuleType
            )
            assert not shadowed, (
                f"{package.__name__}.{info.name} is both a module and an export"
            )
            if info.ispkg and info.name != "examples":
                packages.append(
                    importlib.import_module(f"{package.__name__}.{info.name}")
                )
