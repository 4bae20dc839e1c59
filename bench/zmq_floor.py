"""The floor for a round trip: a raw pyzmq ROUTER that answers every frame with the
same canned frame, in its own process (as the daemon is).

``python -m bench.zmq_floor ENDPOINT REPLY_FILE [--asyncio]`` serves until
terminated; the reply is the file's bytes (the daemon's own answer, captured by the
benchmark, so a client can decode it as it decodes the daemon's). ``--asyncio``
serves from a ``zmq.asyncio`` socket in an event loop instead of a blocking one: the
cost of asyncio alone, with no protocol work.
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


if __name__ == "__main__":
    canned = Path(sys.argv[2]).read_bytes()
    if "--asyncio" in sys.argv[3:]:
        asyncio.run(serve_asyncio(sys.argv[1], canned))
    else:
        serve(sys.argv[1], canned)
