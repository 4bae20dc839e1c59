"""The floor for a round trip: a raw pyzmq ROUTER that answers every frame with a
canned frame of a given size, in its own process (as the daemon is).

``python -m bench.zmq_floor ENDPOINT REPLY_BYTES [--asyncio]`` serves until
terminated. ``--asyncio`` serves from a ``zmq.asyncio`` socket in an event loop
instead of a blocking one: the cost of asyncio alone, with no protocol work.
"""

from __future__ import annotations

import asyncio
import sys

import zmq
import zmq.asyncio


def serve(endpoint: str, reply_bytes: int) -> None:
    ctx = zmq.Context()
    sock = ctx.socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.bind(endpoint)
    reply = b"x" * reply_bytes
    print("ready", flush=True)
    while True:
        ident, _frame = sock.recv_multipart()
        sock.send_multipart((ident, reply))


async def serve_asyncio(endpoint: str, reply_bytes: int) -> None:
    ctx = zmq.asyncio.Context()
    sock = ctx.socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.bind(endpoint)
    reply = b"x" * reply_bytes
    print("ready", flush=True)
    while True:
        ident, _frame = await sock.recv_multipart()
        await sock.send_multipart((ident, reply))


if __name__ == "__main__":
    if "--asyncio" in sys.argv[3:]:
        asyncio.run(serve_asyncio(sys.argv[1], int(sys.argv[2])))
    else:
        serve(sys.argv[1], int(sys.argv[2]))
