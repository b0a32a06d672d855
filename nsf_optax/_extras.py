"""Optional dependencies: one clear ImportError when an extra is not installed."""

import importlib.util


def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # the parent package of a dotted name is missing
        return False


def require(extra: str, modules: tuple[str, ...], *, feature: str) -> None:
    """Raises an ImportError naming the pip command when a module is missing.

    Only looks the modules up (:func:`importlib.util.find_spec`); nothing is
    imported, so the check costs microseconds.

    Args:
      extra: the ``nsf-optax`` extra that installs the modules, e.g. "examples".
      modules: importable top-level names, e.g. ``("flax", "matplotlib")``.
      feature: what needs them, for the message, e.g. "nsf_optax.experiments.resnet".

    Raises:
      ImportError: naming the missing modules and
        ``pip install "nsf-optax[<extra>]"``.

    Examples:
      >>> from nsf_optax._extras import require
      >>> require("examples", ("json",), feature="this example")
    """
    missing = [name for name in modules if not _installed(name)]
    if missing:
        raise ImportError(
            f"{feature} needs {', '.join(missing)}, which is not installed: "
            f'pip install "nsf-optax[{extra}]"',
            name=missing[0],
        )
