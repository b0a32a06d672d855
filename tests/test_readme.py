"""The README: its quickstart runs, its commands are marked for CI, it stays short.

The README is for users; the docs (``docs/``, published at
https://nsf-optax.readthedocs.io) own everything else. Its links into the docs are
absolute, so each must name a page that the docs sources have.
"""

import pathlib
import re

_ROOT = pathlib.Path(__file__).resolve().parents[1]
_README = _ROOT / "README.md"
_DOCS_URL = "https://nsf-optax.readthedocs.io/en/latest/"
_MAX_BYTES = 12 * 1024


def test_quickstart_block_runs():
    text = _README.read_text()
    block = text.split("## Quickstart", 1)[1].split("```python", 1)[1]
    block = block.split("```", 1)[0]
    namespace: dict = {}
    exec(compile(block, "README.md:quickstart", "exec"), namespace)
    state = namespace["opt_state"][1][0]
    assert state._fields == ("count", "mu", "nu", "p", "b2", "eps", "eps_root")
    assert int(state.count) == 1


def test_commands_are_marked_for_ci():
    text = _README.read_text()
    for marker in ("<!-- main-command -->", "<!-- test-command -->"):
        after = text.split(marker, 1)[1].lstrip()
        assert after.startswith("```bash\n"), marker


def test_the_readme_is_short():
    size = len(_README.read_bytes())
    assert size <= _MAX_BYTES, f"README.md is {size} bytes; the docs own the rest"


def test_links_into_the_docs_name_existing_pages():
    pages = re.findall(re.escape(_DOCS_URL) + r"([\w/.-]*)", _README.read_text())
    assert pages, "the README says where the docs are"
    for page in pages:
        if not page:
            continue  # the landing page
        assert page.endswith(".html"), page
        stem = _ROOT / "docs" / page.removesuffix(".html")
        sources = [stem.with_suffix(s) for s in (".md", ".rst")]
        assert any(s.is_file() for s in sources), f"no docs source for {page}"


def test_relative_links_name_repository_files():
    for target in re.findall(r"\]\(([^)#]+)", _README.read_text()):
        if "://" not in target:
            assert (_ROOT / target).exists(), target
