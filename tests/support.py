"""Test support shared by every test folder: a real daemon child process.

Importable as ``support`` (pytest puts tests/ on the path).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from duologue.clients.rpc.client import AsyncClient
from duologue.clients.rpc.launcher import wait_for_socket
from duologue.protocol.paths import Paths, locate


class DaemonProcess:
    """A daemon child process bound to one home; can be killed and restarted."""

    def __init__(self, home: Path, *, emulator: bool = True, env: dict[str, str] | None = None):
        self.home = home
        self.emulator = emulator
        self.env = {**os.environ, "DUOLOGUE_HOME": str(home), **(env or {})}
        for key in ("ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY"):
            if env is None or key not in env:
                self.env.pop(key, None)
        self.paths: Paths = locate(self.env)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> DaemonProcess:
        args = [sys.executable, "-m", "duologue.daemon"] + (["--emulator"] if self.emulator else [])
        self.proc = subprocess.Popen(args, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.paths = wait_for_socket(self.paths, self.proc, 60.0)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(sig)
        try:
            # A bound on a hang, not on speed: a daemon stopped while it imports a
            # provider SDK exits once the import ends, many seconds on a loaded machine.
            return self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise

    def restart(self) -> DaemonProcess:
        self.stop()
        return self.start()

    def log(self) -> str:
        path = Path(self.paths.log_file)
        return path.read_text() if path.exists() else ""

    def client(self, name: str = "test", **kwargs: object) -> AsyncClient:
        return AsyncClient(self.paths, autostart=False, client_name=name, timeout=20.0, **kwargs)


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.01):
    """Poll ``predicate`` until it is truthy; fail with a clear message on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")
