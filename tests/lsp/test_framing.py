"""`duologue lsp` answers every malformed message and stays in step.

Invalid JSON, invalid UTF-8 and JSON nested 100,000 deep get a ``-32700`` parse error
(``id: null``); JSON that is not a request object gets ``-32600``; a header block
without ``Content-Length`` gets ``-32700`` and the request after it is still answered.
Before, all of these went unanswered, and the missing header swallowed the next
request."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from duologue.clients.lsp.stdio_client import LspClient, frame


def _recording(client: LspClient) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    original = client._dispatch

    async def dispatch(message: dict[str, Any]) -> None:
        seen.append(message)
        await original(message)

    client._dispatch = dispatch  # type: ignore[method-assign]
    return seen


def _raw(client: LspClient, data: bytes) -> None:
    assert client.proc.stdin is not None
    client.proc.stdin.write(data)


async def _error_for(seen: list[dict[str, Any]], start: int, timeout: float = 10.0) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        for message in seen[start:]:
            if "error" in message and "method" not in message:
                return message
        await asyncio.sleep(0.02)
    raise AssertionError(f"no error answer; got {seen[start:]}")


def _framed(body: bytes) -> bytes:
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


BAD_BODIES = {
    "invalid json": (_framed(b'{"jsonrpc": "2.0", "id": 7, "method": '), -32700, None),
    "invalid utf-8": (_framed(b'{"jsonrpc":"2.0","id":8,"method":"x","params":{"a":"\xff\xfe"}}'), -32700, None),
    "deep nesting": (_framed(b"[" * 100_000 + b"]" * 100_000), -32700, None),
    "deep object": (_framed(b'{"jsonrpc":"2.0","id":9,"method":"x","params":' + b'{"a":' * 5000 + b"1"
                            + b"}" * 5000 + b"}"), -32700, None),
    "not an object": (_framed(b"42"), -32600, None),
    "a batch": (_framed(b'[{"jsonrpc":"2.0","id":10,"method":"shutdown"}]'), -32600, None),
    "no jsonrpc member": (_framed(b'{"id":11,"method":"shutdown"}'), -32600, 11),
}


@pytest.mark.parametrize("case", sorted(BAD_BODIES))
async def test_a_malformed_message_gets_an_error_and_the_next_request_an_answer(start_lsp, case: str):
    client = await start_lsp()
    seen = _recording(client)
    data, code, req_id = BAD_BODIES[case]
    start = len(seen)
    _raw(client, data)
    error = await _error_for(seen, start)
    assert error["error"]["code"] == code, error
    assert error["id"] == req_id
    result = await client.execute("duologue.sessions", {}, timeout=20)
    assert "sessions" in result


async def test_a_header_without_content_length_is_answered_and_the_stream_resynchronises(start_lsp):
    client = await start_lsp()
    seen = _recording(client)
    start = len(seen)
    lost = b'{"jsonrpc":"2.0","id":900,"method":"shutdown"}'
    _raw(client, b"Content-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n" + lost)
    error = await _error_for(seen, start)
    assert error["error"]["code"] == -32700 and error["id"] is None
    # The request right after it (in the same write) is answered.
    follow = {"jsonrpc": "2.0", "id": 901, "method": "workspace/executeCommand",
              "params": {"command": "duologue.sessions", "arguments": [{}]}}
    _raw(client, frame(follow))
    deadline = asyncio.get_running_loop().time() + 20
    while not any(m.get("id") == 901 for m in seen):
        assert asyncio.get_running_loop().time() < deadline, seen
        await asyncio.sleep(0.02)
    answer = next(m for m in seen if m.get("id") == 901)
    assert "result" in answer and "sessions" in answer["result"], answer
