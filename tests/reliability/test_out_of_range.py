"""Input the types accept but the store cannot hold is INVALID_PARAMS, never
INTERNAL_ERROR: a seq past 2^53-1, a malformed page cursor, an empty message id, a
line number past 2^31-1, a timestamp before 1970. Each error names the field in
``data.path``, nothing is written, and the bounds are in ``schemas/`` so a client
written from them knows them beforehand."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq
from reliability_support import Raw

from support import DaemonProcess

from duologue.protocol.errors import ErrorCode

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


@pytest.fixture
def raw(daemon: DaemonProcess) -> Iterator[Raw]:
    ctx = zmq.Context()
    r = Raw(ctx, daemon.paths.endpoint)
    try:
        yield r
    finally:
        r.close()
        ctx.term()


def _refused(raw: Raw, method: str, params: dict[str, Any], path: str) -> dict[str, Any]:
    reply = raw.call(method, params)
    error = reply.get("error")
    assert error is not None, reply
    assert error["code"] == ErrorCode.INVALID_PARAMS, error
    assert error["data"]["path"] == path, error
    return error


def _session(raw: Raw) -> str:
    return raw.call("session/create", {"title": "t"})["result"]["session"]["id"]


def _import(created_at: str, message_at: str) -> dict[str, Any]:
    return {"sessions": [{
        "external_id": "test:old", "sources": ["claude-code"], "title": "old", "created_at": created_at,
        "messages": [{"external_id": "test:old:1", "role": "user", "created_at": message_at,
                      "content": [{"type": "text", "text": "hi"}]}]}]}


def test_a_seq_past_the_bound_is_invalid_params(raw: Raw):
    sid = _session(raw)
    for method in ("session/get", "session/attach"):
        _refused(raw, method, {"session_id": sid, "since_seq": 2**64 - 1}, "$.since_seq")
        _refused(raw, method, {"session_id": sid, "since_seq": 2**53}, "$.since_seq")
    for method in ("session/get", "session/attach"):  # in bounds, but past this session's seqs
        beyond = _refused(raw, method, {"session_id": sid, "since_seq": 2**53 - 1}, "$.since_seq")
        assert "beyond the session's last seq 1" in beyond["message"], beyond


@pytest.mark.parametrize("cursor", ["-1.x", "1.", ".ABC", "99999999999999999999.A", "1.a b", ""])
def test_a_malformed_page_cursor_is_invalid_params(raw: Raw, cursor: str):
    _refused(raw, "session/list", {"before": cursor}, "$.before")


def test_an_empty_message_id_is_invalid_params(raw: Raw):
    sid = _session(raw)
    _refused(raw, "session/pin", {"session_id": sid, "message_id": ""}, "$.message_id")


@pytest.mark.parametrize("line_range, path", [
    ({"start": 1, "end": 2**65}, "$.context[0].range.end"),
    ({"start": 0, "end": 3}, "$.context[0].range.start"),
    ({"start": 5, "end": 2}, "$.context[0].range.end"),
])
def test_a_context_range_out_of_bounds_is_invalid_params_and_nothing_is_sent(raw: Raw, line_range, path):
    sid = _session(raw)
    block = {"type": "code_context", "path": "a.py", "text": "x = 1\n", "range": line_range}
    _refused(raw, "session/send", {"session_id": sid, "text": "look", "context": [block]}, path)
    assert raw.call("session/get", {"session_id": sid})["result"]["messages"] == []


@pytest.mark.parametrize("session_at, message_at, path", [
    ("2024-01-01T00:00:00Z", "1969-12-31T23:59:59Z", "$.sessions[0].messages[0].created_at"),
    ("1900-01-01T00:00:00Z", "2024-01-01T00:00:00Z", "$.sessions[0].created_at"),
])
def test_a_pre_1970_import_timestamp_is_invalid_params_and_imports_nothing(raw: Raw, session_at, message_at,
                                                                          path):
    _refused(raw, "import/run", _import(session_at, message_at), path)
    assert raw.call("import/list", {})["result"]["batches"] == []
    assert raw.call("session/list", {})["result"]["sessions"] == []
    ok = raw.call("import/run", _import("2024-01-01T00:00:00Z", "2024-01-01T00:00:01Z"))
    assert ok["result"]["created_sessions"] == 1, ok


def _schema(name: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / f"{name}.json").read_text())


def _props(schema: dict[str, Any], name: str) -> dict[str, Any]:
    defs = schema.get("$defs", {})
    return defs.get(name, schema)["properties"]


def _branch(prop: dict[str, Any]) -> dict[str, Any]:
    """The non-null branch of an optional property."""
    for option in prop.get("anyOf", [prop]):
        if option.get("type") != "null":
            return option
    return prop


def test_the_schemas_carry_the_bounds():
    get = _props(_schema("GetParams"), "GetParams")
    assert _branch(get["since_seq"])["maximum"] == 2**53 - 1
    attach = _props(_schema("AttachParams"), "AttachParams")
    assert _branch(attach["since_seq"])["maximum"] == 2**53 - 1
    listing = _props(_schema("ListParams"), "ListParams")
    assert "pattern" in _branch(listing["before"])
    pin = _props(_schema("PinParams"), "PinParams")
    assert pin["message_id"]["minLength"] == 1
    for name in ("ImportMessage", "ImportSession"):
        assert _props(_schema(name), name)["created_at"]["formatExclusiveMinimum"] == "1969-12-31T23:59:59.999999Z"
