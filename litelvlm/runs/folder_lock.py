"""The lock of a results folder: one run (or one recovery) at a time on an ``--out``.

A run holds an exclusive ``fcntl.flock`` on ``OUT/.lock`` (which names the process holding it) while it
computes; a second one is refused at once, naming the holder. The lock file goes when its holder ends, removed
while still held, so a process waiting for it never locks a removed file; a killed run's lock file stays and
is simply reused (the kernel released its lock). This module is this project's own.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
from pathlib import Path

from ..errors import LiteLVLMError

#: the lock file of a folder a run is writing
LOCK_NAME = ".lock"


def _holder(fd: int) -> str:
    """What the lock file says of the run holding it ("" when it says nothing)."""
    with contextlib.suppress(OSError):
        text = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
        return f" ({text})" if text else ""
    return ""


class FolderLock:
    """The exclusive lock on ``folder/.lock`` (the folder must exist), as a context manager or through
    :meth:`acquire` / :meth:`release`."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.fd: int | None = None
        #: what the lock file says of the run holding it, when :meth:`try_acquire` found one
        self.holder = ""

    def acquire(self) -> FolderLock:
        """Take the lock, refused at once (a LiteLVLMError naming the holder) when another process holds it;
        a lock taken on a file removed meanwhile is taken again on the new one."""
        if not self.try_acquire():
            raise LiteLVLMError(f"--out {str(self.folder)!r} is in use by another run{self.holder} (locked); "
                                "wait for it to finish or use another --out")
        return self

    def try_acquire(self) -> bool:
        """Take the lock if no other run holds it (False, and :attr:`holder` says who, when one does)."""
        path = self.folder / LOCK_NAME
        while True:
            try:
                fd = os.open(path, os.O_CREAT | os.O_RDWR | os.O_NOFOLLOW, 0o666)
            except OSError as e:
                what = "a link" if path.is_symlink() else "a folder" if path.is_dir() else e.strerror
                raise LiteLVLMError(f"{path} cannot be this folder's lock file ({what}): remove it, or use "
                                    "another --out") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                self.holder = _holder(fd)
                os.close(fd)
                return False
            try:
                if os.fstat(fd).st_ino == os.stat(path).st_ino:
                    break
            except FileNotFoundError:
                pass
            os.close(fd)
        self.fd = fd
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()}: {' '.join(sys.argv[:1] + sys.argv[1:6])}".encode(), 0)
        return True

    def release(self) -> None:
        """Remove the lock file (while still holding it) and let it go."""
        if self.fd is not None:
            with contextlib.suppress(OSError):
                if os.fstat(self.fd).st_ino == os.stat(self.folder / LOCK_NAME).st_ino:
                    os.unlink(self.folder / LOCK_NAME)
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


__all__ = ["LOCK_NAME", "FolderLock"]
