"""Bad input over a raw DEALER socket: each gets the right JSON-RPC error, and the
daemon answers the next well-formed request on the same connection.

The client library would never send these frames, so these tests speak ZeroMQ
directly (pyzmq, the daemon's real ipc endpoint).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import zmq
from zmq.utils.monitor import recv_monitor_message

from duologue.protocol.errors import ErrorCode
from support import DaemonProcess
from duologue.protocol.methods import MAX_FRAME_BYTES

TIMEOUT_MS = 10_000


class Raw:
    """A DEALER socket that sends bytes as given and reads JSON answers."""

    def __init__(self, ctx: zmq.Context, endpoint: str):
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.RCVTIMEO, TIMEOUT_MS)
        self.sock.connect(endpoint)
        self._ids = 1000

    def send(self, frame: bytes) -> None:
        self.sock.send(frame)

    def recv(self) -> Any:
        return json.loads(self.sock.recv())

    def ask(self, frame: bytes) -> Any:
        self.send(frame)
        return self.recv()

    def call(self, method: str, params: Any = None) -> Any:
        self._ids += 1
        body: dict[str, Any] = {"jsonrpc": "2.0", "id": self._ids, "method": method}
        if params is not None:
            body["params"] = params
        reply = self.ask(json.dumps(body).encode())
        assert reply["id"] == self._ids
        return reply

    def assert_still_serving(self) -> None:
        reply = self.call("daemon/status")
        assert "result" in reply, reply
        assert reply["result"]["protocol_version"]

    def silent_for(self, ms: int) -> bool:
        """True when nothing arrives within ``ms`` (used only to prove an absence)."""
        return not self.sock.poll(ms)

    def close(self) -> None:
        self.sock.close(linger=0)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    """One daemon for the module: proving it survives each bad input and keeps serving
    is the point, so sharing it across tests is a feature, not a shortcut."""
    d = DaemonProcess(tmp_path_factory.mktemp("home")).start()
    try:
        yield d
    finally:
        assert d.stop() == 0


@pytest.fixture
def zctx() -> Iterator[zmq.Context]:
    ctx = zmq.Context()
    yield ctx
    ctx.term()


@pytest.fixture
def raw(daemon, zctx) -> Iterator[Raw]:
    r = Raw(zctx, daemon.paths.endpoint)
    r.assert_still_serving()
    yield r
    r.close()


def error_of(reply: Any) -> dict[str, Any]:
    assert "error" in reply and "result" not in reply, reply
    assert reply["jsonrpc"] == "2.0"
    return reply["error"]


UNKNOWN_SID = "01ARZ3NDEKTSV4RRFFQ69G5FAV"


# --- framing ----------------------------------------------------------------------------


@pytest.mark.parametrize("frame", [
    b"{not json",
    b'{"jsonrpc": "2.0", "id": 1, "method": "daemon/status"',
    b"",
    b"\x00\x01",
])
def test_invalid_json_is_a_parse_error_and_the_daemon_keeps_serving(raw: Raw, frame: bytes):
    reply = raw.ask(frame)
    assert error_of(reply)["code"] == ErrorCode.PARSE_ERROR
    assert reply["id"] is None
    raw.assert_still_serving()


@pytest.mark.parametrize("frame", [
    b'{"jsonrpc":"2.0","id":1,"method":"daemon/status","params":{},"x":"\xff"}',
    b'{"jsonrpc":"2.0","id":1,"method":"session/rename","params":{"session_id":"S","title":"a\xffb"}}',
    b'"\xff"',
    b'\xc3\x28',
])
def test_invalid_utf8_is_a_parse_error_wherever_it_sits(raw: Raw, frame: bytes):
    reply = raw.ask(frame)
    assert error_of(reply)["code"] == ErrorCode.PARSE_ERROR, reply
    raw.assert_still_serving()


@pytest.mark.parametrize("body, id_", [
    (42, None),
    ("a string", None),
    (None, None),
    ({"id": 7, "method": "daemon/status"}, 7),
    ({"jsonrpc": "1.0", "id": 8, "method": "daemon/status"}, 8),
    ({"jsonrpc": 2.0, "id": 9, "method": "daemon/status"}, 9),
    ({"jsonrpc": "2.0", "id": 10}, 10),
    ({"jsonrpc": "2.0", "id": 11, "method": 5}, 11),
    ({"jsonrpc": "2.0", "id": 12, "method": "daemon/status", "params": 3}, 12),
    ({"jsonrpc": "2.0", "id": True, "method": "daemon/status"}, None),
    ({"jsonrpc": "2.0", "id": None, "method": "daemon/status"}, None),
])
def test_an_invalid_envelope_is_an_invalid_request(raw: Raw, body: Any, id_: Any):
    reply = raw.ask(json.dumps(body).encode())
    assert error_of(reply)["code"] == ErrorCode.INVALID_REQUEST, reply
    assert reply["id"] == id_
    raw.assert_still_serving()


def test_unknown_method_is_method_not_found_naming_the_method(raw: Raw):
    err = error_of(raw.call("session/frobnicate", {}))
    assert err["code"] == ErrorCode.METHOD_NOT_FOUND
    assert "session/frobnicate" in err["message"]
    assert err["data"]["method"] == "session/frobnicate"
    raw.assert_still_serving()


@pytest.mark.parametrize("method, params, path", [
    ("session/get", {"session_id": 5}, "$.session_id"),
    ("session/get", {"session_id": "S", "since_seq": "zero"}, "$.since_seq"),
    ("session/get", {"session_id": "S", "since_seq": -1}, "$.since_seq"),
    ("session/list", {"limit": 0}, "$.limit"),
    ("session/create", {"metadata": {"k": 1}}, "$.metadata['k']"),
    ("tasks/update", {"session_id": "S", "tasks": [{"content": "x", "status": "nope"}]}, "$.tasks[0].status"),
])
def test_wrong_param_types_are_invalid_params_with_the_path(raw: Raw, method: str, params: Any, path: str):
    err = error_of(raw.call(method, params))
    assert err["code"] == ErrorCode.INVALID_PARAMS
    assert err["data"]["path"].startswith(path), err
    raw.assert_still_serving()


def test_a_missing_required_param_is_invalid_params(raw: Raw):
    err = error_of(raw.call("session/rename", {"session_id": "S"}))
    assert err["code"] == ErrorCode.INVALID_PARAMS
    assert "title" in err["message"]
    raw.assert_still_serving()


def test_an_unknown_params_field_is_invalid_params(raw: Raw):
    err = error_of(raw.call("session/create", {"titel": "typo"}))
    assert err["code"] == ErrorCode.INVALID_PARAMS
    assert "titel" in err["message"]
    raw.assert_still_serving()


def test_positional_params_are_invalid_params(raw: Raw):
    err = error_of(raw.call("session/get", ["S"]))
    assert err["code"] == ErrorCode.INVALID_PARAMS
    raw.assert_still_serving()


@pytest.mark.parametrize("method, params", [
    ("session/get", {"session_id": UNKNOWN_SID}),
    ("session/rename", {"session_id": UNKNOWN_SID, "title": "x"}),
    ("session/delete", {"session_id": UNKNOWN_SID}),
    ("session/switch_model", {"session_id": UNKNOWN_SID, "model": "sonnet"}),
    ("session/attach", {"session_id": UNKNOWN_SID}),
    ("session/detach", {"session_id": UNKNOWN_SID}),
    ("tasks/list", {"session_id": UNKNOWN_SID}),
    ("tasks/update", {"session_id": UNKNOWN_SID, "tasks": []}),
])
def test_an_unknown_session_is_unknown_session(raw: Raw, method: str, params: Any):
    err = error_of(raw.call(method, params))
    assert err["code"] == ErrorCode.UNKNOWN_SESSION, err
    assert UNKNOWN_SID in err["message"]
    raw.assert_still_serving()


# --- batches and notifications -----------------------------------------------------------


def test_a_batch_is_answered_in_one_array_and_notifications_are_not_answered(raw: Raw):
    batch = [
        {"jsonrpc": "2.0", "id": 1, "method": "daemon/status"},
        {"jsonrpc": "2.0", "method": "daemon/status"},  # a notification: no answer
        {"jsonrpc": "2.0", "id": 2, "method": "no/such"},
        42,
        {"jsonrpc": "2.0", "id": 3, "method": "session/get", "params": {"session_id": 1}},
        {"jsonrpc": "2.0", "method": "no/such"},  # a failing notification: still no answer
        {"jsonrpc": "2.0", "id": "four", "method": "models/list"},
    ]
    reply = raw.ask(json.dumps(batch).encode())
    assert isinstance(reply, list)
    by_id = {r["id"]: r for r in reply}
    assert len(reply) == 5
    assert "result" in by_id[1]
    assert by_id[2]["error"]["code"] == ErrorCode.METHOD_NOT_FOUND
    assert by_id[None]["error"]["code"] == ErrorCode.INVALID_REQUEST
    assert by_id[3]["error"]["code"] == ErrorCode.INVALID_PARAMS
    assert by_id["four"]["result"]["models"]
    raw.assert_still_serving()


def test_a_batch_of_notifications_only_gets_no_answer(raw: Raw):
    raw.send(json.dumps([{"jsonrpc": "2.0", "method": "daemon/status"}]).encode())
    raw.send(json.dumps({"jsonrpc": "2.0", "method": "daemon/status"}).encode())
    # The daemon answers in order: the next reply is the status call's, not a stray one.
    raw.assert_still_serving()


def test_an_empty_batch_is_one_invalid_request(raw: Raw):
    reply = raw.ask(b"[]")
    assert not isinstance(reply, list)
    assert error_of(reply)["code"] == ErrorCode.INVALID_REQUEST
    raw.assert_still_serving()


def test_a_batch_of_invalid_items_answers_each(raw: Raw):
    reply = raw.ask(b"[1, 2, 3]")
    assert isinstance(reply, list) and len(reply) == 3
    assert all(r["error"]["code"] == ErrorCode.INVALID_REQUEST for r in reply)
    raw.assert_still_serving()


# --- transport limits --------------------------------------------------------------------


def test_a_multipart_message_is_an_invalid_request(raw: Raw):
    raw.sock.send_multipart([b'{"jsonrpc":"2.0","id":1,"method":"daemon/status"}', b"extra"])
    err = error_of(raw.recv())
    assert err["code"] == ErrorCode.INVALID_REQUEST
    assert "one ZeroMQ frame" in err["message"]
    raw.assert_still_serving()


def test_a_frame_over_the_limit_closes_that_connection_and_others_are_served(daemon, zctx, raw: Raw):
    big = Raw(zctx, daemon.paths.endpoint)
    big.assert_still_serving()
    monitor = big.sock.get_monitor_socket(zmq.EVENT_DISCONNECTED)
    monitor.setsockopt(zmq.RCVTIMEO, TIMEOUT_MS)
    try:
        padding = b"x" * (MAX_FRAME_BYTES + 1)
        big.send(b'{"jsonrpc":"2.0","id":1,"method":"daemon/status","params":{},"pad":"' + padding + b'"}')
        event = recv_monitor_message(monitor)
        assert event["event"] == zmq.EVENT_DISCONNECTED
        raw.assert_still_serving()
        assert "result" in raw.call("session/create", {"title": "after the big frame"})
    finally:
        big.sock.disable_monitor()
        monitor.close(linger=0)
        big.close()


def test_a_frame_just_under_the_limit_is_read_and_answered(raw: Raw):
    head = b'{"jsonrpc":"2.0","id":5,"method":"daemon/status","params":{},"pad":"'
    tail = b'"}'
    frame = head + b"x" * (MAX_FRAME_BYTES - len(head) - len(tail)) + tail
    assert len(frame) == MAX_FRAME_BYTES
    reply = raw.ask(frame)
    assert reply["id"] == 5 and "result" in reply
