"""A request's own events reach an attached client before the request's response.

docs/protocol.md (section 6) promises it, so that a client which shows what it sees
can treat the response as confirmation of something already on screen, never as the
first word of it. Read from a raw DEALER socket, frame by frame, since the client
library would hide the order.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import zmq
from reliability_support import Raw
from support import DaemonProcess


@pytest.fixture
def raw(daemon: DaemonProcess) -> Iterator[Raw]:
    ctx = zmq.Context()
    sock = Raw(ctx, daemon.paths.endpoint)
    try:
        yield sock
    finally:
        sock.close()
        ctx.term()


def _until_response(raw: Raw, req_id: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The notifications that came before the response to ``req_id``, and the response."""
    before = []
    while True:
        frame = json.loads(raw.recv_frame())
        if frame.get("id") == req_id and "method" not in frame:
            return before, frame
        before.append(frame)


def _session(raw: Raw) -> str:
    sid = raw.call("session/create", {"title": "order"})["result"]["session"]["id"]
    assert "error" not in raw.call("session/attach", {"session_id": sid})
    return sid


def test_the_user_messages_message_created_comes_before_the_send_response(raw: Raw):
    sid = _session(raw)
    for n in range(3):
        before, response = _until_response(raw, raw.request("session/send", {"session_id": sid, "text": f"q{n}"}))
        sent = response["result"]["message"]
        created = [f["params"]["message"]["id"] for f in before if f.get("method") == "message/created"]
        assert sent["id"] in created, (n, [f.get("method") for f in before])


@pytest.mark.parametrize(("method", "params", "event"), [
    ("session/switch_model", {"model": "flash"}, "session/model_switched"),
    ("session/rename", {"title": "renamed"}, "session/renamed"),
    ("tasks/update", {"tasks": [{"content": "one"}]}, "tasks/changed"),
])
def test_the_event_of_a_change_comes_before_its_response(raw: Raw, method: str, params: dict, event: str):
    sid = _session(raw)
    before, response = _until_response(raw, raw.request(method, {"session_id": sid, **params}))
    assert "result" in response, response
    assert [f["method"] for f in before if f.get("method") == event] == [event]
