"""The README's Python blocks (quickstart and the core's section) run as written."""

import pathlib
import re

import jax.numpy as jnp
import numpy as np

_README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def _intro_blocks() -> list[str]:
    text = _README.read_text()
    section = text.split("<!-- section:intro", 1)[1].split("<!-- /section:intro", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)


def test_quickstart_block_runs():
    text = _README.read_text()
    block = text.split("## Quickstart", 1)[1].split("```python", 1)[1]
    block = block.split("```", 1)[0]
    namespace: dict = {}
    exec(compile(block, "README.md:quickstart", "exec"), namespace)
    state = namespace["opt_state"][1][0]
    assert state._fields == ("count", "mu", "nu", "p", "b2", "eps", "eps_root")
    assert int(state.count) == 1


def test_every_python_block_of_the_intro_runs(capsys):
    blocks = _intro_blocks()
    assert len(blocks) >= 2
    for i, block in enumerate(blocks):
        namespace: dict = {}
        exec(compile(block, f"README.md:intro[{i}]", "exec"), namespace)
    # The gain-reading block: what it prints, and the gain it reads.
    assert capsys.readouterr().out.strip().endswith("0.5")
    gain = namespace["gain"]
    np.testing.assert_allclose(gain["bias"], np.full(2, 1 / (1 + 1e-8)))  # p = 0
    np.testing.assert_allclose(gain["kernel"], jnp.full((3, 2), 10.0), rtol=1e-5)


def test_commands_are_marked_for_ci():
    text = _README.read_text()
    for marker in ("<!-- main-command -->", "<!-- test-command -->"):
        after = text.split(marker, 1)[1].lstrip()
        assert after.startswith("```bash\n"), marker
