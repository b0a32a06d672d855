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


def corrupt_largest_file(directory) -> None:
    """Flips 256 bytes in the middle of the largest file under ``directory``."""
    files = [os.path.join(r, f) for r, _, fs in os.walk(directory) for f in fs]
    path = max(files, key=os.path.getsize)
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.seek(size // 2)
        chunk = f.read(256)
        f.seek(size // 2)
        f.write(bytes(b ^ 0x5A for b in chunk))
