"""Sphinx configuration for the nsf-optax documentation.

Build (from the repository root, after ``pip install -e ".[docs]"``)::

    sphinx-build -j auto -W --keep-going -b html docs docs/_build/html

The notebooks in ``notebooks/`` are copied into ``docs/notebooks/`` and executed
by myst-nb in their quick CPU mode on every build; an error in any cell fails
the build. This is the one place where the notebooks run.
"""

from __future__ import annotations

import functools
import inspect
import os
import pathlib
import shutil
import sys

from sphinx.application import Sphinx

import nsf_optax
from nsf_optax._moved import MOVED

_DOCS = pathlib.Path(__file__).resolve().parent
_ROOT = _DOCS.parent
sys.path.insert(0, str(_DOCS / "_ext"))

REPOSITORY = "https://github.com/nsf-optax/nsf-optax"

# -- Project information -----------------------------------------------------

project = "nsf-optax"
author = "The nsf-optax developers"
copyright = "2025, The nsf-optax developers"
release = nsf_optax.__version__
version = release

# -- General configuration ---------------------------------------------------

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.linkcode",
    "sphinx.ext.mathjax",
    "sphinx.ext.napoleon",
    "matplotlib.sphinxext.plot_directive",
    "myst_nb",
    "api_coverage",
    "repo_links",
]
# Cross-links to jax/optax/numpy need their inventories from the network, which
# CI does not have: only Read the Docs fetches them.
if os.environ.get("READTHEDOCS"):
    extensions.append("sphinx.ext.intersphinx")
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3", None),
        "numpy": ("https://numpy.org/doc/stable/", None),
        "jax": ("https://docs.jax.dev/en/latest/", None),
        "optax": ("https://optax.readthedocs.io/en/latest/", None),
        "flax": ("https://flax.readthedocs.io/en/latest/", None),
    }

templates_path = ["_templates"]
exclude_patterns = ["_build", "**.ipynb_checkpoints", "Thumbs.db", ".DS_Store"]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
root_doc = "index"

# -- autodoc / autosummary (optax's conventions) -----------------------------

autosummary_generate = True
autosummary_ignore_module_all = False  # module pages list exactly ``__all__``
# The commands that moved (forwarding modules for one release) get no API page.
autosummary_context = {"moved": sorted(MOVED)}
autodoc_default_options = {
    "member-order": "bysource",
    "exclude-members": "__repr__, __str__, __weakref__, __new__, __getnewargs__",
}
autodoc_typehints = "signature"
# Keep optax's and our aliases by name in signatures (not their expansions).
autodoc_type_aliases = {
    name: name
    for name in (
        "PLike",
        "Normalize",
        "optax.ScalarOrSchedule",
        "optax.Schedule",
        "optax.Params",
        "optax.Updates",
        "optax.OptState",
        "ArrayLike",
        "numpy.typing.ArrayLike",
        "jax.Array",
    )
}
maximum_signature_line_length = 88


def _alias_spellings() -> dict[str, str]:
    """Each alias's expansion, as autodoc spells it in a signature -> its name.

    autodoc_type_aliases only applies to annotations written as strings; ours
    are objects (so that ``inspect.signature`` reads types, as optax's do), and
    autodoc prints their expansions. The signatures are mended in
    ``_short_aliases`` below.
    """
    import jax
    import numpy.typing
    import optax
    from sphinx.util.typing import stringify_annotation

    from nsf_optax import p_schedule
    from nsf_optax._transform import Normalize, PLike

    aliases = [
        ("PLike", PLike),
        ("Normalize", Normalize),
        ("optax.ScalarOrSchedule", optax.ScalarOrSchedule),
        ("optax.Schedule", optax.Schedule),
        # p_schedule reads without jax: its run-time stand-in for optax's type.
        ("optax.Schedule", p_schedule.Schedule),
        ("optax.Params", optax.Params),
        ("jax.typing.ArrayLike", jax.typing.ArrayLike),
        ("jax.typing.DTypeLike", jax.typing.DTypeLike),
        ("numpy.typing.ArrayLike", numpy.typing.ArrayLike),
        ("jax.Array", jax.Array),
    ]
    out = {}
    for name, alias in aliases:
        for mode in ("fully-qualified-except-typing", "smart", "fully-qualified"):
            spelled = stringify_annotation(alias, mode)
            if len(spelled) > len(name):
                out[spelled] = name
    # Longest first, so that a union is replaced before its members.
    return dict(sorted(out.items(), key=lambda item: -len(item[0])))


def _short_aliases(
    spellings, app, what, name, obj, options, signature, return_annotation
):
    if not signature:
        return None
    for spelled, short in spellings.items():
        signature = signature.replace(spelled, short)
        if return_annotation:
            return_annotation = return_annotation.replace(spelled, short)
    return signature, return_annotation


napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False


def _drop_type_docstrings(app, what, name, obj, options, lines) -> None:
    """A constant without a ``#:`` comment shows no text, not its type's docstring.

    autodoc falls back to ``obj.__doc__``, which for a dict or a tuple is the
    builtin type's help text.
    """
    del app, name, options
    if what in ("data", "attribute") and not inspect.isroutine(obj):
        type_doc = inspect.cleandoc(type(obj).__doc__ or "")
        if type_doc and "\n".join(lines).strip() == type_doc.strip():
            lines.clear()


# -- MyST and notebooks ------------------------------------------------------

myst_enable_extensions = ["amsmath", "dollarmath", "colon_fence"]
# Links are checked by the build: a Markdown link to a heading is resolved through
# the anchors of headings down to level 3, and a link or cross-reference to a page,
# heading, file or Python object that does not exist is a warning (an error under
# -W). Links to other sites cannot be checked offline: ``-b linkcheck`` does that
# where a network is available.
myst_heading_anchors = 3
nitpicky = True
# Names of other packages resolve only through intersphinx, which needs the network
# (Read the Docs only); our own names must always resolve. ``PLike`` and
# ``Normalize`` are type aliases that the signatures keep by name.
nitpick_ignore_regex = [
    (r"py:.*", r"(optax|jax|numpy|flax|chex|collections|typing)(\..*)?"),
    (r"py:class", r"(PLike|Normalize)"),
]
nb_execution_mode = "force"
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_execution_timeout = 600  # per cell, seconds
nb_merge_streams = True


def _copy_notebooks() -> None:
    """Mirrors ``notebooks/*.ipynb`` into ``docs/notebooks/`` (ignored by git).

    Every notebook there is rendered and executed (the toctree globs them), so
    adding a notebook to ``notebooks/`` is all it takes to publish it. Unchanged
    files are left alone so that incremental builds stay incremental.
    """
    src, dst = _ROOT / "notebooks", _DOCS / "notebooks"
    dst.mkdir(exist_ok=True)
    wanted = {p.name for p in src.glob("*.ipynb")}
    for stale in dst.glob("*.ipynb"):
        if stale.name not in wanted:
            stale.unlink()
    for name in sorted(wanted):
        source, target = src / name, dst / name
        if not target.exists() or target.read_bytes() != source.read_bytes():
            shutil.copyfile(source, target)


_copy_notebooks()


def _copy_result_figures() -> None:
    """Mirrors ``results/**/*.png`` into ``docs/results/`` (ignored by git).

    The pages show the measured figures by their repository paths
    (``results/...``), which resolve from ``docs/`` once mirrored.
    """
    for source in (_ROOT / "results").glob("**/*.png"):
        target = _DOCS / source.relative_to(_ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists() or target.read_bytes() != source.read_bytes():
            shutil.copyfile(source, target)


_copy_result_figures()

# -- The build-time figures (matplotlib's plot directive) ---------------------

plot_include_source = True
plot_html_show_source_link = False
plot_html_show_formats = False
plot_formats = [("png", 110)]

# -- Links to repository files (benchmarks, results, tests) --------------------

repo_links_root = str(_ROOT)
repo_links_url = f"{REPOSITORY}/blob/main"

# -- HTML output -------------------------------------------------------------

html_theme = "sphinx_book_theme"
html_title = f"nsf-optax {release}"
html_theme_options = {
    "repository_url": REPOSITORY,
    "use_repository_button": True,
    "use_issues_button": True,
    "show_toc_level": 2,
    "navigation_with_keys": False,
}
html_static_path: list[str] = []

# -- Source links ------------------------------------------------------------


def linkcode_resolve(domain: str, info: dict[str, str]) -> str | None:
    """Links each documented object to its source lines on GitHub."""
    if domain != "py" or not info.get("module"):
        return None
    obj = sys.modules.get(info["module"])
    for part in info["fullname"].split("."):
        obj = getattr(obj, part, None)
    try:
        obj = inspect.unwrap(obj)
        filename = inspect.getsourcefile(obj)
        lines, start = inspect.getsourcelines(obj)
    except (TypeError, OSError):
        return None
    if filename is None:
        return None
    path = pathlib.Path(filename).resolve()
    try:
        relative = path.relative_to(pathlib.Path(nsf_optax.__file__).parent.parent)
    except ValueError:
        return None
    end = start + len(lines) - 1
    return f"{REPOSITORY}/blob/main/{relative.as_posix()}#L{start}-L{end}"


def setup(app: Sphinx) -> None:
    app.connect("autodoc-process-docstring", _drop_type_docstrings)
    app.connect(
        "autodoc-process-signature",
        functools.partial(_short_aliases, _alias_spellings()),
    )
