"""``daemon/status`` ``clients`` counts the peers connected now: it goes up as clients
connect and back down as their sockets close (the socket monitor's events), instead
of only ever growing (or ageing out after a minute)."""

from __future__ import annotations

import time

import zmq
from reliability_support import Raw

from support import DaemonProcess


def _clients(probe: Raw) -> int:
    return probe.call("daemon/status", {})["result"]["clients"]


def _until(probe: Raw, want: int, timeout: float = 10.0) -> int:
    deadline = time.monotonic() + timeout
    seen = _clients(probe)
    while seen != want and time.monotonic() < deadline:
        time.sleep(0.05)
        seen = _clients(probe)
    return seen


def test_clients_counts_connected_peers_up_and_down(daemon: DaemonProcess):
    ctx = zmq.Context()
    probe = Raw(ctx, daemon.paths.endpoint)
    others: list[Raw] = []
    try:
        assert _until(probe, 1) == 1
        others += [Raw(ctx, daemon.paths.endpoint) for _ in range(4)]
        for r in others:
            r.call("daemon/status", {})
        assert _until(probe, 5) == 5
        for r in others[:3]:
            r.close()
        assert _until(probe, 2) == 2, "closed sockets are still counted"
        others.append(Raw(ctx, daemon.paths.endpoint))  # connected, never sent anything: counted
        assert _until(probe, 3) == 3
        others[3].close()
        others[4].close()
        assert _until(probe, 1) == 1
    finally:
        for r in [probe, *others]:
            r.close()
        ctx.term()
