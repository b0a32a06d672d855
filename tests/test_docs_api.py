"""The docs sources cover the public API, find what they include, own their text.

The authoritative check runs in the docs build (``docs/_ext/api_coverage.py``
warns, an error under ``-W``, about every ``__all__`` name no page documents).
These tests read the sources only, in a fraction of a second, so that a name
added to an ``__all__`` without its API entry fails the ordinary test run too.
"""

import importlib.util
import pathlib
import re

import pytest

from nsf_optax._moved import MOVED

_ROOT = pathlib.Path(__file__).resolve().parents[1]
_DOCS = _ROOT / "docs"


def _load_api_coverage():
    spec = importlib.util.spec_from_file_location(
        "api_coverage", _DOCS / "_ext" / "api_coverage.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _documented_in_api_pages() -> tuple[set[str], set[str]]:
    """(full names listed on the API pages, packages rendered recursively)."""
    names, recursive = set(), set()
    for page in sorted((_DOCS / "api").glob("*.rst")):
        module = None
        lines = page.read_text().splitlines()
        for i, line in enumerate(lines):
            if m := re.match(r"\.\. (?:current)?module:: (\S+)", line):
                module = m.group(1)
                names.add(module)
            elif m := re.match(r"\.\. automodule:: (\S+)", line):
                names.add(m.group(1))
            elif m := re.match(r"\.\. py:data:: (\S+)", line):
                names.add(f"{module}.{m.group(1)}")
            elif line.startswith(".. autosummary::"):
                block = []
                for entry in lines[i + 1 :]:
                    if entry and not entry.startswith(" "):
                        break
                    block.append(entry.strip())
                options = {e for e in block if e.startswith(":")}
                entries = [e for e in block if e and not e.startswith(":")]
                for entry in entries:
                    full = entry if module is None else f"{module}.{entry}"
                    full = entry if entry.startswith("nsf_optax") else full
                    names.add(full)
                    if ":recursive:" in options and any(
                        o.startswith(":template: autosummary/package.rst")
                        for o in options
                    ):
                        recursive.add(full)
    return names, recursive


def test_every_public_name_is_on_an_api_page():
    public = _load_api_coverage().public_names()
    listed, recursive = _documented_in_api_pages()
    missing = []
    for module, names in public.items():
        if any(module == p or module.startswith(p + ".") for p in recursive):
            continue  # its page lists its __all__ (docs/_templates/.../package.rst)
        missing += [f"{module}.{n}" for n in names if f"{module}.{n}" not in listed]
    assert not missing, f"add to a page under docs/api/: {missing}"


def test_the_spectral_package_is_rendered_from_its_all():
    _, recursive = _documented_in_api_pages()
    assert "nsf_optax.spectral" in recursive
    template = (_DOCS / "_templates" / "autosummary" / "package.rst").read_text()
    assert "members" in template and "all_modules" in template


def test_every_public_spectral_module_is_checked_and_has_all():
    api_coverage = _load_api_coverage()
    modules = api_coverage.documented_modules()
    on_disk = sorted(
        f"nsf_optax.spectral.{p.stem}"
        for p in (_ROOT / "nsf_optax" / "spectral").glob("*.py")
        if not p.stem.startswith("_")
        and f"nsf_optax.spectral.{p.stem}" not in MOVED  # forwarding commands
    )
    assert set(on_disk) <= set(modules)
    assert all(api_coverage.public_names()[m] for m in on_disk)


_INCLUDE = re.compile(
    r"```\{include\} \.\./(\S+)\n(?::start-after: (.+)\n)?(?::end-before: (.+)\n)?"
)


@pytest.mark.parametrize("page", sorted(_DOCS.glob("*.md")), ids=lambda p: p.name)
def test_included_files_and_markers_exist(page):
    for path, start, end in _INCLUDE.findall(page.read_text()):
        text = (_ROOT / path).read_text()
        for marker in filter(None, (start, end)):
            assert text.count(marker) == 1, f"{page.name}: {marker!r} in {path}"
        if start and end:
            assert text.index(start) < text.index(end)


def test_notebooks_are_all_rendered():
    assert "notebooks/*" in (_DOCS / "notebooks.md").read_text()
    assert list((_ROOT / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("page", sorted(_DOCS.rglob("*.md")), ids=lambda p: p.name)
def test_no_page_includes_the_readme(page):
    # The README is for users and the docs own their pages: neither includes the
    # other (the changelog page may include CHANGELOG.md).
    if "_build" in page.parts or "notebooks" in page.parts:
        return
    included = [path for path, _, _ in _INCLUDE.findall(page.read_text())]
    assert "README.md" not in included


def test_every_page_is_in_a_toctree():
    # Sphinx warns about an orphan page too; this says which, without a build.
    listed = set()
    for page in _DOCS.glob("*.md"):
        for block in re.findall(r"```\{toctree\}\n(.*?)```", page.read_text(), re.S):
            listed |= {line.strip() for line in block.splitlines()}
    pages = {p.stem for p in _DOCS.glob("*.md")} - {"index"}
    assert pages <= listed, pages - listed
