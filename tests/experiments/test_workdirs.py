"""One run per workdir: path checks and the exclusive lock."""

import doctest
import json
import os

import pytest

import nsf_optax._extras
from nsf_optax.experiments.runner import workdirs
from nsf_optax.experiments.runner.errors import WorkdirError, WorkdirLockedError


def test_check_names_the_problem(tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("")
    workdirs.check(tmp_path)  # an existing directory
    workdirs.check(tmp_path / "new" / "deeper")  # creatable
    with pytest.raises(WorkdirError, match="is a file, not a directory"):
        workdirs.check(a_file)
    with pytest.raises(WorkdirError, match=f"cannot be created: '{a_file}' is a file"):
        workdirs.check(a_file / "sub" / "run", flag="--out")
    assert sorted(os.listdir(tmp_path)) == ["file"]  # checking wrote nothing


def test_second_holder_is_refused_with_the_holders_name(tmp_path):
    with workdirs.Lock(tmp_path / "run") as lock:
        with open(lock.path) as f:
            holder = json.load(f)
        assert holder["pid"] == os.getpid()
        # flock locks belong to open files: a second open is refused even here.
        with pytest.raises(WorkdirLockedError, match=f"in use by pid {os.getpid()} on"):
            with workdirs.Lock(tmp_path / "run"):
                pass
    # Released: the lock file and the (empty) directory it created are gone.
    assert not (tmp_path / "run").exists()
    with workdirs.Lock(tmp_path / "run"):
        pass


def test_stale_lock_file_does_not_block(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    stale = {"pid": 999_999_999, "host": "gone", "started": "then", "command": "x"}
    (run / workdirs.LOCK_NAME).write_text(json.dumps(stale))
    with workdirs.Lock(run) as lock:
        with open(lock.path) as f:
            assert json.load(f)["pid"] == os.getpid()


def test_lock_removes_only_the_empty_directories_it_created(tmp_path):
    with pytest.raises(RuntimeError), workdirs.Lock(tmp_path / "a" / "b"):
        raise RuntimeError("refused after taking the lock")
    assert os.listdir(tmp_path) == []
    with workdirs.Lock(tmp_path / "a" / "b"):
        (tmp_path / "a" / "b" / "output").write_text("results")
    assert os.listdir(tmp_path / "a" / "b") == ["output"]


def test_disabled_lock_does_nothing(tmp_path):
    with workdirs.Lock(tmp_path / "run", enabled=False):
        assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("module", [workdirs, nsf_optax._extras])
def test_doctests(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_missing_extra_names_the_pip_command():
    with pytest.raises(ImportError, match=r'pip install "nsf-optax\[examples\]"'):
        nsf_optax._extras.require(
            "examples", ("json", "no_such_module_xyz"), feature="this test"
        )
    with pytest.raises(ImportError, match=r"needs no_such_pkg_xyz\.sub,"):
        nsf_optax._extras.require("examples", ("no_such_pkg_xyz.sub",), feature="x")
