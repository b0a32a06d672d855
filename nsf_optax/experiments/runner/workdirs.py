"""One run per workdir: path checks before anything is written, and an exclusive lock.

:func:`check` tells, leaving nothing behind, whether a workdir can be used: it is
a writable directory, or it can be created. :class:`Lock`
holds ``<workdir>/.lock`` with ``fcntl.flock`` for the life of a run: a second run
into the same workdir fails at once with :class:`WorkdirLockedError` naming the
holder (pid, host, start time, command). The kernel drops the lock when its process
dies, however it dies, so the lock file a killed run leaves behind never blocks a
resume. On release the lock file is removed, and so are the directories the lock
created if they are still empty: a run refused after taking the lock leaves the
file system as it found it.

POSIX only (Linux, macOS). On several hosts only the primary one locks
(``Lock(workdir, enabled=jax.process_index() == 0)``); a shared file system that
supports ``flock`` (local disks, NFSv4) makes the lock hold across hosts too.
"""

from __future__ import annotations

import datetime
import fcntl
import json
import os
import socket
import sys
from types import TracebackType

from nsf_optax.experiments.runner.errors import WorkdirError, WorkdirLockedError

LOCK_NAME = ".lock"


def check(
    workdir: str | os.PathLike, *, flag: str = "--workdir", probe: bool = False
) -> None:
    """Checks that ``workdir`` is, or can be created as, a writable directory.

    Leaves the file system as it was.

    Args:
      workdir: the directory.
      flag: how the message names it.
      probe: when it is missing, also create its first missing directory and
        remove it again: sysfs, procfs and read-only mounts refuse it whatever
        the permission bits say. Only where no other process may be creating
        the workdir: a command before it joins a multi-process job (until all
        have joined, none creates it); :class:`Lock` finds the same later.

    Raises:
      WorkdirError: when it is a file, lies under a file, or it (or the existing
        directory it would be created in) is not writable.
    """
    shown = os.fspath(workdir)
    path = os.path.abspath(shown)
    if os.path.exists(path):
        if not os.path.isdir(path):
            raise WorkdirError(f"{flag} {shown!r} is a file, not a directory.")
        if not os.access(path, os.W_OK | os.X_OK):
            raise WorkdirError(f"{flag} {shown!r} is not writable.")
        return
    top, parent = path, os.path.dirname(path)
    while not os.path.exists(parent) and parent != os.path.dirname(parent):
        top, parent = parent, os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise WorkdirError(f"{flag} {shown!r} cannot be created: {parent!r} is a file.")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise WorkdirError(
            f"{flag} {shown!r} cannot be created: {parent!r} is not writable."
        )
    if not probe:
        return
    try:
        os.mkdir(top)
    except FileExistsError:
        return  # created meanwhile (by another run): the lock decides
    except OSError as e:
        raise WorkdirError(
            f"{flag} {shown!r} cannot be created: {e.strerror or e}."
        ) from None
    try:
        os.rmdir(top)
    except OSError:
        pass  # filled meanwhile by another run: it is that run's now


def _locked(fd: int, workdir: str, flag: str) -> WorkdirLockedError:
    holder = _describe_holder(os.pread(fd, 4096, 0).decode(errors="replace"))
    return WorkdirLockedError(
        f"{flag} {workdir!r} is in use by {holder}; wait for that run to end or "
        f"choose another {flag}."
    )


def check_unlocked(workdir: str | os.PathLike, *, flag: str = "--workdir") -> None:
    """Refuses a workdir whose lock a live process holds. Writes nothing.

    Args:
      workdir: the directory.
      flag: how the message names it.

    Raises:
      WorkdirLockedError: naming the holder.
    """
    workdir = os.fspath(workdir)
    try:
        fd = os.open(os.path.join(workdir, LOCK_NAME), os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return  # no lock file: nobody holds it
    try:
        # A shared lock for an instant, dropped when the file is closed.
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        raise _locked(fd, workdir, flag) from None
    finally:
        os.close(fd)


def _describe_holder(text: str) -> str:
    try:
        holder = json.loads(text)
        return (
            f"pid {holder['pid']} on {holder['host']} since {holder['started']} "
            f"({holder['command']})"
        )
    except (json.JSONDecodeError, KeyError, TypeError):
        return "another process (it has not written its name yet)"


class Lock:
    """An exclusive lock on a workdir, held while the ``with`` block runs.

    Creates the workdir (and missing parents) when needed.

    Args:
      workdir: the run directory.
      enabled: False makes the lock a no-op (the non-primary hosts of a
        multi-host run).
      flag: how messages name the workdir.

    Raises:
      WorkdirLockedError: on entry, when a live process holds the lock.
      WorkdirError: on entry, when the workdir or its lock file cannot be created.

    Examples:
      >>> import tempfile
      >>> from nsf_optax.experiments.runner import workdirs
      >>> with tempfile.TemporaryDirectory() as d, workdirs.Lock(d):
      ...     with workdirs.Lock(d):  # a second holder is refused
      ...         pass
      Traceback (most recent call last):
      ...
      nsf_optax.experiments.runner.errors.WorkdirLockedError: ...
    """

    def __init__(
        self,
        workdir: str | os.PathLike,
        *,
        enabled: bool = True,
        flag: str = "--workdir",
    ):
        self.workdir = os.fspath(workdir)
        self.path = os.path.join(self.workdir, LOCK_NAME)
        self.enabled = enabled
        self._flag = flag
        self._fd: int | None = None
        self._created: list[str] = []

    def __enter__(self) -> Lock:
        if not self.enabled:
            return self
        check(self.workdir, flag=self._flag)
        try:
            self._make_workdir()
            self._acquire()
        except OSError as e:
            self._remove_created()
            raise WorkdirError(
                f"{self._flag} {self.workdir!r} cannot be used: {e.strerror or e}."
            ) from e
        except WorkdirLockedError:
            self._remove_created()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._fd is None:
            return
        try:
            os.unlink(self.path)  # while still holding the lock: see _acquire
        except FileNotFoundError:
            pass
        os.close(self._fd)
        self._fd = None
        self._remove_created()

    def _make_workdir(self) -> None:
        missing = []
        path = os.path.abspath(self.workdir)
        while not os.path.exists(path):
            missing.append(path)
            path = os.path.dirname(path)
        for path in reversed(missing):
            os.mkdir(path)
            self._created.append(path)

    def _remove_created(self) -> None:
        for path in reversed(self._created):
            try:
                os.rmdir(path)  # only while empty: a run's outputs are never removed
            except OSError:
                break
        self._created.clear()

    def _acquire(self) -> None:
        flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC
        while True:
            fd = os.open(self.path, flags, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                error = _locked(fd, self.workdir, self._flag)
                os.close(fd)
                raise error from None
            # A releasing holder unlinks the file before closing it: if this one
            # was unlinked meanwhile, we hold a lock nobody else can see. Retry.
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": datetime.datetime.now().isoformat(timespec="seconds"),
            "command": " ".join([os.path.basename(sys.argv[0]), *sys.argv[1:]]),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        self._fd = fd


def write_text(path: str | os.PathLike, text: str) -> None:
    """Writes ``text`` to ``path`` through a temporary file and a rename, so that a
    killed run never leaves a half-written file."""
    path = os.fspath(path)
    tmp = f"{path}.tmp"
    with open(tmp, "w", newline="") as f:
        f.write(text)
    os.replace(tmp, path)
