"""Finding the daemon, and starting it when it is absent.

A client never imports the daemon: it starts ``python -m duologue.daemon`` as a
detached process and waits for its socket to answer. Two clients racing to start
one are safe: the daemon's lock lets only one run, the other exits at once.

A daemon runs when its lock is held (a shared flock that fails) and its socket
exists in a private runtime dir; the pid in the lock file is never trusted, since
after kill -9 it may name an unrelated process. A socket in a directory that is not
private (another user's, a symlink) is never connected to. What a daemon it starts
writes on stderr before it serves (a bad config file, a read-only home) is kept in
an unlinked temporary file and shown when it exits early.
"""

from __future__ import annotations

import fcntl
import os
import sys
import threading
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING

from duologue.protocol.paths import Paths, private_dir_problem, with_runtime_pointer

if TYPE_CHECKING:
    import subprocess

START_TIMEOUT_S = 15.0


class DaemonUnavailable(Exception):
    """No daemon answers and none could be started; the message says what to check."""


def read_pid(paths: Paths) -> int | None:
    try:
        text = Path(paths.lock_path).read_text().strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


EmulatorMode = bool | str
"""False (real providers), True (always the emulator) or "if-no-key"."""


def daemon_args(emulator: EmulatorMode) -> list[str]:
    if emulator == "if-no-key":
        return ["--emulator-if-no-key"]
    return ["--emulator"] if emulator else []


def spawn_daemon(paths: Paths, *, emulator: EmulatorMode = "if-no-key") -> subprocess.Popen[bytes]:
    """Start a detached daemon process (it outlives this client). Its early stderr
    goes to an unlinked temporary file, ``proc.early_stderr``, read by
    :func:`wait_for_socket` when it exits before serving."""
    import subprocess  # here, not at the top: a client that finds a daemon never spawns one
    import tempfile

    args = [sys.executable, "-m", "duologue.daemon", *daemon_args(emulator)]
    err = tempfile.TemporaryFile()
    proc = subprocess.Popen(
        args,
        stdin=subprocess.DEVNULL,
        stdout=err,
        stderr=err,
        start_new_session=True,
        close_fds=True,
    )
    proc.early_stderr = err  # type: ignore[attr-defined]
    return proc


def lock_held(paths: Paths) -> bool:
    """Whether a process holds the daemon lock, tested with a shared flock that
    never blocks (the daemon retries a moment when it meets one)."""
    try:
        fd = os.open(paths.lock_path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return False
    except PermissionError:
        raise DaemonUnavailable(not_yours(paths)) from None
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def not_yours(paths: Paths) -> str:
    home = Path(paths.state_dir).parent
    try:
        owner = f"uid {home.stat().st_uid}"
    except OSError:
        owner = "another user"
    return (f"the duologue files in {home} belong to {owner}, and you are uid {os.geteuid()}: each user "
            "runs their own daemon. Unset DUOLOGUE_HOME, or point it at a directory of yours")


def daemon_running(paths: Paths) -> bool:
    """A daemon holds the lock and its runtime dir is a private dir of ours. It may be
    starting still (it binds after its store opens): a client connects all the same,
    since ZeroMQ connects once the socket appears; :func:`serving` says when it has."""
    if not lock_held(paths):
        return False
    paths = with_runtime_pointer(paths)
    return private_dir_problem(paths.runtime_dir) is None


def serving(paths: Paths) -> bool:
    """A running daemon has bound its socket. The socket's existence alone does not
    tell: one a killed daemon left stays until its successor, holding the lock, removes
    it. The successor writes its pid into the lock file when it takes the lock, so only
    a socket bound after that is newer than the lock file."""
    if not daemon_running(paths):
        return False
    paths = with_runtime_pointer(paths)
    try:
        return os.stat(paths.socket_path).st_mtime_ns >= os.stat(paths.lock_path).st_mtime_ns
    except OSError:
        return False


def _early_stderr(proc: subprocess.Popen[bytes]) -> str:
    err: IO[bytes] | None = getattr(proc, "early_stderr", None)
    if err is None:
        return ""
    try:
        err.seek(0)
        text = err.read(64 * 1024).decode("utf-8", "replace")
    except (OSError, ValueError):
        return ""
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return "\n".join(lines[-20:])


def wait_for_socket(paths: Paths, proc: subprocess.Popen[bytes] | None, timeout: float) -> Paths:
    """Wait until the daemon serves (it binds after its store opens); return the paths
    it serves at (its runtime dir may be a fresh one when the usual was unsafe)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if serving(paths):
            return with_runtime_pointer(paths)
        if proc is not None and proc.poll() not in (None, 3):
            said = _early_stderr(proc)
            if said:
                raise DaemonUnavailable(f"the daemon could not start (exit code {proc.returncode}):\n{said}")
            raise DaemonUnavailable(f"the daemon exited with code {proc.returncode}"
                                    + (f"; see {paths.log_file}" if Path(paths.log_file).exists() else ""))
        time.sleep(0.02)
    raise DaemonUnavailable(f"the daemon did not start within {timeout:.0f}s"
                            + (f"; see {paths.log_file}" if Path(paths.log_file).exists() else ""))


def spawn_if_absent(paths: Paths, *, autostart: bool,
                    emulator: EmulatorMode) -> subprocess.Popen[bytes] | None:
    """The daemon process started for a client that found none (None when one runs).
    Without ``autostart`` a missing daemon is an error that says how to start one."""
    if daemon_running(paths):
        return None
    state = Path(paths.state_dir)
    try:
        if state.exists() and state.stat().st_uid != os.geteuid():
            raise DaemonUnavailable(not_yours(paths))
    except PermissionError:
        raise DaemonUnavailable(not_yours(paths)) from None
    if not autostart:
        raise DaemonUnavailable("no duologue daemon is running; start one with `duologue daemon start`")
    return spawn_daemon(paths, emulator=emulator)


def start_daemon(proc: subprocess.Popen[bytes], paths: Paths) -> Paths:
    """Wait until the daemon a client spawned serves, then reap it in the background
    when it exits, so a long-lived client (the chat, an editor) never keeps a zombie.
    Returns the paths it serves at."""
    try:
        settled = wait_for_socket(paths, proc, START_TIMEOUT_S)
    finally:
        err = getattr(proc, "early_stderr", None)
        if err is not None:
            err.close()
    threading.Thread(target=proc.wait, name="duologue-daemon-reaper", daemon=True).start()
    return settled
