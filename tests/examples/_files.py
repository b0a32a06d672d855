"""What a directory holds, to check that a failing command changed nothing."""

import hashlib
import os


def snapshot(directory) -> dict[str, str]:
    """Every sub-directory (as ``"dir"``) and file (its SHA-256) under ``directory``."""
    out = {}
    for root, dirs, files in os.walk(directory):
        for name in dirs:
            out[os.path.join(root, name)] = "dir"
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                out[path] = hashlib.sha256(f.read()).hexdigest()
    return out
