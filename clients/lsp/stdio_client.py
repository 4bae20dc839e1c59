"""A small LSP client that drives a language server child process over its stdio.

It speaks LSP's framing (``Content-Length`` headers, one JSON-RPC message per
body), matches responses to requests by id, answers the server's own requests the
way an editor does (``window/workDoneProgress/create`` and the like), and keeps every
notification and server request in arrival order so a caller can check sequences.
Tests and the benchmark use it; it is not needed by editors, which have their own.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any


class LspError(Exception):
    def __init__(self, code: int, message: str, data: Any = None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.data = data


DEFAULT_CAPABILITIES: dict[str, Any] = {
    "window": {"workDoneProgress": True, "showMessage": {}},
    "workspace": {"executeCommand": {}, "workspaceFolders": True},
    "textDocument": {"codeAction": {}},
}


def frame(message: dict[str, Any]) -> bytes:
    body = json.dumps(message, separators=(",", ":")).encode("utf-8")
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


class LspClient:
    def __init__(self, proc: asyncio.subprocess.Process):
        self.proc = proc
        self.received: list[dict[str, Any]] = []
        """Notifications and server requests, in arrival order."""
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._changed = asyncio.Condition()
        self._reader = asyncio.create_task(self._read_loop())
        self.answers: dict[str, Callable[[Any], Any]] = {
            "window/workDoneProgress/create": lambda params: None,
            "workspace/configuration": lambda params: [None] * len(params.get("items", [])),
            "client/registerCapability": lambda params: None,
            "window/showMessageRequest": lambda params: None,
        }

    @classmethod
    async def spawn(cls, argv: Sequence[str], *, env: dict[str, str] | None = None,
                    cwd: str | os.PathLike[str] | None = None) -> LspClient:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL, env=env, cwd=cwd, limit=64 * 1024 * 1024)
        return cls(proc)

    # --- sending ------------------------------------------------------------------------

    def _write(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(frame(message))

    async def request(self, method: str, params: Any = None, *, timeout: float = 30.0,
                      omit_params: bool = False) -> Any:
        """Send a request and return its result; raise :class:`LspError` on an error."""
        if self._reader.done():
            raise ConnectionError("the language server exited")
        req_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[req_id] = future
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": req_id, "method": method}
        if not omit_params:
            message["params"] = params
        self._write(message)
        try:
            return await asyncio.wait_for(future, timeout)
        finally:
            self._pending.pop(req_id, None)

    def notify(self, method: str, params: Any = None) -> None:
        self._write({"jsonrpc": "2.0", "method": method, "params": params})

    async def initialize(self, root: Path, capabilities: dict[str, Any] | None = None,
                         timeout: float = 30.0) -> Any:
        uri = root.resolve().as_uri()
        result = await self.request("initialize", {
            "processId": os.getpid(), "rootUri": uri, "rootPath": str(root),
            "workspaceFolders": [{"uri": uri, "name": root.name}],
            "capabilities": DEFAULT_CAPABILITIES if capabilities is None else capabilities,
        }, timeout=timeout)
        self.notify("initialized", {})
        return result

    async def execute(self, command: str, *arguments: Any, timeout: float = 30.0) -> Any:
        return await self.request("workspace/executeCommand",
                                  {"command": command, "arguments": list(arguments)}, timeout=timeout)

    async def shutdown_and_exit(self, timeout: float = 15.0) -> int:
        await self.request("shutdown", None, timeout=timeout)
        self.notify("exit", None)
        return await self.wait_exit(timeout)

    async def wait_exit(self, timeout: float = 15.0) -> int:
        code = await asyncio.wait_for(self.proc.wait(), timeout)
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)
        return code

    async def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)

    # --- receiving ----------------------------------------------------------------------

    async def _read_loop(self) -> None:
        stdout = self.proc.stdout
        assert stdout is not None
        try:
            while True:
                length = None
                while True:
                    line = await stdout.readline()
                    if not line:
                        return
                    line = line.strip()
                    if not line:
                        break
                    name, _, value = line.decode("ascii").partition(":")
                    if name.lower() == "content-length":
                        length = int(value.strip())
                if length is None:
                    raise ValueError("a message without Content-Length")
                message = json.loads(await stdout.readexactly(length))
                await self._dispatch(message)
        finally:
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(ConnectionError("the language server exited"))

    async def _dispatch(self, message: dict[str, Any]) -> None:
        if "method" not in message:
            future = self._pending.get(message.get("id"))  # type: ignore[arg-type]
            if future is not None and not future.done():
                if "error" in message:
                    err = message["error"]
                    future.set_exception(LspError(err["code"], err["message"], err.get("data")))
                else:
                    future.set_result(message.get("result"))
            return
        if "id" in message:
            answer = self.answers.get(message["method"])
            if answer is None:
                self._write({"jsonrpc": "2.0", "id": message["id"],
                             "error": {"code": -32601, "message": f"no {message['method']} here"}})
            else:
                self._write({"jsonrpc": "2.0", "id": message["id"], "result": answer(message.get("params"))})
        async with self._changed:
            self.received.append(message)
            self._changed.notify_all()

    async def wait_for(self, predicate: Callable[[dict[str, Any]], bool], *, timeout: float = 20.0,
                       start: int = 0) -> dict[str, Any]:
        """The first received message (from index ``start``) that matches."""
        index = start

        def found() -> bool:
            nonlocal index
            while index < len(self.received):
                if predicate(self.received[index]):
                    return True
                index += 1
            return False

        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(found), timeout)
        return self.received[index]

    def notifications(self, method: str) -> list[Any]:
        return [msg.get("params") for msg in self.received if msg.get("method") == method]
