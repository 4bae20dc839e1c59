"""Bad input on stdin gets a JSON-RPC error and the agent keeps serving; stdout holds
protocol frames only."""

from __future__ import annotations

import asyncio
import json
import sys

ACP_ARGV = [sys.executable, "-m", "duologue.clients.cli", "acp"]


async def test_malformed_lines_unknown_methods_and_wrong_params_get_errors(daemon, project):
    proc = await asyncio.create_subprocess_exec(*ACP_ARGV, env=daemon.env, cwd=project, stdin=asyncio.subprocess.PIPE,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None

    async def ask(line: str) -> dict:
        proc.stdin.write(line.encode() + b"\n")
        await proc.stdin.drain()
        raw = await asyncio.wait_for(proc.stdout.readline(), 30)
        return json.loads(raw)  # anything but a JSON frame on stdout fails here

    try:
        assert (await ask("{not json"))["error"]["code"] == -32700
        assert (await ask("[1, 2]"))["error"]["code"] == -32600
        assert (await ask('{"jsonrpc": "2.0", "id": 1, "method": 7}'))["error"]["code"] == -32600
        unknown = await ask('{"jsonrpc": "2.0", "id": 2, "method": "session/frobnicate", "params": {}}')
        assert unknown["id"] == 2 and unknown["error"]["code"] == -32601
        wrong = await ask('{"jsonrpc": "2.0", "id": 3, "method": "session/new", "params": {"mcpServers": []}}')
        assert wrong["id"] == 3 and wrong["error"]["code"] == -32602
        init = await ask('{"jsonrpc": "2.0", "id": 4, "method": "initialize", "params": {"protocolVersion": 1}}')
        assert init["result"]["protocolVersion"] == 1
        bad_prompt = await ask(json.dumps({"jsonrpc": "2.0", "id": 5, "method": "session/prompt", "params": {
            "sessionId": "nope", "prompt": [{"type": "text", "text": "hi"}]}}))
        assert bad_prompt["id"] == 5 and "not open here" in bad_prompt["error"]["message"]
        new = await ask(json.dumps({"jsonrpc": "2.0", "id": 6, "method": "session/new",
                                    "params": {"cwd": str(project), "mcpServers": []}}))
        image = await ask(json.dumps({"jsonrpc": "2.0", "id": 7, "method": "session/prompt", "params": {
            "sessionId": new["result"]["sessionId"],
            "prompt": [{"type": "image", "data": "AAAA", "mimeType": "image/png"}]}}))
        assert image["error"]["code"] == -32602 and "image" in image["error"]["message"]
        listed = await ask('{"jsonrpc": "2.0", "id": 8, "method": "session/list", "params": {}}')
        assert len(listed["result"]["sessions"]) == 1
    finally:
        proc.stdin.close()
        await asyncio.wait_for(proc.wait(), 30)
    assert proc.returncode == 0
