"""``duologue acp`` on stdin and stdout: newline-delimited JSON-RPC, as ACP frames it.

The SDK's own stdio transport logs a line it cannot parse and carries on silently;
an ACP client then waits for an answer that never comes. :class:`LineTransport`
answers such a line, and any frame that is not a JSON-RPC message, with the JSON-RPC
error the spec names (``-32700`` parse error, ``-32600`` invalid request, id null when
none could be read), and keeps serving. Unknown methods and wrong params are
answered by the SDK's router (``-32601``, ``-32602``).

Stdout carries protocol frames only: logging goes to ``acp.log`` in the state dir.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from acp import stdio_streams

from duologue.protocol.paths import Paths, locate

from ..rpc.relay_log import log_to_state_file
from ..rpc.launcher import EmulatorMode
from .agent import DuologueAgent
from .connection import DuologueConnection

log = logging.getLogger("duologue.acp")

LINE_LIMIT = 50 * 1024 * 1024
"""The longest frame read: prompts may embed whole files."""


def error_frame(id_: Any, code: int, message: str, data: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": id_, "error": error}


def check_frame(raw: bytes) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """A line as a JSON-RPC message, or the error frame that answers it."""
    try:
        message = json.loads(raw)
    except ValueError as exc:
        return None, error_frame(None, -32700, "Parse error", {"details": str(exc)})
    if not isinstance(message, dict):
        return None, error_frame(None, -32600, "Invalid request",
                                 {"details": "a frame is one JSON object (ACP has no batches)"})
    id_ = message.get("id")
    readable_id = id_ if isinstance(id_, (int, str)) and not isinstance(id_, bool) else None
    if message.get("jsonrpc") != "2.0":
        return None, error_frame(readable_id, -32600, "Invalid request", {"details": 'jsonrpc must be "2.0"'})
    if "method" in message and not isinstance(message["method"], str):
        return None, error_frame(readable_id, -32600, "Invalid request", {"details": "method must be a string"})
    if "method" not in message and "id" not in message:
        return None, error_frame(None, -32600, "Invalid request", {"details": "neither a method nor an id"})
    if "id" in message and readable_id is None and "method" in message:
        return None, error_frame(None, -32600, "Invalid request", {"details": "id must be a string or an integer"})
    return message, None


class LineTransport:
    """The ``acp`` SDK's message transport over newline-delimited JSON on a stream pair."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self._reader = reader
        self._writer = writer
        self._lock = asyncio.Lock()

    async def send(self, message: dict[str, Any]) -> None:
        line = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
        async with self._lock:
            self._writer.write(line)
            await self._writer.drain()

    async def receive(self) -> dict[str, Any] | None:
        while True:
            try:
                line = await self._reader.readline()
            except ValueError:  # longer than LINE_LIMIT: the rest of the line was dropped
                await self.send(error_frame(None, -32700, "Parse error",
                                            {"details": f"a frame is longer than {LINE_LIMIT} bytes"}))
                continue
            if not line:
                return None
            if not line.strip():
                continue
            message, refusal = check_frame(line)
            if refusal is not None:
                log.warning("refused a frame: %s", refusal["error"])
                await self.send(refusal)
                continue
            return message

    async def close(self) -> None:
        try:
            self._writer.close()
        except Exception:  # stdout already gone: nothing to flush to
            pass


async def serve(paths: Paths, emulator: EmulatorMode) -> None:
    reader, writer = await stdio_streams(limit=LINE_LIMIT)
    agent = DuologueAgent(paths, emulator=emulator)
    conn = DuologueConnection(agent, LineTransport(reader, writer))
    try:
        await conn.listen()
    finally:
        await agent.close()
        await conn._conn.close()


def main(*, emulator: EmulatorMode = "if-no-key") -> int:
    """Serve until the ACP client closes stdin."""
    paths = locate()
    log_to_state_file(paths, "acp", "duologue.acp", "duologue.bridge")
    asyncio.run(serve(paths, emulator))
    return 0
