"""Bad input, generated: every frame gets the right JSON-RPC error (or, for an
oversized frame, a clean disconnect), the daemon never dies, and a well-formed
request sent right after each frame succeeds.

Frames come from hypothesis, shaped by the protocol itself: the method table and
the JSON Schemas in ``schemas/`` (wrong types, missing and unknown fields), junk
envelopes and ids, random bytes and invalid UTF-8, huge strings, deep nesting,
batches of all of these, and frames over ``MAX_FRAME_BYTES``.

The expected answer is computed independently of the daemon's code: the envelope
rules from docs/protocol.md, re-implemented here, and the params checked against
the published JSON Schemas with ``jsonschema``. When the schema accepts the params
the daemon may answer a result or an application error (an unknown session, say),
but never a framing error and never INTERNAL_ERROR.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from reliability_support import Raw
from zmq.utils.monitor import recv_monitor_message

from support import DaemonProcess

from duologue.protocol.errors import ErrorCode
from duologue.protocol.methods import MAX_FRAME_BYTES, METHODS

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
PREFIX = "https://duologue.invalid/schemas/v1/"
FRAMING = {ErrorCode.PARSE_ERROR, ErrorCode.INVALID_REQUEST, ErrorCode.METHOD_NOT_FOUND}
# daemon/shutdown is the one well-formed request that would end the experiment.
SAFE_METHODS = sorted(name for name in METHODS if name != "daemon/shutdown")
TALLY: dict[str, int] = {}


def _validators() -> dict[str, Draft202012Validator]:
    resources = [(PREFIX + p.name, Resource.from_contents(json.loads(p.read_text()), DRAFT202012))
                 for p in SCHEMAS.glob("*.json")]
    registry = Registry().with_resources(resources)
    index = json.loads((SCHEMAS / "index.json").read_text())
    out = {}
    for entry in index["methods"]:
        schema = {"$ref": PREFIX + entry["params"]}
        out[entry["name"]] = Draft202012Validator(schema, registry=registry)
    return out


VALIDATORS = _validators()


@dataclass(frozen=True)
class Expect:
    """What the daemon must send back for one request item."""

    answered: bool
    codes: frozenset[int] | None = None  # None: a result or a non-framing, non-internal error
    ids: tuple[Any, ...] = (None,)


def _id_ok(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def expect_item(item: Any) -> Expect:
    """The documented answer to one request object (or a batch member)."""
    if not isinstance(item, dict):
        return Expect(True, frozenset({ErrorCode.INVALID_REQUEST}))
    has_id, idv = "id" in item, item.get("id")
    salvaged = (idv,) if _id_ok(idv) else (None,)
    jsonrpc, method = item.get("jsonrpc"), item.get("method")
    if not isinstance(jsonrpc, str) or not isinstance(method, str) or (has_id and idv is not None and not _id_ok(idv)):
        return Expect(True, frozenset({ErrorCode.INVALID_REQUEST}), salvaged)
    ids = (idv,) if has_id else (None,)
    if jsonrpc != "2.0":
        return Expect(True, frozenset({ErrorCode.INVALID_REQUEST}), ids)
    if has_id and idv is None:
        return Expect(True, frozenset({ErrorCode.INVALID_REQUEST}))
    params = item.get("params", {})
    if not isinstance(params, (dict, list)):
        return Expect(True, frozenset({ErrorCode.INVALID_REQUEST}), ids)
    if not has_id:
        return Expect(False)  # a client notification is never answered
    if method not in METHODS:
        return Expect(True, frozenset({ErrorCode.METHOD_NOT_FOUND}), ids)
    if isinstance(params, list) or not VALIDATORS[method].is_valid(params):
        return Expect(True, frozenset({ErrorCode.INVALID_PARAMS}), ids)
    return Expect(True, None, ids)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


TOO_DEEP = Expect(True, frozenset({ErrorCode.PARSE_ERROR}))


def _deep(frame: bytes) -> bool:
    """Nested about as deep as a JSON parser's recursion limit (~1000 levels), where
    refusing the whole frame with PARSE_ERROR is as right as reading it."""
    return b"[" * 400 in frame or b'{"a":' * 400 in frame


def expect_frame(frame: bytes) -> list[Expect] | Expect:
    """A list for a batch (one entry per item), else one Expect."""
    try:
        value = json.loads(frame.decode("utf-8"), parse_constant=_no_constants)
    except (UnicodeDecodeError, ValueError):
        return Expect(True, frozenset({ErrorCode.PARSE_ERROR}))
    except RecursionError:
        return Expect(True, frozenset(FRAMING | {ErrorCode.INVALID_PARAMS}), (None,))
    if isinstance(value, list):
        if not value:
            return Expect(True, frozenset({ErrorCode.INVALID_REQUEST}))
        return [expect_item(x) for x in value]
    return expect_item(value)


def check_reply(exp: Expect, reply: Any, frame: bytes) -> None:
    where = f"frame {frame[:300]!r}: reply {str(reply)[:300]}"
    assert isinstance(reply, dict) and reply.get("jsonrpc") == "2.0", where
    assert reply.get("id") in exp.ids, f"id should be one of {exp.ids}; {where}"
    if exp.codes is None:
        if "error" in reply:
            code = reply["error"]["code"]
            assert code not in FRAMING and code != ErrorCode.INTERNAL_ERROR, where
            if code == ErrorCode.INVALID_PARAMS:  # a semantic check (an unreadable cursor …)
                assert "path" in reply["error"].get("data", {}), where
        else:
            assert "result" in reply, where
        return
    assert "error" in reply and "result" not in reply, where
    err = reply["error"]
    assert err["code"] in exp.codes, f"expected {sorted(exp.codes)}; {where}"
    assert isinstance(err["message"], str) and err["message"], where
    if err["code"] == ErrorCode.INVALID_PARAMS and ErrorCode.INVALID_PARAMS in exp.codes and len(exp.codes) == 1:
        assert isinstance(err.get("data"), dict) and err["data"]["path"].startswith("$"), where


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    d = DaemonProcess(tmp_path_factory.mktemp("home")).start()
    try:
        yield d
    finally:
        code = d.stop()
        log = d.log()
        assert code == 0, f"the daemon did not stop cleanly ({code})"
        assert "Traceback" not in log, "a frame caused an internal error; see the daemon log"


@pytest.fixture(scope="module")
def zctx() -> Iterator[zmq.Context]:
    ctx = zmq.Context()
    yield ctx
    ctx.term()


@pytest.fixture(scope="module")
def raw(daemon: DaemonProcess, zctx: zmq.Context) -> Iterator[Raw]:
    r = Raw(zctx, daemon.paths.endpoint)
    yield r
    r.close()


def exchange(raw: Raw, frame: bytes, kind: str) -> None:
    """Send the frame, then a probe. The frame's answer is every other frame read
    until the probe's answer has come and the frame's answer too: a method that
    waits (docs/protocol.md, section 2) may be answered after the probe."""
    TALLY[kind] = TALLY.get(kind, 0) + 1
    raw.sock.send(frame)
    probe_id = f"probe-{raw.next_id()}"
    raw.sock.send(json.dumps({"jsonrpc": "2.0", "id": probe_id, "method": "daemon/status"}).encode())
    expected = expect_frame(frame)
    owed = (any(e.answered for e in expected) if isinstance(expected, list) else expected.answered)
    answers = []
    probed = False
    while not probed or len(answers) < owed:
        reply = json.loads(raw.recv_frame())
        if isinstance(reply, dict) and reply.get("id") == probe_id:
            assert "result" in reply, f"the request after {frame[:200]!r} failed: {reply}"
            probed = True
            continue
        answers.append(reply)
    if _deep(frame) and len(answers) == 1 and isinstance(answers[0], dict) \
            and answers[0].get("error", {}).get("code") == ErrorCode.PARSE_ERROR:
        expected = TOO_DEEP
    if isinstance(expected, list):
        wanted = [e for e in expected if e.answered]
        if not wanted:
            assert answers == [], f"{frame[:300]!r}: a batch of notifications got {answers}"
            return
        assert len(answers) == 1 and isinstance(answers[0], list), f"{frame[:300]!r}: {answers}"
        assert len(answers[0]) == len(wanted), f"{frame[:300]!r}: {answers}"
        for exp, reply in zip(wanted, answers[0]):
            check_reply(exp, reply, frame)
        return
    if not expected.answered:
        assert answers == [], f"{frame[:300]!r}: a notification was answered: {answers}"
        return
    assert len(answers) == 1, f"{frame[:300]!r}: expected one answer, got {answers}"
    check_reply(expected, answers[0], frame)


# --- strategies ---------------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
IDS = st.integers(-2**70, 2**70) | st.text(max_size=20) | JSON


def _param_names() -> dict[str, list[str]]:
    index = json.loads((SCHEMAS / "index.json").read_text())
    out = {}
    for entry in index["methods"]:
        schema = json.loads((SCHEMAS / entry["params"]).read_text())
        out[entry["name"]] = sorted(schema.get("properties", {}))
    return out


PARAM_NAMES = _param_names()
PLAUSIBLE = {
    "session_id": st.just("01ARZ3NDEKTSV4RRFFQ69G5FAV") | st.text(max_size=70),
    "since_seq": st.integers(-3, 2**64) | st.floats(allow_nan=False, allow_infinity=False),
    "limit": st.integers(-3, 20_000),
    "title": st.text(max_size=260),
    "model": st.sampled_from(["sonnet", "flash", "auto", "gpt-9", ""]),
    "text": st.text(max_size=50),
    "tasks": st.lists(st.fixed_dictionaries({"content": st.text(max_size=20)},
                                            optional={"status": st.sampled_from(["pending", "done", "completed"]),
                                                      "id": JSON}), max_size=3),
    "protocol_version": st.sampled_from(["1.0", "1.9", "2.0", "x"]),
    "metadata": st.dictionaries(st.text(max_size=5), st.text(max_size=5) | st.integers(), max_size=3),
}


@st.composite
def schema_params(draw: st.DrawFn) -> bytes:
    """A known method with params built from its schema's field names: plausible or
    wrongly typed values, fields left out, unknown fields added."""
    method = draw(st.sampled_from(SAFE_METHODS))
    names = PARAM_NAMES[method]
    params: dict[str, Any] = {}
    for name in names:
        choice = draw(st.integers(0, 3))
        if choice == 0:
            continue  # missing
        params[name] = draw(PLAUSIBLE.get(name, JSON) if choice < 3 else JSON)
    if draw(st.integers(0, 9)) == 0:
        params[draw(st.text(min_size=1, max_size=10))] = draw(JSON)
    body: dict[str, Any] = {"jsonrpc": "2.0", "id": draw(st.integers(0, 2**31) | st.text(max_size=10)),
                            "method": method, "params": params}
    return json.dumps(body, ensure_ascii=draw(st.booleans())).encode()


@st.composite
def envelopes(draw: st.DrawFn) -> Any:
    """A request object with any member missing or of any type."""
    body: dict[str, Any] = {}
    members = {
        "jsonrpc": st.sampled_from(["2.0", "1.0", "", "2"]) | JSON,
        "id": IDS,
        "method": st.sampled_from([*SAFE_METHODS, "no/such", "", "daemon/status "]) | JSON,
        "params": st.just({}) | st.dictionaries(st.text(max_size=8), JSON, max_size=3) | JSON,
    }
    for name, strategy in members.items():
        if draw(st.integers(0, 4)):
            body[name] = draw(strategy)
    if draw(st.integers(0, 5)) == 0:
        body[draw(st.text(max_size=8))] = draw(JSON)
    return body if draw(st.integers(0, 9)) else draw(JSON)


def _dumps(draw: st.DrawFn, value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=draw(st.booleans())).encode()


@st.composite
def envelope_frames(draw: st.DrawFn) -> bytes:
    return _dumps(draw, draw(envelopes()))


@st.composite
def batch_frames(draw: st.DrawFn) -> bytes:
    items = draw(st.lists(envelopes() | schema_params().map(json.loads), max_size=8))
    return _dumps(draw, items)


INVALID_UTF8 = [b"\xff", b"\xc3\x28", b"\x80", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82"]


@st.composite
def byte_frames(draw: st.DrawFn) -> bytes:
    """Random bytes, truncated JSON, and valid frames with invalid UTF-8 spliced in."""
    kind = draw(st.integers(0, 2))
    if kind == 0:
        return draw(st.binary(max_size=300))
    good = draw(schema_params() | envelope_frames())
    if kind == 1:
        return good[: draw(st.integers(0, max(0, len(good) - 1)))]
    at = draw(st.integers(0, len(good)))
    return good[:at] + draw(st.sampled_from(INVALID_UTF8)) + good[at:]


@st.composite
def huge_or_deep_frames(draw: st.DrawFn) -> bytes:
    """Huge strings in params, ids and method names; deeply nested values anywhere."""
    if draw(st.booleans()):
        size = draw(st.sampled_from([201, 4_096, 100_000, 1_000_000, 4_000_000]))
        where = draw(st.sampled_from(["title", "text", "id", "method", "session_id", "metadata"]))
        blob = draw(st.sampled_from("xé€😀")) * size
        if where == "title":
            body = {"jsonrpc": "2.0", "id": 1, "method": "session/create", "params": {"title": blob}}
        elif where == "text":
            body = {"jsonrpc": "2.0", "id": 2, "method": "session/send",
                    "params": {"session_id": "01ARZ3NDEKTSV4RRFFQ69G5FAV", "text": blob}}
        elif where == "id":
            body = {"jsonrpc": "2.0", "id": blob, "method": "daemon/status"}
        elif where == "method":
            body = {"jsonrpc": "2.0", "id": 3, "method": blob}
        elif where == "session_id":
            body = {"jsonrpc": "2.0", "id": 4, "method": "session/get", "params": {"session_id": blob}}
        else:
            body = {"jsonrpc": "2.0", "id": 5, "method": "session/create", "params": {"metadata": {"k": blob}}}
        frame = json.dumps(body, ensure_ascii=False).encode()
        return frame if len(frame) <= MAX_FRAME_BYTES else frame[:MAX_FRAME_BYTES]
    depth = draw(st.sampled_from([64, 500, 1_000, 5_000, 50_000, 500_000]))
    opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
    nested = opener * depth + "1" + closer * depth
    where = draw(st.sampled_from(["top", "params", "id", "inside"]))
    if where == "top":
        text = nested
    elif where == "params":
        text = '{"jsonrpc":"2.0","id":7,"method":"session/create","params":' + nested + "}"
    elif where == "id":
        text = '{"jsonrpc":"2.0","id":' + nested + ',"method":"daemon/status"}'
    else:
        text = '{"jsonrpc":"2.0","id":8,"method":"session/create","params":{"metadata":' + nested + "}}"
    return text.encode()


KINDS = {
    "schema_params": schema_params(),
    "envelopes": envelope_frames(),
    "batches": batch_frames(),
    "bytes_and_utf8": byte_frames(),
    "huge_or_deep": huge_or_deep_frames(),
}


@pytest.mark.parametrize("kind", list(KINDS))
def test_generated_bad_frames_get_the_right_error_and_the_daemon_keeps_serving(
        kind: str, raw: Raw, daemon: DaemonProcess, sizes):
    examples = sizes.bad_frames_per_kind // (10 if kind == "huge_or_deep" else 1)

    @settings(max_examples=examples, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck))
    @given(KINDS[kind])
    def run(frame: bytes) -> None:
        exchange(raw, frame, kind)

    run()
    assert daemon.proc is not None and daemon.proc.poll() is None, "the daemon died"


def test_oversized_frames_close_only_that_connection_and_it_reconnects(
        daemon: DaemonProcess, zctx: zmq.Context, raw: Raw, sizes):
    for n in range(sizes.oversized_frames):
        big = Raw(zctx, daemon.paths.endpoint)
        monitor = big.sock.get_monitor_socket(zmq.EVENT_DISCONNECTED | zmq.EVENT_CONNECTED)
        monitor.setsockopt(zmq.RCVTIMEO, 10_000)
        try:
            assert "result" in big.call("daemon/status")  # connected
            over = n * 4096 + 1
            big.sock.send(b'{"jsonrpc":"2.0","id":1,"method":"daemon/status","pad":"'
                          + b"x" * (MAX_FRAME_BYTES + over) + b'"}')
            TALLY["oversized"] = TALLY.get("oversized", 0) + 1
            while recv_monitor_message(monitor)["event"] != zmq.EVENT_DISCONNECTED:
                pass
            assert "result" in raw.call("daemon/status")  # others are served meanwhile
            # A frame sent before the DEALER has reconnected may be lost with the old
            # connection (docs/protocol.md: give every request a timeout); after it, not.
            while recv_monitor_message(monitor)["event"] != zmq.EVENT_CONNECTED:
                pass
            again = big.call("daemon/status")
            assert "result" in again, again  # the same socket, reconnected
        finally:
            big.sock.disable_monitor()
            monitor.close(linger=0)
            big.close()
    assert daemon.proc is not None and daemon.proc.poll() is None


def test_zz_total_generated_frames(daemon: DaemonProcess, raw: Raw, sizes, figures):
    """Runs last in this module: the total, and one more well-formed request."""
    total = sum(TALLY.values())
    assert "result" in raw.call("session/create", {"title": "after all the junk"})
    if len(TALLY) == len(KINDS) + 1:  # the whole module ran
        # max_examples is a ceiling: Hypothesis stops a kind early once it has tried
        # every distinct frame that kind can make, so the bar is the total.
        assert total >= 10_000, dict(TALLY)
    figures["bad_input"] = {"frames": total, "by_kind": dict(TALLY), "daemon_deaths": 0,
                            "internal_errors": 0, "probes_after_each_frame_ok": total}
