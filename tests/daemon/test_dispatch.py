"""The dispatcher, without a daemon: inline answers, waiting handlers answered from
tasks while others are served, and each failure's error."""

from __future__ import annotations

import asyncio
import json

import pytest

from duologue.daemon.dispatch import Dispatcher
from duologue.daemon.store import StoreWriteError
from duologue.protocol import methods as m
from duologue.protocol.errors import ErrorCode, RpcError
from duologue.protocol.methods import METHODS


def _frame(req_id: int, method: str, params: dict | None = None) -> dict:
    return {"jsonrpc": "2.0", "id": req_id, "method": method, **({"params": params} if params is not None else {})}


class Harness:
    def __init__(self, **handlers):
        base = {name: (lambda p, ctx: m.EmptyResult()) for name in METHODS}
        base.update(handlers)
        self.answers: list = []
        self.dispatcher = Dispatcher(base, "/log", asyncio.get_running_loop().create_task)

    def send(self, *frames: dict) -> None:
        body = frames[0] if len(frames) == 1 else list(frames)
        self.dispatcher.handle(json.dumps(body).encode(), object(),
                               lambda response, after: self.answers.append(json.loads(response)))


async def test_a_plain_handler_is_answered_before_handle_returns():
    h = Harness(**{"daemon/shutdown": lambda p, ctx: m.EmptyResult()})
    h.send(_frame(1, "daemon/shutdown"))
    assert h.answers == [{"jsonrpc": "2.0", "id": 1, "result": {}}]


async def test_a_waiting_handler_does_not_hold_up_the_requests_after_it():
    gate = asyncio.Event()

    async def slow(p, ctx):
        await gate.wait()
        return m.EmptyResult()

    h = Harness(**{"session/delete": slow})
    h.send(_frame(1, "session/delete", {"session_id": "s"}))
    h.send(_frame(2, "daemon/shutdown"))
    assert [a["id"] for a in h.answers] == [2]
    gate.set()
    await asyncio.sleep(0.01)
    assert [a["id"] for a in h.answers] == [2, 1]


async def test_a_batch_with_a_waiting_request_is_answered_whole_in_order():
    async def slow(p, ctx):
        await asyncio.sleep(0)
        raise RpcError(ErrorCode.UNKNOWN_SESSION, "no such session")

    h = Harness(**{"session/delete": slow})
    h.send(_frame(1, "daemon/shutdown"), _frame(2, "session/delete", {"session_id": "s"}))
    assert h.answers == []
    await asyncio.sleep(0.01)
    [batch] = h.answers
    assert [r["id"] for r in batch] == [1, 2]
    assert batch[1]["error"]["code"] == ErrorCode.UNKNOWN_SESSION


@pytest.mark.parametrize("raised, code", [
    (StoreWriteError("the disk is full", disk_full=True), ErrorCode.STORE_UNWRITABLE),
    (KeyError("bug"), ErrorCode.INTERNAL_ERROR),
])
async def test_failures_are_answered_with_their_code_and_no_trace(raised, code):
    def broken(p, ctx):
        raise raised

    h = Harness(**{"daemon/shutdown": broken})
    h.send(_frame(1, "daemon/shutdown"))
    error = h.answers[0]["error"]
    assert error["code"] == code
    assert "Traceback" not in error["message"]
    if code == ErrorCode.STORE_UNWRITABLE:
        assert error["data"] == {"disk_full": True}
    else:
        assert "/log" in error["message"]


async def test_stopping_cancels_the_requests_still_waiting():
    async def forever(p, ctx):
        await asyncio.Event().wait()

    h = Harness(**{"session/delete": forever})
    h.send(_frame(1, "session/delete", {"session_id": "s"}))
    await asyncio.sleep(0)
    await asyncio.wait_for(h.dispatcher.stop(), 5)
    assert h.answers == []


def test_the_table_is_the_api():
    with pytest.raises(RuntimeError, match="missing"):
        Dispatcher({}, "/log", lambda coro: None)
