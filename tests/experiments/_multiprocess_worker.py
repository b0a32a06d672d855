"""One process of a multi-process test job: a command line, files it writes logged.

Run as ``python -m tests.experiments._multiprocess_worker LOG MODULE ARG...``: runs
``MODULE``'s ``main(ARG...)`` (e.g. ``nsf_optax.experiments.resnet.__main__``,
the training command line, with ``--distributed``) and, when it returns, writes to
``LOG`` the paths
this process opened for writing through Python's ``open`` (metrics, config,
plots, digests, orbax's JSON files), one per line. See test_multiprocess.py.
"""

import builtins
import importlib
import io
import os
import sys


def main(log: str, module: str, argv: list[str]) -> int:
    written: list[str] = []
    real_open = builtins.open

    def recording_open(file, mode="r", *args, **kwargs):
        if isinstance(file, str | os.PathLike) and set(mode) & set("wax+"):
            written.append(os.path.abspath(os.fspath(file)))
        return real_open(file, mode, *args, **kwargs)

    builtins.open = io.open = recording_open
    try:
        status = importlib.import_module(module).main(argv)
    finally:
        builtins.open = io.open = real_open
    with open(log, "w") as f:
        f.write("".join(f"{path}\n" for path in written))
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3:]))
