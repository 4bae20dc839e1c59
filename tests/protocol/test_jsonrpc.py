"""The sans-IO JSON-RPC framing: what parse_frame makes of any frame, how params are
checked, and that every type the table names survives encode -> decode."""

from __future__ import annotations

import json

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from duologue.protocol.errors import ErrorCode, RpcError
from duologue.protocol.jsonrpc import (
    Call,
    Frame,
    Incoming,
    Invalid,
    Response,
    decode_notification,
    decode_params,
    decode_result,
    encode_batch,
    encode_error,
    encode_event,
    encode_notification,
    encode_request,
    encode_result,
    parse_frame,
    parse_replies,
)
from duologue.protocol.methods import (
    METHODS,
    NOTIFICATIONS,
    SendParams,
    SessionDeleted,
    StatusResult,
    TaskInput,
    TasksUpdateParams,
)

FRAMING_CODES = {ErrorCode.PARSE_ERROR, ErrorCode.INVALID_REQUEST}


def frame_of(value) -> bytes:
    return json.dumps(value).encode()


def only_item(frame: Frame) -> Call | Invalid:
    assert not frame.batch
    assert len(frame.items) == 1
    return frame.items[0]


def only_error(data: bytes) -> Invalid:
    item = only_item(parse_frame(data))
    assert isinstance(item, Invalid), item
    return item


def call_of(method: str, params) -> Call:
    item = only_item(parse_frame(frame_of(
        {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    )))
    assert isinstance(item, Call), item
    return item


def params_error(method: str, params) -> RpcError:
    with pytest.raises(RpcError) as caught:
        decode_params(call_of(method, params))
    return caught.value


# --- parse errors ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"{",
        b'{"jsonrpc": "2.0", "method": "daemon/status",',
        b"not json",
        b"",
        b"   \n",
        b'{"jsonrpc":"2.0","id":1,"method":"daemon/status"} trailing',
        b'[{"jsonrpc":"2.0","id":1,"method":"daemon/status"},',
    ],
    ids=["open-brace", "truncated", "bare-word", "empty", "whitespace", "trailing", "open-batch"],
)
def test_malformed_json_is_one_parse_error_without_id(data):
    item = only_error(data)
    assert item.error.code == ErrorCode.PARSE_ERROR
    assert item.id is None
    assert item.error.message.startswith("not valid JSON")


@pytest.mark.parametrize(
    "data",
    [b"\xff\xfe", b'{"jsonrpc":"2.0","id":1,"method":"\xff"}'],
    ids=["leading-byte", "inside-string"],
)
def test_invalid_utf8_is_a_parse_error(data):
    assert only_error(data).error.code == ErrorCode.PARSE_ERROR


@pytest.mark.parametrize(
    "data",
    [
        b"[" * 10_000,
        b'{"jsonrpc":"2.0","id":1,"method":"daemon/status","params":{"a":'
        + b"[" * 10_000 + b"]" * 10_000 + b"}}",
        b'{"jsonrpc":"2.0","id":1,"method":"daemon/status","extra":'
        + b"[" * 10_000 + b"]" * 10_000 + b"}",
    ],
    ids=["unclosed-arrays", "deep-params", "deep-unknown-member"],
)
def test_deeply_nested_frame_is_an_error_not_an_exception(data):
    item = only_error(data)
    assert item.error.code in FRAMING_CODES


# --- invalid envelopes -----------------------------------------------------------------


def test_missing_jsonrpc_member_is_invalid_request_keeping_the_id():
    item = only_error(frame_of({"id": 7, "method": "daemon/status"}))
    assert item.error.code == ErrorCode.INVALID_REQUEST
    assert item.id == 7
    assert "jsonrpc" in item.error.message


@pytest.mark.parametrize("version", ["1.0", "2", "2.0 ", ""])
def test_wrong_jsonrpc_version_is_invalid_request_keeping_the_id(version):
    item = only_error(frame_of({"jsonrpc": version, "id": "a", "method": "daemon/status"}))
    assert item.error.code == ErrorCode.INVALID_REQUEST
    assert item.id == "a"
    assert repr(version) in item.error.message


def test_non_string_jsonrpc_member_is_invalid_request():
    item = only_error(frame_of({"jsonrpc": 2.0, "id": 3, "method": "daemon/status"}))
    assert item.error.code == ErrorCode.INVALID_REQUEST
    assert item.id == 3


def test_null_id_is_refused_and_answered_with_null_id():
    item = only_error(frame_of({"jsonrpc": "2.0", "id": None, "method": "daemon/status"}))
    assert item.error.code == ErrorCode.INVALID_REQUEST
    assert item.id is None
    assert "null" in item.error.message


@pytest.mark.parametrize("bad_id", [1.5, True, [1], {"a": 1}])
def test_id_of_another_type_is_invalid_request_with_null_id(bad_id):
    item = only_error(frame_of({"jsonrpc": "2.0", "id": bad_id, "method": "daemon/status"}))
    assert item.error.code == ErrorCode.INVALID_REQUEST
    assert item.id is None


@pytest.mark.parametrize("params", ["text", 3, None, True])
def test_params_that_are_not_structured_are_invalid_request(params):
    item = only_error(frame_of(
        {"jsonrpc": "2.0", "id": 9, "method": "daemon/status", "params": params}
    ))
    assert item.error.code == ErrorCode.INVALID_REQUEST
    assert item.id == 9
    assert '"params"' in item.error.message


@pytest.mark.parametrize("method", [None, 5, ["session/get"]])
def test_missing_or_non_string_method_is_invalid_request_keeping_the_id(method):
    envelope = {"jsonrpc": "2.0", "id": 4}
    if method is not None:
        envelope["method"] = method
    item = only_error(frame_of(envelope))
    assert item.error.code == ErrorCode.INVALID_REQUEST
    assert item.id == 4


@pytest.mark.parametrize("value", [1, "request", None, True, 2.5])
def test_json_that_is_not_an_object_or_array_is_invalid_request(value):
    item = only_error(frame_of(value))
    assert item.error.code == ErrorCode.INVALID_REQUEST
    assert item.id is None


def test_unknown_envelope_members_are_tolerated():
    item = only_item(parse_frame(frame_of({
        "jsonrpc": "2.0", "id": 1, "method": "daemon/status", "params": {},
        "trace": {"span": "abc"}, "x-client": "nvim",
    })))
    assert item == Call(1, "daemon/status", item.params)
    assert isinstance(decode_params(item), msgspec.Struct)


def test_leading_whitespace_before_a_frame_is_ignored():
    item = only_item(parse_frame(b' \n\t{"jsonrpc":"2.0","id":1,"method":"daemon/status"}'))
    assert isinstance(item, Call)


# --- requests and notifications --------------------------------------------------------


def test_request_with_id_is_a_call_that_expects_a_response():
    item = call_of("session/get", {"session_id": "s1"})
    assert item.id == 1
    assert item.method == "session/get"
    assert not item.is_notification


def test_string_ids_are_kept_verbatim():
    item = only_item(parse_frame(frame_of(
        {"jsonrpc": "2.0", "id": "req-01", "method": "daemon/status"}
    )))
    assert item.id == "req-01"


def test_request_without_id_is_a_notification():
    item = only_item(parse_frame(frame_of(
        {"jsonrpc": "2.0", "method": "session/detach", "params": {"session_id": "s1"}}
    )))
    assert isinstance(item, Call)
    assert item.id is None
    assert item.is_notification


def test_omitted_params_decode_as_an_empty_object():
    item = only_item(parse_frame(frame_of({"jsonrpc": "2.0", "id": 1, "method": "daemon/status"})))
    assert bytes(item.params) == b"{}"
    assert decode_params(item) == METHODS["daemon/status"].params()


# --- batches ---------------------------------------------------------------------------


def test_empty_batch_is_one_invalid_request_not_a_batch():
    frame = parse_frame(b"[]")
    item = only_item(frame)
    assert isinstance(item, Invalid)
    assert item.error.code == ErrorCode.INVALID_REQUEST
    assert item.id is None


def test_empty_batch_with_whitespace_is_still_one_invalid_request():
    assert only_error(b" [ ] ").error.code == ErrorCode.INVALID_REQUEST


def test_batch_keeps_order_and_answers_each_invalid_item_separately():
    frame = parse_frame(frame_of([
        {"jsonrpc": "2.0", "id": 1, "method": "daemon/status"},
        {"jsonrpc": "1.0", "id": 2, "method": "daemon/status"},
        {"jsonrpc": "2.0", "method": "session/detach", "params": {"session_id": "s"}},
        42,
        {"jsonrpc": "2.0", "id": "four", "method": "no/such"},
        {"jsonrpc": "2.0", "id": 5, "method": "daemon/status", "params": "x"},
    ]))
    assert frame.batch
    kinds = [type(item).__name__ for item in frame.items]
    assert kinds == ["Call", "Invalid", "Call", "Invalid", "Call", "Invalid"]
    assert [item.id for item in frame.items] == [1, 2, None, None, "four", 5]
    assert all(item.error.code == ErrorCode.INVALID_REQUEST
               for item in frame.items if isinstance(item, Invalid))


def test_batch_of_one_is_still_a_batch():
    frame = parse_frame(frame_of([{"jsonrpc": "2.0", "id": 1, "method": "daemon/status"}]))
    assert frame.batch
    assert len(frame.items) == 1


def test_nested_batch_is_invalid_request_per_item():
    frame = parse_frame(frame_of([[{"jsonrpc": "2.0", "id": 1, "method": "daemon/status"}]]))
    assert frame.batch
    assert [item.error.code for item in frame.items] == [ErrorCode.INVALID_REQUEST]


def test_encode_batch_makes_one_json_array_of_the_responses():
    parts = [encode_result(1, {"ok": True}),
             encode_error(2, RpcError(ErrorCode.METHOD_NOT_FOUND, "no"))]
    assert json.loads(encode_batch(parts)) == [
        {"jsonrpc": "2.0", "id": 1, "result": {"ok": True}},
        {"jsonrpc": "2.0", "id": 2, "error": {"code": -32601, "message": "no"}},
    ]


# --- method and params -----------------------------------------------------------------


def test_unknown_method_is_method_not_found_naming_it():
    error = params_error("session/explode", {})
    assert error.code == ErrorCode.METHOD_NOT_FOUND
    assert error.data == {"method": "session/explode"}
    assert "session/explode" in error.message


@pytest.mark.parametrize(
    ("method", "params", "path"),
    [
        ("session/send", {"session_id": 5, "text": "hi"}, "$.session_id"),
        ("session/send", {"session_id": "", "text": "hi"}, "$.session_id"),
        ("session/list", {"limit": 0}, "$.limit"),
        ("session/get", {"session_id": "s", "since_seq": -1}, "$.since_seq"),
        ("tasks/update", {"session_id": "s", "tasks": [{"content": "ok"}, {"content": ""}]},
         "$.tasks[1].content"),
        ("tasks/update", {"session_id": "s", "tasks": [{"content": "a", "status": "done"}]},
         "$.tasks[0].status"),
        ("session/send",
         {"session_id": "s", "text": "t", "context": [{"path": "a.py", "text": "x",
                                                        "range": {"start": "1", "end": 2}}]},
         "$.context[0].range.start"),
    ],
    ids=["wrong-type", "too-short", "below-minimum", "negative-seq", "nested-list",
         "bad-literal", "deep-struct"],
)
def test_invalid_params_error_says_where_in_data_path(method, params, path):
    error = params_error(method, params)
    assert error.code == ErrorCode.INVALID_PARAMS
    assert error.data == {"path": path}
    assert method in error.message


def test_missing_required_param_is_invalid_params_at_the_root():
    error = params_error("session/send", {"session_id": "s"})
    assert error.code == ErrorCode.INVALID_PARAMS
    assert error.data == {"path": "$"}
    assert "`text`" in error.message


def test_unknown_params_field_is_refused_by_name():
    error = params_error("session/create", {"title": "t", "modle": "claude"})
    assert error.code == ErrorCode.INVALID_PARAMS
    assert "modle" in error.message


def test_unknown_field_in_nested_params_is_refused():
    error = params_error("tasks/update",
                         {"session_id": "s", "tasks": [{"content": "a", "state": "x"}]})
    assert error.code == ErrorCode.INVALID_PARAMS
    assert error.data == {"path": "$.tasks[0].state"}


def test_params_by_position_are_invalid_params():
    error = params_error("session/get", ["s1"])
    assert error.code == ErrorCode.INVALID_PARAMS
    assert "by name" in error.message


def test_valid_params_decode_to_the_methods_struct():
    params = decode_params(call_of("session/send", {
        "session_id": "s1", "text": "hello",
        "context": [{"type": "code_context", "path": "a.py", "text": "x = 1"}],
    }))
    assert isinstance(params, SendParams)
    assert params.context[0].path == "a.py"
    assert params.pin is False


def test_task_list_longer_than_the_limit_is_invalid_params():
    tasks = [{"content": f"t{i}"} for i in range(501)]
    error = params_error("tasks/update", {"session_id": "s", "tasks": tasks})
    assert error.code == ErrorCode.INVALID_PARAMS
    assert error.data == {"path": "$.tasks"}
    assert decode_params(call_of("tasks/update", {"session_id": "s", "tasks": tasks[:500]}))


# --- daemon-side encoding --------------------------------------------------------------


def test_error_with_data_encodes_every_member():
    data = encode_error("x", RpcError(ErrorCode.UNKNOWN_SESSION, "no session", {"session_id": "s"}))
    assert json.loads(data) == {
        "jsonrpc": "2.0", "id": "x",
        "error": {"code": -32001, "message": "no session", "data": {"session_id": "s"}},
    }


def test_error_without_id_encodes_a_null_id_and_no_data():
    data = encode_error(None, RpcError(ErrorCode.PARSE_ERROR, "not valid JSON"))
    assert json.loads(data) == {
        "jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "not valid JSON"},
    }


def test_event_is_sent_as_the_notification_of_its_type():
    data = encode_event(SessionDeleted(session_id="s1", seq=12))
    assert json.loads(data) == {
        "jsonrpc": "2.0", "method": "session/deleted", "params": {"session_id": "s1", "seq": 12},
    }


# --- client side: parse_replies --------------------------------------------------------


def test_client_reads_a_result_as_a_response_with_raw_result():
    (reply,) = parse_replies(b'{"jsonrpc":"2.0","id":3,"result":{"deleted":true}}')
    assert isinstance(reply, Response)
    assert reply.id == 3
    assert reply.error is None
    assert decode_result("session/delete", reply.result).deleted is True


def test_client_reads_an_error_as_rpc_error_with_code_and_data():
    (reply,) = parse_replies(
        b'{"jsonrpc":"2.0","id":"r1","error":{"code":-32602,"message":"bad",'
        b'"data":{"path":"$.limit"}}}'
    )
    assert reply.id == "r1"
    assert reply.result is None
    assert (reply.error.code, reply.error.message, reply.error.data) == (-32602, "bad",
                                                                         {"path": "$.limit"})
    assert reply.error.code_name == "invalid_params"


def test_client_reads_an_error_with_null_id():
    (reply,) = parse_replies(b'{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"x"}}')
    assert reply.id is None
    assert reply.error.code == ErrorCode.PARSE_ERROR
    assert reply.error.data is None


def test_client_reads_a_null_result_as_raw_null():
    (reply,) = parse_replies(b'{"jsonrpc":"2.0","id":1,"result":null}')
    assert bytes(reply.result) == b"null"


def test_client_reads_a_notification_as_incoming_and_decodes_its_params():
    (reply,) = parse_replies(
        b'{"jsonrpc":"2.0","method":"message/delta",'
        b'"params":{"session_id":"s","seq":4,"message_id":"m","text":"Hel"}}'
    )
    assert isinstance(reply, Incoming)
    assert reply.method == "message/delta"
    event = decode_notification(reply)
    assert (event.session_id, event.seq, event.message_id, event.text) == ("s", 4, "m", "Hel")


def test_client_ignores_a_notification_it_does_not_know():
    (reply,) = parse_replies(b'{"jsonrpc":"2.0","method":"future/thing","params":{"a":1}}')
    assert decode_notification(reply) is None


def test_client_tolerates_unknown_fields_in_results_and_notifications():
    (result,) = parse_replies(b'{"jsonrpc":"2.0","id":1,"result":{"deleted":false,"new":1}}')
    assert decode_result("session/delete", result.result).deleted is False
    (note,) = parse_replies(
        b'{"jsonrpc":"2.0","method":"session/renamed",'
        b'"params":{"session_id":"s","seq":2,"title":"t","by":"nvim"}}'
    )
    assert decode_notification(note).title == "t"


def test_client_reads_a_batch_reply_in_order():
    replies = parse_replies(encode_batch([
        encode_result(1, {"deleted": True}),
        encode_error(2, RpcError(ErrorCode.UNKNOWN_SESSION, "gone")),
        encode_notification("session/renamed", {"session_id": "s", "seq": 1, "title": "x"}),
    ]))
    assert [type(r).__name__ for r in replies] == ["Response", "Response", "Incoming"]
    assert replies[0].id == 1 and replies[0].error is None
    assert replies[1].id == 2 and replies[1].error.code == ErrorCode.UNKNOWN_SESSION


# --- round trips for every type of the table ------------------------------------------


@pytest.mark.parametrize("full", [False, True], ids=["required-only", "every-field"])
@pytest.mark.parametrize("name", list(METHODS))
def test_every_result_type_survives_encode_and_client_decode(name, full, make_example):
    result = make_example(METHODS[name].result, full=full)
    (reply,) = parse_replies(encode_result(17, result))
    assert reply.id == 17 and reply.error is None
    assert decode_result(name, reply.result) == result


@pytest.mark.parametrize("full", [False, True], ids=["required-only", "every-field"])
@pytest.mark.parametrize("name", list(METHODS))
def test_every_params_type_survives_client_encode_and_daemon_decode(name, full, make_example):
    params = make_example(METHODS[name].params, full=full)
    item = only_item(parse_frame(encode_request("id-1", name, params)))
    assert item == Call("id-1", name, item.params)
    assert decode_params(item) == params


@pytest.mark.parametrize("full", [False, True], ids=["required-only", "every-field"])
@pytest.mark.parametrize("name", list(NOTIFICATIONS))
def test_every_notification_survives_encode_event_and_client_decode(name, full, make_example):
    event = make_example(NOTIFICATIONS[name].params, full=full)
    (reply,) = parse_replies(encode_event(event))
    assert reply == Incoming(name, reply.params)
    assert decode_notification(reply) == event


def test_defaults_are_omitted_on_the_wire_and_restored_on_decode(make_example):
    status = make_example(StatusResult, full=False)
    wire = json.loads(encode_result(1, status))["result"]
    assert "providers" not in wire and "running_turns" not in wire
    (reply,) = parse_replies(encode_result(1, status))
    assert decode_result("daemon/status", reply.result).providers == []


@pytest.mark.parametrize("name", list(METHODS))
def test_every_params_type_refuses_unknown_fields(name, make_example):
    wire = json.loads(msgspec.json.encode(make_example(METHODS[name].params, full=False)))
    wire["no_such_field"] = 1
    error = params_error(name, wire)
    assert error.code == ErrorCode.INVALID_PARAMS
    assert "no_such_field" in error.message


def test_task_update_round_trip_keeps_task_order():
    params = TasksUpdateParams(session_id="s", tasks=[
        TaskInput(content="first", status="in_progress", active_form="Doing first"),
        TaskInput(content="second", status="completed", id="t2"),
    ])
    item = only_item(parse_frame(encode_request(1, "tasks/update", params)))
    assert decode_params(item) == params


# --- property: no frame makes parse_frame raise ----------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)

ENVELOPE = st.fixed_dictionaries(
    {},
    optional={
        "jsonrpc": st.sampled_from(["2.0", "1.0", ""]) | JSON,
        "id": st.integers() | st.text() | JSON,
        "method": st.sampled_from([*METHODS, "no/such"]) | JSON,
        "params": st.dictionaries(st.text(), JSON, max_size=3) | JSON,
        "extra": JSON,
    },
)


def assert_well_formed(frame: Frame) -> None:
    assert isinstance(frame, Frame)
    assert frame.items
    if not frame.batch:
        assert len(frame.items) == 1
    for item in frame.items:
        assert isinstance(item, (Call, Invalid))
        assert item.id is None or (isinstance(item.id, (int, str)) and not isinstance(item.id, bool))
        if isinstance(item, Invalid):
            assert item.error.code in FRAMING_CODES
            assert item.error.message
        else:
            assert isinstance(item.method, str)
            assert bytes(item.params)[:1] in (b"{", b"[")


PROPERTY = settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(st.binary(max_size=512))
def test_arbitrary_bytes_never_make_parse_frame_raise(data):
    assert_well_formed(parse_frame(data))


@PROPERTY
@given(JSON)
def test_arbitrary_json_never_makes_parse_frame_raise(value):
    assert_well_formed(parse_frame(json.dumps(value).encode()))


@PROPERTY
@given(ENVELOPE | st.lists(ENVELOPE | JSON, max_size=5))
def test_envelope_like_frames_and_batches_yield_calls_or_standard_errors(value):
    frame = parse_frame(json.dumps(value).encode())
    assert_well_formed(frame)
    if isinstance(value, list):
        assert frame.batch == bool(value)
        assert len(frame.items) == max(len(value), 1)


@PROPERTY
@given(ENVELOPE)
def test_decode_params_of_any_call_returns_a_struct_or_raises_rpc_error(value):
    for item in parse_frame(json.dumps(value).encode()).items:
        if isinstance(item, Call):
            try:
                decoded = decode_params(item)
            except RpcError as error:
                assert error.code in {ErrorCode.METHOD_NOT_FOUND, ErrorCode.INVALID_PARAMS}
            else:
                assert isinstance(decoded, METHODS[item.method].params)
