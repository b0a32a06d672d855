"""The README's quickstart block runs as written."""

import pathlib

_README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_quickstart_block_runs():
    text = _README.read_text()
    block = text.split("## Quickstart", 1)[1].split("```python", 1)[1]
    block = block.split("```", 1)[0]
    namespace: dict = {}
    exec(compile(block, "README.md:quickstart", "exec"), namespace)
    assert set(namespace["opt_state"][1][0]._fields) == {"count", "mu", "nu"}
    assert int(namespace["opt_state"][1][0].count) == 1


def test_commands_are_marked_for_ci():
    text = _README.read_text()
    for marker in ("<!-- main-command -->", "<!-- test-command -->"):
        after = text.split(marker, 1)[1].lstrip()
        assert after.startswith("```bash\n"), marker
