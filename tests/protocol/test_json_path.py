"""``data.path`` of INVALID_PARAMS is a JSONPath that names the member at fault.

msgspec alone says ``$`` for a misspelt top-level field and ``$.metadata[...]`` for a
bad map value; neither tells a client which member to fix, and ``[...]`` is not
JSONPath at all. These tests pin what protocol/json_path.py adds.
"""

from __future__ import annotations

import json

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from duologue.protocol.errors import ErrorCode, RpcError
from duologue.protocol.json_path import MapKey, render
from duologue.protocol.jsonrpc import Call, decode_params


def refused(method: str, params: object) -> RpcError:
    with pytest.raises(RpcError) as caught:
        decode_params(Call(1, method, msgspec.Raw(json.dumps(params).encode())))
    assert caught.value.code == ErrorCode.INVALID_PARAMS
    return caught.value


def test_a_misspelt_top_level_field_is_named_by_its_path():
    error = refused("session/create", {"title": "t", "modle": "sonnet"})
    assert error.data == {"path": "$.modle"}
    assert "`modle`" in error.message


def test_a_map_value_of_the_wrong_type_names_its_key():
    error = refused("session/create", {"metadata": {"editor": "nvim", "width": 80, "theme": "dark"}})
    assert error.data == {"path": "$.metadata['width']"}
    assert "$.metadata['width']" in error.message and "[...]" not in error.message


def test_a_map_inside_a_list_inside_params_is_named_all_the_way_down():
    session = {"external_id": "e", "sources": ["duologue"], "title": "t",
               "created_at": "2024-01-01T00:00:00Z", "metadata": {"ok": "yes", "bad": None}, "messages": []}
    error = refused("import/run", {"sessions": [session, session]})
    assert error.data == {"path": "$.sessions[0].metadata['bad']"}


def test_a_key_that_is_not_an_identifier_is_quoted_and_escaped():
    error = refused("session/create", {"metadata": {"it's a \\ key\n": 1}})
    assert error.data == {"path": "$.metadata['it\\'s a \\\\ key\\n']"}


def test_a_key_given_twice_falls_back_to_a_wildcard_not_to_a_wrong_key():
    raw = b'{"metadata": {"a": 1, "a": "fine", "b": "fine"}}'
    with pytest.raises(RpcError) as caught:
        decode_params(Call(1, "session/create", msgspec.Raw(raw)))
    assert caught.value.data == {"path": "$.metadata[*]"}


def test_a_missing_required_field_stays_at_the_object_that_lacks_it():
    assert refused("session/send", {"session_id": "s"}).data == {"path": "$"}


@given(keys=st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=40, unique=True),
       data=st.data())
def test_the_failing_key_is_found_wherever_it_sits_in_a_map(keys, data):
    bad = data.draw(st.sampled_from(keys))
    metadata = {k: (7 if k == bad else "ok") for k in keys}
    error = refused("session/create", {"metadata": metadata})
    assert error.data == {"path": render(["metadata", MapKey(bad)])}


def test_render_writes_fields_indexes_and_keys_as_rfc_9535_does():
    assert render([]) == "$"
    assert render(["tasks", 3, "status"]) == "$.tasks[3].status"
    assert render(["metadata", MapKey("editor")]) == "$.metadata['editor']"
    assert render(["a-b"]) == "$['a-b']"
