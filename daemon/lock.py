"""One daemon per home, enforced by an exclusive flock on ``state/daemon.lock``.

The kernel releases the lock when the holder dies, so a crash leaves no stale lock:
the next daemon takes it and clears the stale socket. The file holds the holder's
pid for messages such as "already running (pid 1234)"; the pid is never evidence
that a daemon runs (after kill -9 and pid reuse it names someone else): only the
lock is. Clients test it with a brief shared flock, so taking it retries for a
moment before concluding another daemon holds it.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

CONTENDED_S = 0.5
"""How long acquire retries a lock held briefly by a client's probe."""


class AlreadyRunning(Exception):
    def __init__(self, pid: int | None):
        super().__init__(f"a duologue daemon is already running (pid {pid})" if pid
                         else "a duologue daemon is already running")
        self.pid = pid


def read_pid(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None


def lock_held(path: Path) -> bool:
    """Whether a process holds the lock (a daemon runs), tested without blocking it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops a shared lock we took
    return False


class DaemonLock:
    def __init__(self, path: Path):
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        deadline = time.monotonic() + CONTENDED_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() < deadline:
                    time.sleep(0.01)
                    continue
                os.close(fd)
                raise AlreadyRunning(read_pid(self.path)) from None
        os.fchmod(fd, 0o600)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        os.fsync(fd)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
