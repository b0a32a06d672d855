"""Every file the package reads is read as data: no reader that can run code.

The package reads CIFAR-10 batches (an unpickler that admits only numpy's array
rebuilders), checkpoints (orbax: tensorstore arrays, JSON metadata; ``digest.json``
with ``json``), the workdir lock (``json``) and its own text outputs. This scan
keeps it that way: a new ``pickle.load``, ``np.load(..., allow_pickle=True)``,
``eval`` and the like fails here until it is reviewed.
"""

import pathlib
import re

import pytest

import nsf_optax

_PACKAGE = pathlib.Path(nsf_optax.__file__).parent

# Readers that can execute what they read, or run a string as code.
_CODE_RUNNING_READS = re.compile(
    r"\bpickle\.(load|loads|Unpickler)\b"
    r"|\ballow_pickle\s*=\s*True"
    r"|\b(np|numpy)\.load\s*\("
    r"|\b(yaml\.(load|unsafe_load)|marshal\.loads?|shelve\.open|torch\.load"
    r"|joblib\.load|dill\.loads?|cloudpickle\.loads?)\b"
    r"|(?<![\w.])(eval|exec)\s*\("
)

# The one reviewed reader: the CIFAR-10 unpickler, whose find_class admits only
# numpy's array and dtype rebuilders.
_REVIEWED = {
    ("experiments/resnet/_cifar10.py", "class _CifarUnpickler(pickle.Unpickler):")
}


def _reads():
    for path in sorted(_PACKAGE.rglob("*.py")):
        relative = path.relative_to(_PACKAGE).as_posix()
        for line in path.read_text().splitlines():
            if _CODE_RUNNING_READS.search(line):
                yield relative, line.strip()


def test_no_reader_in_the_package_can_run_code():
    # Equal, not a subset: the reviewed reader is also the one still in use.
    assert set(_reads()) == _REVIEWED


@pytest.mark.parametrize(
    "line",
    [
        "batch = pickle.load(f)",
        "x = np.load(path, allow_pickle=True)",
        "cfg = yaml.load(text)",
        "value = eval(text)",
        "state = torch.load(path)",
    ],
)
def test_the_scan_sees_code_running_reads(line):
    assert _CODE_RUNNING_READS.search(line)


@pytest.mark.parametrize(
    "line", ["model.eval()", "self._eval(state)", "json.load(f)", "np.loadtxt(p)"]
)
def test_the_scan_lets_data_reads_through(line):
    assert not _CODE_RUNNING_READS.search(line)
