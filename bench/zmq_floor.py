"""The floor for a round trip: a raw pyzmq ROUTER that answers every frame with the
same canned frame, in its own process (as the daemon is).

``python -m bench.zmq_floor ENDPOINT REPLY_FILE [--asyncio | --fanout]`` serves until
terminated; the reply is the file's bytes (the daemon's own answer, captured by the
benchmark, so a client can decode it as it decodes the daemon's). ``--asyncio``
serves from a ``zmq.asyncio`` socket in an event loop instead of a blocking one: the
cost of asyncio alone, with no protocol work.

``--fanout`` is the floor of the fan-out figure: every peer that sends a frame is
answered with the reply and becomes a watcher, except that a frame starting with
``FAN `` is sent on, the rest of its bytes as one ZeroMQ message shared by all,
NOBLOCK, to every watcher: what handing one frame to N clients costs, with no
daemon around it.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

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


if __name__ == "__main__":
    canned = Path(sys.argv[2]).read_bytes()
    if "--fanout" in sys.argv[3:]:
        serve_fanout(sys.argv[1], canned)
    elif "--asyncio" in sys.argv[3:]:
        asyncio.run(serve_asyncio(sys.argv[1], canned))
    else:
        serve(sys.argv[1], canned)
