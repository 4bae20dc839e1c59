"""The floor for a round trip: a raw pyzmq ROUTER that answers every frame with the
same canned frame, in its own process (as the daemon is).

``python -m bench.zmq_floor ENDPOINT REPLY_FILE [--asyncio | --fanout | --replay STORE
SID PAGE]`` serves until terminated; the reply is the file's bytes (the daemon's own
answer, captured by the benchmark, so a client can decode it as it decodes the
daemon's). ``--asyncio`` serves from a ``zmq.asyncio`` socket in an event loop
instead of a blocking one: the cost of asyncio alone, with no protocol work.

``--fanout`` is the floor of the fan-out figure: every peer that sends a frame is
answered with the reply and becomes a watcher, except that a frame starting with
``FAN `` is sent on, the rest of its bytes as one ZeroMQ message shared by all,
NOBLOCK, to every watcher: what handing one frame to N clients costs, with no
daemon around it.

``--replay STORE SID PAGE`` is the floor of the attach figure: REPLY_FILE holds the
frames a replay of session SID came as (each behind its length, 4 bytes big-endian).
A frame naming ``session/attach`` is answered with a result, then with those frames,
each sent once the next page of SID's records (PAGE of them, as many as the daemon
reads at a time) has been read from the events database of the LMDB store in STORE
with a cursor, in a read transaction of its own: what any daemon replaying that
session from that store pays, reading the same records and sending the same bytes,
with nothing rebuilt. Any other frame is answered with a result.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
from collections.abc import Iterator
from pathlib import Path

import lmdb
import zmq
import zmq.asyncio


def serve(endpoint: str, reply: bytes) -> None:
    ctx = zmq.Context()
    sock = ctx.socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.bind(endpoint)
    print("ready", flush=True)
    while True:
        ident, _frame = sock.recv_multipart()
        sock.send_multipart((ident, reply))


async def serve_asyncio(endpoint: str, reply: bytes) -> None:
    ctx = zmq.asyncio.Context()
    sock = ctx.socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.bind(endpoint)
    print("ready", flush=True)
    while True:
        ident, _frame = await sock.recv_multipart()
        await sock.send_multipart((ident, reply))


def serve_fanout(endpoint: str, reply: bytes) -> None:
    ctx = zmq.Context()
    sock = ctx.socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.bind(endpoint)
    watchers: list[bytes] = []
    print("ready", flush=True)
    while True:
        ident, frame = sock.recv_multipart()
        if not frame.startswith(b"FAN "):
            watchers.append(ident)
            sock.send_multipart((ident, reply))
            continue
        shared = zmq.Frame(frame[4:])
        for watcher in watchers:
            try:
                sock.send_multipart((watcher, shared), flags=zmq.NOBLOCK)
            except zmq.Again:
                pass


def _pages(store: str, sid: str, size: int) -> Iterator[int]:
    """Read ``sid``'s stored events ``size`` at a time (keys and values, copied out),
    one read transaction a page; yield how many each page held, until none are left."""
    env = lmdb.open(store, readonly=True, max_dbs=32)
    events = env.open_db(b"events", create=False)
    start, end = sid.encode() + b"\0", sid.encode() + b"\1"
    try:
        while True:
            with env.begin(db=events) as txn:
                cur = txn.cursor()
                page = [] if not cur.set_range(start) else [
                    (key, value) for key, value in itertools.islice(cur.iternext(), size) if key < end]
            if not page:
                return
            start = page[-1][0] + b"\0"  # the least key after the last one read
            yield len(page)
    finally:
        env.close()


def serve_replay(endpoint: str, frames: list[bytes], store: str, sid: str, page_size: int) -> None:
    ctx = zmq.Context()
    sock = ctx.socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDHWM, 0)
    sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
    sock.bind(endpoint)
    print("ready", flush=True)
    while True:
        ident, frame = sock.recv_multipart()
        sock.send_multipart((ident, b'{"jsonrpc":"2.0","id":1,"result":{}}'))
        if b'"session/attach"' not in frame:
            continue
        pages = _pages(store, sid, page_size)
        for out in frames:
            next(pages, None)
            sock.send_multipart((ident, out))
        for _ in pages:
            pass


def _read_frames(path: Path) -> list[bytes]:
    data, frames, at = path.read_bytes(), [], 0
    while at < len(data):
        size = int.from_bytes(data[at:at + 4], "big")
        frames.append(data[at + 4:at + 4 + size])
        at += 4 + size
    return frames


if __name__ == "__main__":
    if "--replay" in sys.argv[3:]:
        i = sys.argv.index("--replay")
        serve_replay(sys.argv[1], _read_frames(Path(sys.argv[2])), sys.argv[i + 1], sys.argv[i + 2],
                     int(sys.argv[i + 3]))
        sys.exit()
    canned = Path(sys.argv[2]).read_bytes()
    if "--fanout" in sys.argv[3:]:
        serve_fanout(sys.argv[1], canned)
    elif "--asyncio" in sys.argv[3:]:
        asyncio.run(serve_asyncio(sys.argv[1], canned))
    else:
        serve(sys.argv[1], canned)
