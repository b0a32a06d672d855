"""The commands that moved still run, for one release, after a one-line notice."""

import subprocess
import sys

import pytest

from nsf_optax._moved import MOVED


def _help(module: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", module, "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("old", sorted(MOVED))
def test_old_command_forwards_with_one_line_notice(old):
    moved, new = _help(old), _help(MOVED[old])
    assert moved.returncode == new.returncode == 0, moved.stderr
    assert moved.stdout == new.stdout
    notice = moved.stderr.splitlines()
    assert len(notice) == 1 and f"python -m {MOVED[old]}" in notice[0], notice
