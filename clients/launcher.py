"""Finding the daemon, and starting it when it is absent.

A client never imports the daemon: it starts ``python -m duologue.daemon`` as a
detached process and waits for its socket to answer. Two clients racing to start
one are safe: the daemon's lock lets only one run, the other exits at once.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from duologue.protocol.paths import Paths

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
    """Start a detached daemon process (it outlives this client)."""
    args = [sys.executable, "-m", "duologue.daemon", *daemon_args(emulator)]
    return subprocess.Popen(
        args,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
    )


def daemon_running(paths: Paths) -> bool:
    return Path(paths.socket_path).exists() and pid_alive(read_pid(paths))


def wait_for_socket(paths: Paths, proc: subprocess.Popen[bytes] | None, timeout: float) -> None:
    """Wait until the socket file appears (the daemon binds after its store opens)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if daemon_running(paths):
            return
        if proc is not None and proc.poll() not in (None, 3):
            raise DaemonUnavailable(
                f"the daemon exited with code {proc.returncode}; see {paths.log_file}")
        time.sleep(0.02)
    raise DaemonUnavailable(f"the daemon did not start within {timeout:.0f}s; see {paths.log_file}")


def spawn_if_absent(paths: Paths, *, autostart: bool,
                    emulator: EmulatorMode) -> subprocess.Popen[bytes] | None:
    """The daemon process started for a client that found none (None when one runs).
    Without ``autostart`` a missing daemon is an error that says how to start one."""
    if daemon_running(paths):
        return None
    if not autostart:
        raise DaemonUnavailable("no duologue daemon is running; start one with `duologue daemon start`")
    return spawn_daemon(paths, emulator=emulator)


def start_daemon(proc: subprocess.Popen[bytes], paths: Paths) -> None:
    """Wait until the daemon a client spawned serves, then reap it in the background
    when it exits, so a long-lived client (the chat, an editor) never keeps a zombie."""
    wait_for_socket(paths, proc, START_TIMEOUT_S)
    threading.Thread(target=proc.wait, name="duologue-daemon-reaper", daemon=True).start()
