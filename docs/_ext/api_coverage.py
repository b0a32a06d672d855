"""Every public name must be in the API reference (a warning, an error under -W).

The public API is each documented module's ``__all__``: the top-level package,
:mod:`nsf_optax.p_schedule`, :mod:`nsf_optax.spectral` and every public module
below it (found on disk, so a new experiment module is checked as soon as it
exists). After all pages are read, every ``module.name`` must be a Python object
(or module) that some page documents. ``tests/test_docs_api.py`` runs the same
list against the reference's sources without a build.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING, Any

from nsf_optax._moved import MOVED

if TYPE_CHECKING:  # Sphinx is imported only by the build: the tests run without it.
    from sphinx.application import Sphinx
    from sphinx.environment import BuildEnvironment

#: Modules whose ``__all__`` is the public API; packages listed in
#: ``_RECURSIVE`` add every public module below them.
DOCUMENTED_MODULES = ("nsf_optax", "nsf_optax.p_schedule", "nsf_optax.spectral")
_RECURSIVE = ("nsf_optax.spectral",)


def documented_modules() -> list[str]:
    """The modules whose ``__all__`` must appear in the documentation."""
    names = list(DOCUMENTED_MODULES)
    for package_name in _RECURSIVE:
        package = importlib.import_module(package_name)
        for info in pkgutil.walk_packages(package.__path__, package_name + "."):
            private = any(part.startswith("_") for part in info.name.split("."))
            if not private and info.name not in MOVED:  # forwarding commands
                names.append(info.name)
    return names


def public_names() -> dict[str, list[str]]:
    """``{module: [names in its __all__]}`` for every documented module."""
    out = {}
    for module_name in documented_modules():
        module = importlib.import_module(module_name)
        if not hasattr(module, "__all__"):
            raise AttributeError(f"{module_name} has no __all__.")
        out[module_name] = list(module.__all__)
    return out


def _check(app: Sphinx, env: BuildEnvironment) -> None:
    from sphinx.util import logging

    del app
    py = env.domaindata["py"]
    documented = set(py["objects"]) | set(py["modules"])
    for module_name, names in public_names().items():
        missing = [name for name in names if f"{module_name}.{name}" not in documented]
        if module_name not in documented:
            missing.insert(0, "(the module itself)")
        if missing:
            logging.getLogger(__name__).warning(
                "%s: not in the API reference: %s (add them to a page under docs/api/)",
                module_name,
                ", ".join(missing),
                type="api_coverage",
            )


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("env-check-consistency", _check)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
