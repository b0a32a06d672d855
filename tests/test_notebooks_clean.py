"""Notebooks are committed clean: badge, install cell first, no outputs."""

import json
import pathlib

import pytest

_NOTEBOOKS = sorted(
    (pathlib.Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb")
)


def test_there_are_notebooks():
    assert len(_NOTEBOOKS) >= 3


@pytest.mark.parametrize("path", _NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_clean(path):
    nb = json.loads(path.read_text())
    cells = nb["cells"]
    assert cells[0]["cell_type"] == "markdown"
    assert (
        f"colab.research.google.com/github/nsf-optax/nsf-optax/blob/main/notebooks/{path.name}"
        in "".join(cells[0]["source"])
    )
    code = [c for c in cells if c["cell_type"] == "code"]
    assert "%pip install" in "".join(code[0]["source"])
    for cell in code:
        assert cell.get("outputs") == [], f"{path.name} has committed outputs"
        assert cell.get("execution_count") is None
