"""Figure 1: RPC round trip (``daemon/status``) over our ZeroMQ transport.

Ours, three ways: the blocking client (``duologue.clients.rpc.sync_client.Client``,
what scripts and the CLI use, with its defaults), the async client in the caller's
loop, and a bare pyzmq DEALER sending the same request bytes without any client
library (the daemon's share of the cost alone).

Floor: a plain pyzmq client of a raw DEALER/ROUTER echo over ipc, the ROUTER in its
own process answering with the daemon's own ``daemon/status`` reply (captured first).
The floor's client does with it what ours do: it encodes each request and decodes
each reply into ``StatusResult`` with the protocol's functions, so the ratio is what
our client and daemon add, not what JSON costs. The bare DEALER's floor is the same
echo with nothing decoded on either side. A second echo serves from a ``zmq.asyncio``
socket: the part of the daemon's share that is asyncio itself.

Each of ours is timed interleaved with its floor, one call of each in turn in the
same loop (``bench.harness.time_interleaved``), with the garbage collector on.

Peer: a Jupyter kernel's ``kernel_info`` round trip through jupyter_client
(``BlockingKernelClient.kernel_info(reply=True)``) over ipc, the nearest peer that
shares live sessions over ZeroMQ, interleaved the same way. Skipped, with a note,
when it is not installed.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import zmq

from duologue.clients.rpc.client import AsyncClient
from duologue.clients.rpc.sync_client import Client
from duologue.protocol import methods as m
from duologue.protocol.jsonrpc import decode_result, encode_request, parse_replies

from .fixtures import Daemon, temp_home
from .harness import Row, latency_row, p50, progress, time_async_pairs, time_interleaved

FLOOR = "plain pyzmq client of a DEALER/ROUTER echo (ipc), decoding alike"
RAW_FLOOR = "raw pyzmq DEALER/ROUTER echo (ipc), nothing decoded"
ASYNCIO_FLOOR = "raw pyzmq echo, zmq.asyncio server, nothing decoded"
PEER = "Jupyter kernel_info via jupyter_client (ipc)"
TARGET = "<= 1.5x floor"


class _PlainClient:
    """What a plain pyzmq client of ``daemon/status`` does: a blocking DEALER that
    sends and then sleeps in ``recv``; the request encoded and the reply decoded
    with the protocol's functions, as our clients do. No timeout, no monitor, no
    event queue: the least any client could pay."""

    def __init__(self, ctx: zmq.Context[Any], endpoint: str):
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)
        self._ids = itertools.count(1)

    def status(self) -> m.StatusResult:
        self.sock.send(encode_request(next(self._ids), "daemon/status", {}))
        (reply,) = parse_replies(self.sock.recv())
        return decode_result("daemon/status", reply.result)

    def exchange(self, frame: bytes) -> bytes:
        """Send ``frame`` and return the answer, undecoded."""
        self.sock.send(frame)
        return self.sock.recv()


@contextlib.contextmanager
def echo(tmp: Path, reply_file: Path, *, mode: str = "", args: tuple[str, ...] = ()) -> Iterator[str]:
    """A floor echo process (``bench.zmq_floor``; ``mode`` "asyncio", "fanout" or
    "replay", followed by ``args``) serving ``reply_file``'s bytes; yields its endpoint."""
    endpoint = f"ipc://{tmp}/floor{'-' + mode if mode else ''}.sock"
    proc = subprocess.Popen([sys.executable, "-m", "bench.zmq_floor", endpoint, str(reply_file),
                             *([f"--{mode}"] if mode else []), *args],
                            stdout=subprocess.PIPE, cwd=Path(__file__).resolve().parent.parent)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(10)


@contextlib.contextmanager
def _jupyter(tmp: Path) -> Iterator[Callable[[], Any] | None]:
    """A running ipykernel's blocking ``kernel_info`` round trip, or None when
    jupyter_client is not installed."""
    try:
        from jupyter_client import KernelManager
    except ImportError:
        progress("jupyter_client is not installed (pip install -e '.[bench]'); peer skipped")
        yield None
        return
    os.environ["JUPYTER_RUNTIME_DIR"] = str(tmp / "jupyter")
    km = KernelManager(transport="ipc", ip=str(tmp / "kernel"), connection_file=str(tmp / "kernel.json"))
    progress("peer: starting an ipykernel")
    km.start_kernel(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kc = km.client()
    try:
        kc.start_channels()
        kc.wait_for_ready(timeout=60)
        yield lambda: kc.kernel_info(reply=True, timeout=10)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


async def _async_pairs(d: Daemon, floor: Callable[[], Any], peer: Callable[[], Any] | None,
                       n: int, warmup: int) -> dict[str, tuple[list[float], list[float]]]:
    out = {}
    async with AsyncClient(d.paths, autostart=False, client_name="bench-async") as c:
        out["floor"] = await time_async_pairs(c.status, floor, n, warmup=warmup, label="async client | floor")
        if peer is not None:
            out["peer"] = await time_async_pairs(c.status, peer, n, warmup=warmup, label="async client | peer")
    return out


def run(quick: bool) -> list[Row]:
    n, warmup = (1000, 50) if quick else (3000, 200)
    request = encode_request(1, "daemon/status", {})
    ctx: zmq.Context[Any] = zmq.Context()
    try:
        with temp_home() as home, Daemon(home / "home", builtin_emulator=True) as d:
            bare = _PlainClient(ctx, d.paths.endpoint)
            reply_file = home / "status-reply.json"
            reply_file.write_bytes(bare.exchange(request))
            progress(f"daemon/status: request {len(request)} B, reply {reply_file.stat().st_size} B; "
                     f"{n} interleaved pairs each")
            with echo(home, reply_file) as floor_at, echo(home, reply_file, mode="asyncio") as asyncio_at, \
                    _jupyter(home) as kernel_info:
                floor, floor_aio = _PlainClient(ctx, floor_at), _PlainClient(ctx, asyncio_at)
                with Client(d.paths, autostart=False, client_name="bench-blocking") as c:
                    blocking = time_interleaved(c.status, floor.status, n=n, warmup=warmup,
                                                label="blocking client | floor")
                    blocking_peer = (time_interleaved(c.status, kernel_info, n=n, warmup=warmup,
                                                      label="blocking client | peer") if kernel_info else None)
                async_ = asyncio.run(_async_pairs(d, floor.status, kernel_info, n, warmup))
                raw = time_interleaved(lambda: bare.exchange(request), lambda: floor.exchange(request), n=n,
                                       warmup=warmup, label="bare DEALER | raw floor")
                raw_aio = time_interleaved(lambda: bare.exchange(request), lambda: floor_aio.exchange(request),
                                           n=n, warmup=warmup, label="bare DEALER | asyncio floor")
    finally:
        ctx.destroy(linger=0)

    rows = [
        _row("daemon/status round trip, blocking client", blocking, FLOOR, TARGET,
             "the default Client; the floor's client encodes the request and decodes the reply as it does"),
        _row("daemon/status round trip, async client", async_["floor"], FLOOR, TARGET,
             "the floor's blocking call runs between the async client's awaits, in its loop"),
        _row("daemon/status round trip, bare DEALER (daemon side only)", raw, RAW_FLOOR, TARGET,
             "same request bytes sent by a plain pyzmq DEALER, reply not decoded: what the daemon adds"),
        _row("daemon/status round trip, bare DEALER vs an asyncio echo", raw_aio, ASYNCIO_FLOOR, TARGET,
             "the echo served from a zmq.asyncio socket: the daemon's share beyond asyncio itself"),
    ]
    if blocking_peer is not None:
        rows += [
            _row("daemon/status round trip, blocking client vs Jupyter", blocking_peer, PEER, "faster than peer"),
            _row("daemon/status round trip, async client vs Jupyter", async_["peer"], PEER, "faster than peer"),
        ]
    return rows


def _row(figure: str, pairs: tuple[list[float], ...], floor_name: str, target: str,
         note: str = "") -> Row:
    ours, floor = pairs
    ratio = p50(ours) / p50(floor)
    met = ratio < 1 if target == "faster than peer" else ratio <= 1.5
    return latency_row(figure, ours, floor_name, floor, target=target, met=met, note=note)
