"""Test support for replication: a real nats-server with JetStream (the starter the
benchmarks share, bench/nats_server.py), and daemons whose config points at it.

Importable as ``sync_support`` (pytest puts tests/ and the checkout on the path).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import msgspec
from support import DaemonProcess

from bench.nats_server import NatsServer as NatsServer  # re-exported: the tests import it from here
from bench.nats_server import free_port as free_port

from duologue.protocol.entities import Session


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
