"""Every Python block of the README and of the docs pages runs, in order.

Sybil parses the ```python blocks of ``README.md`` (GitHub Markdown) and of
``docs/*.md`` (MyST). The blocks of one file run in one test, in order and in one
namespace, as a reader would run them (one test per file, so that pytest-xdist
never splits a file's blocks over workers). A block that cannot run as written
is marked in the file with ``<!-- skip: next "why" -->`` (Markdown) or
``% skip: next "why"`` (MyST); docstring examples are collected by pytest's
``--doctest-modules``.
"""

import pathlib
import re
import unittest

import jax.numpy as jnp
import numpy as np
import pytest
from sybil import Sybil
from sybil.parsers import markdown, myst

_ROOT = pathlib.Path(__file__).resolve().parents[1]
_PYTHON_BLOCK = re.compile(r"^```(python|\{code-block\} python|\{code-cell\} python)")
_PAGES = [
    path
    for path in [_ROOT / "README.md", *sorted((_ROOT / "docs").glob("*.md"))]
    if any(_PYTHON_BLOCK.match(line) for line in path.read_text().splitlines())
]


def _parse(path: pathlib.Path):
    flavour = markdown if path.name == "README.md" else myst
    sybil = Sybil(parsers=[flavour.PythonCodeBlockParser(), flavour.SkipParser()])
    return sybil.parse(path)


def test_the_readme_has_python_blocks():
    assert _ROOT / "README.md" in _PAGES


@pytest.mark.parametrize("path", _PAGES, ids=lambda p: p.relative_to(_ROOT).as_posix())
def test_python_blocks_run(path):
    ran, skipped = 0, []
    for example in _parse(path).examples():
        try:
            example.evaluate()
        except unittest.SkipTest as skip:
            skipped.append(f"line {example.line}: {skip}")
        except Exception as error:
            raise AssertionError(
                f"{path.name}, the block at line {example.line} failed: {error!r}"
            ) from error
        else:
            ran += 1
    assert ran >= 1, f"no block of {path.name} ran (skipped: {skipped})"


def test_the_gain_reading_block_prints_and_reads_the_gain(capsys):
    # The usage page's block under "Reading p and the gain": what it prints, and the
    # gain it reads.
    text = (_ROOT / "docs" / "usage.md").read_text()
    section = text.split("## Reading p and the gain", 1)[1].split("\n## ", 1)[0]
    block = section.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(compile(block, "docs/usage.md:gain", "exec"), namespace)
    assert capsys.readouterr().out.strip().endswith("0.5")
    gain = namespace["gain"]
    np.testing.assert_allclose(gain["bias"], np.full(2, 1 / (1 + 1e-8)))  # p = 0
    np.testing.assert_allclose(gain["kernel"], jnp.full((3, 2), 10.0), rtol=1e-5)
