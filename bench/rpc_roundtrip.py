"""Figure 1: RPC round trip (``daemon/status``) over our ZeroMQ transport.

Ours, three ways: the sync client (``duologue.clients.rpc.sync_client.Client``, a
blocking DEALER read by the calling thread), the async client in the caller's loop, and a bare pyzmq DEALER sending the same request bytes without any client
library (the daemon's share of the cost alone).

Floor: a raw pyzmq DEALER/ROUTER echo over ipc, the ROUTER in its own process,
answering the same request bytes with a reply of the same size as ours.
Peer: a Jupyter kernel's ``kernel_info`` round trip through jupyter_client
(``BlockingKernelClient.kernel_info(reply=True)``) over ipc, the nearest peer that
shares live sessions over ZeroMQ. Skipped, with a note, when it is not installed.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import zmq

from duologue.clients.rpc.sync_client import Client
from duologue.protocol.jsonrpc import encode_request

from .fixtures import Daemon, temp_home
from .harness import Row, latency_row, progress, time_async_calls, time_calls

FLOOR = "raw pyzmq DEALER/ROUTER echo (ipc)"
PEER = "Jupyter kernel_info via jupyter_client (ipc)"


def _dealer(endpoint: str) -> tuple[zmq.Context, zmq.Socket]:
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    return ctx, sock


def _raw_round_trips(endpoint: str, request: bytes, n: int, warmup: int, label: str) -> list[float]:
    ctx, sock = _dealer(endpoint)
    try:
        def once() -> None:
            sock.send(request)
            sock.recv()

        return time_calls(once, n, warmup=warmup, label=label)
    finally:
        sock.close(0)
        ctx.term()


def _floor(tmp: Path, request: bytes, reply_bytes: int, n: int, warmup: int, *,
           in_asyncio: bool = False) -> list[float]:
    endpoint = f"ipc://{tmp}/floor{'-asyncio' if in_asyncio else ''}.sock"
    proc = subprocess.Popen([sys.executable, "-m", "bench.zmq_floor", endpoint, str(reply_bytes),
                             *(["--asyncio"] if in_asyncio else [])],
                            stdout=subprocess.PIPE, cwd=Path(__file__).resolve().parent.parent)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        label = "floor: raw echo" + (" (asyncio server)" if in_asyncio else "")
        return _raw_round_trips(endpoint, request, n, warmup, label)
    finally:
        proc.terminate()
        proc.wait(10)


def _jupyter(tmp: Path, n: int, warmup: int) -> list[float] | None:
    try:
        from jupyter_client import KernelManager
    except ImportError:
        progress("jupyter_client is not installed (pip install -e '.[bench]'); peer skipped")
        return None
    os.environ["JUPYTER_RUNTIME_DIR"] = str(tmp / "jupyter")
    km = KernelManager(transport="ipc", ip=str(tmp / "kernel"), connection_file=str(tmp / "kernel.json"))
    progress("peer: starting an ipykernel")
    km.start_kernel(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kc = km.client()
    try:
        kc.start_channels()
        kc.wait_for_ready(timeout=60)
        return time_calls(lambda: kc.kernel_info(reply=True, timeout=10), n, warmup=warmup,
                          label="peer: jupyter kernel_info")
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


async def _async_client(d: Daemon, n: int, warmup: int) -> list[float]:
    async with d.client("bench-async") as c:
        return await time_async_calls(c.status, n, warmup=warmup, label="ours: async client")


def run(quick: bool) -> list[Row]:
    n, warmup = (200, 20) if quick else (3000, 200)
    with temp_home() as home:
        with Daemon(home / "home", builtin_emulator=True) as d:
            request = encode_request(1, "daemon/status", {})
            ctx, sock = _dealer(d.paths.endpoint)
            sock.send(request)
            reply_bytes = len(sock.recv())
            sock.close(0)
            ctx.term()
            progress(f"daemon/status: request {len(request)} B, reply {reply_bytes} B; {n} round trips each")

            raw = _raw_round_trips(d.paths.endpoint, request, n, warmup, "ours: bare DEALER")
            with Client(d.paths, autostart=False, client_name="bench-sync") as c:
                sync = time_calls(c.status, n, warmup=warmup, label="ours: sync client")
            async_ = asyncio.run(_async_client(d, n, warmup))
        floor = _floor(home, request, reply_bytes, n, warmup)
        floor_aio = _floor(home, request, reply_bytes, n, warmup, in_asyncio=True)
        peer = _jupyter(home, n, warmup)

    target = "<= 1.5x floor"
    rows = [
        latency_row("daemon/status round trip, sync client", sync, FLOOR, floor, target=target,
                    met=_ratio(sync, floor) <= 1.5),
        latency_row("daemon/status round trip, async client", async_, FLOOR, floor, target=target,
                    met=_ratio(async_, floor) <= 1.5),
        latency_row("daemon/status round trip, bare DEALER (daemon side only)", raw, FLOOR, floor,
                    target=target, met=_ratio(raw, floor) <= 1.5,
                    note="same request bytes sent by a plain pyzmq DEALER, reply not decoded: "
                         "what the daemon adds over the floor"),
    ]
    rows.append(latency_row(
        "daemon/status round trip, bare DEALER vs an asyncio echo", raw, "raw pyzmq echo, zmq.asyncio server",
        floor_aio, note="the same floor served from a zmq.asyncio socket: what asyncio alone costs"))
    if peer:
        rows += [
            latency_row("daemon/status round trip, sync client vs Jupyter", sync, PEER, peer,
                        target="faster than peer", met=_ratio(sync, peer) < 1),
            latency_row("daemon/status round trip, async client vs Jupyter", async_, PEER, peer,
                        target="faster than peer", met=_ratio(async_, peer) < 1),
        ]
    return rows


def _ratio(ours: list[float], other: list[float]) -> float:
    from .harness import p50

    return p50(ours) / p50(other)
