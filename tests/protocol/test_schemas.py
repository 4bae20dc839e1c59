"""schemas/ is generated from the protocol, committed, and usable by a standard
JSON Schema 2020-12 validator: these tests fail when it drifts or stops being so."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import msgspec
import pytest

from duologue.protocol.entities import (
    CodeContextBlock,
    LineRange,
    Message,
    Session,
    TextBlock,
    ToolCallBlock,
    ToolResultBlock,
)
from duologue.protocol.errors import ErrorCode, RpcError
from duologue.protocol.jsonrpc import encode_error, encode_event, encode_request, encode_result
from duologue.protocol.methods import METHODS, NOTIFICATIONS, PROTOCOL_VERSION
from duologue.protocol.schema import INDEX, SCHEMA_BASE, SCHEMA_DIALECT, schema_files, schema_id

WHEN = datetime(2025, 3, 4, 5, 6, 7, tzinfo=timezone.utc)

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "schemas"
GENERATOR = SCHEMAS / "generate.py"
REGENERATE = ".venv/bin/python schemas/generate.py"


def load_generator():
    spec = importlib.util.spec_from_file_location("duologue_schemas_generate", GENERATOR)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


generator = load_generator()


@pytest.fixture(scope="module")
def generated() -> dict[str, str]:
    return generator.generated_files()


def committed() -> dict[str, Any]:
    return {p.name: json.loads(p.read_text(encoding="utf-8")) for p in SCHEMAS.glob("*.json")}


# --- staleness and shape ---------------------------------------------------------------


def test_committed_schemas_match_the_protocol(generated):
    diff = generator.differences(SCHEMAS, generated)
    lines = [f"  {kind}: schemas/{name}" for kind, names in diff.items() for name in names]
    assert not lines, (
        "schemas/ is out of date with protocol/:\n" + "\n".join(lines)
        + f"\nregenerate with: {REGENERATE}"
    )


def test_generator_check_mode_passes_on_the_committed_schemas():
    run = subprocess.run([sys.executable, str(GENERATOR), "--check"],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stdout + run.stderr


def test_generation_is_deterministic_sorted_and_newline_terminated(generated):
    assert generator.generated_files() == generated
    for name, text in generated.items():
        assert text.endswith("}\n") and not text.endswith("\n\n"), name
        assert json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False) + "\n" == text


def test_differences_reports_stale_missing_and_extra_files(tmp_path, generated):
    generator.write(tmp_path, generated)
    (tmp_path / "Session.json").write_text("{}\n")
    (tmp_path / "Message.json").unlink()
    (tmp_path / "Obsolete.json").write_text("{}\n")
    (tmp_path / "notes.txt").write_text("not generated, left alone\n")
    assert generator.differences(tmp_path, generated) == {
        "stale": ["Session.json"], "missing": ["Message.json"], "extra": ["Obsolete.json"],
    }
    generator.write(tmp_path, generated)
    assert generator.differences(tmp_path, generated) == {"stale": [], "missing": [], "extra": []}
    assert (tmp_path / "notes.txt").exists()


def test_check_mode_exits_1_and_names_the_command(tmp_path, monkeypatch, capsys, generated):
    generator.write(tmp_path, generated)
    (tmp_path / "Session.json").unlink()
    monkeypatch.setattr(generator, "SCHEMAS_DIR", tmp_path)
    assert generator.main(["--check"]) == 1
    out = capsys.readouterr()
    assert "missing: schemas/Session.json" in out.out
    assert REGENERATE in out.err


def test_every_schema_declares_2020_12_and_an_id_named_after_its_file(generated):
    for name, text in generated.items():
        if name == INDEX:
            continue
        doc = json.loads(text)
        assert doc["$schema"] == SCHEMA_DIALECT, name
        assert doc["$id"] == SCHEMA_BASE + name == schema_id(name)


def test_index_lists_every_method_notification_and_error_code(generated):
    index = json.loads(generated[INDEX])
    assert index["protocol_version"] == PROTOCOL_VERSION
    assert [m["name"] for m in index["methods"]] == list(METHODS)
    assert [n["name"] for n in index["notifications"]] == list(NOTIFICATIONS)
    assert [(e["name"], e["code"]) for e in index["errors"]] == [(c.name, int(c)) for c in ErrorCode]
    for entry in index["methods"]:
        method = METHODS[entry["name"]]
        assert entry["doc"] == method.doc
        assert {entry["params"], entry["result"]} <= generated.keys()
    for entry in index["notifications"]:
        note = NOTIFICATIONS[entry["name"]]
        assert (entry["doc"], entry["stored"]) == (note.doc, note.stored)
        assert entry["params"] in generated
    assert all(e["doc"] and "``" not in e["doc"] for e in index["errors"])
    assert set(index["envelopes"].values()) <= generated.keys()


def test_schema_files_refuses_an_undocumented_error_code():
    docs = generator.error_docs()
    docs.pop(ErrorCode.QUEUE_FULL)
    with pytest.raises(ValueError, match="QUEUE_FULL"):
        schema_files(error_docs=docs)


def test_field_docstrings_become_property_descriptions():
    attach = json.loads((SCHEMAS / "AttachParams.json").read_text())
    assert "Replay every event" in attach["properties"]["since_seq"]["description"]


# --- validation with a standard validator ----------------------------------------------

@pytest.fixture(scope="module")
def js() -> SimpleNamespace:
    """The jsonschema library (a test extra). Only the tests that validate need it;
    the staleness tests above run without it."""
    # referencing is what jsonschema >= 4.18 resolves $ref with.
    pytest.importorskip("referencing", reason="pip install 'jsonschema>=4.18' (test extra)")
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    return SimpleNamespace(Validator=Draft202012Validator, Registry=Registry,
                           Resource=Resource, DRAFT202012=DRAFT202012)


@pytest.fixture(scope="module")
def registry(js):
    """Every committed schema, keyed by its $id: how a client loads schemas/."""
    docs = committed()
    docs.pop(INDEX)
    return js.Registry().with_resources(
        (doc["$id"], js.Resource.from_contents(doc, default_specification=js.DRAFT202012))
        for doc in docs.values()
    )


@pytest.fixture(scope="module")
def validator(js, registry):
    cache = {}

    def get(file_name: str):
        if file_name not in cache:
            cache[file_name] = js.Validator({"$ref": schema_id(file_name)}, registry=registry)
        return cache[file_name]

    return get


def errors_of(validator, file_name: str, instance: Any) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}"
            for e in validator(file_name).iter_errors(instance)]


def test_every_schema_is_valid_against_the_2020_12_metaschema(js):
    for name, doc in committed().items():
        if name != INDEX:
            js.Validator.check_schema(doc)


def test_every_ref_resolves_across_files(registry):
    unresolved = []

    def walk(node: Any, base: str) -> None:
        if isinstance(node, dict):
            if "$ref" in node:
                try:
                    registry.resolver(base_uri=base).lookup(node["$ref"])
                except Exception as exc:  # noqa: BLE001 - reported below
                    unresolved.append(f"{base} -> {node['$ref']}: {exc}")
            for value in node.values():
                walk(value, base)
        elif isinstance(node, list):
            for value in node:
                walk(value, base)

    refs = 0
    for name, doc in committed().items():
        if name != INDEX:
            walk(doc, doc["$id"])
            refs += json.dumps(doc).count('"$ref"')
    assert refs > 20
    assert not unresolved, "\n".join(unresolved)


def test_refs_resolve_from_a_directory_through_a_retriever(js):
    """The other way to load schemas/: map the $id base to the directory on disk."""

    def retrieve(uri: str):
        assert uri.startswith(SCHEMA_BASE), uri
        path = SCHEMAS / uri.removeprefix(SCHEMA_BASE)
        return js.Resource.from_contents(json.loads(path.read_text()), js.DRAFT202012)

    check = js.Validator({"$ref": schema_id("Message.json")},
                         registry=js.Registry(retrieve=retrieve))
    message = msgspec.to_builtins(MESSAGE)
    assert check.is_valid(message)
    message["content"][1]["range"]["end"] = "ten"
    assert not check.is_valid(message)


SESSION_JSON = {
    "id": "01JDUOLOGUE0000000000000000",
    "title": "Design question",
    "created_at": "2025-03-04T05:06:07Z",
    "updated_at": "2025-03-04T05:16:07Z",
    "model": "auto",
    "current_model": "claude-sonnet-4-5",
    "project_id": "/home/me/src/app",
    "metadata": {"editor": "nvim"},
    "last_seq": 12,
    "message_count": 4,
}

MESSAGE = Message(
    id="m1", session_id="s1", seq=3, role="assistant", created_at=WHEN, model="gemini-2.5-pro",
    content=[
        TextBlock(text="Here is the change:"),
        CodeContextBlock(path="src/app.py", text="x = 1\n", language="python",
                         range=LineRange(start=10, end=11)),
        ToolCallBlock(id="call-1", name="update_tasks",
                      input={"tasks": [{"content": "refactor", "status": "in_progress"}]}),
        ToolResultBlock(call_id="call-1", name="update_tasks", content="ok"),
    ],
)


def test_a_session_document_validates(validator):
    assert errors_of(validator, "Session.json", SESSION_JSON) == []
    assert msgspec.convert(SESSION_JSON, Session).title == "Design question"


def test_a_session_with_fields_from_a_newer_daemon_still_validates(validator):
    assert errors_of(validator, "Session.json", {**SESSION_JSON, "pinned_count": 2}) == []


def test_a_session_missing_a_required_field_is_refused(validator):
    broken = {k: v for k, v in SESSION_JSON.items() if k != "current_model"}
    assert errors_of(validator, "Session.json", broken)


def test_a_message_with_every_content_block_type_validates(validator):
    wire = msgspec.to_builtins(MESSAGE)
    assert [b["type"] for b in wire["content"]] == ["text", "code_context", "tool_call",
                                                    "tool_result"]
    assert errors_of(validator, "Message.json", wire) == []


@pytest.mark.parametrize(
    ("block", "why"),
    [
        ({"type": "image", "data": "..."}, "unknown block type"),
        ({"type": "text"}, "text block without text"),
        ({"type": "tool_call", "id": "c", "name": "n", "input": []}, "input not an object"),
        ({"type": "code_context", "path": "a", "text": "b", "range": {"start": 1, "end": "2"}},
         "range in LineRange.json, two refs away, is checked"),
    ],
)
def test_a_message_with_a_bad_content_block_is_refused(validator, block, why):
    wire = msgspec.to_builtins(MESSAGE)
    wire["content"].append(block)
    assert errors_of(validator, "Message.json", wire), why


def test_a_session_send_request_validates_with_its_params_type(validator):
    request = json.loads(encode_request(1, "session/send", {
        "session_id": "s1", "text": "explain this",
        "context": [{"type": "code_context", "path": "a.py", "text": "x = 1"}],
        "model": "auto",
    }))
    assert errors_of(validator, "Request.json", request) == []


@pytest.mark.parametrize(
    ("request_", "why"),
    [
        ({"jsonrpc": "2.0", "id": 1, "method": "session/create", "params": {"modle": "x"}},
         "unknown params field"),
        ({"jsonrpc": "2.0", "id": 1, "method": "session/explode", "params": {}},
         "unknown method"),
        ({"jsonrpc": "2.0", "id": 1, "method": "session/send"}, "required params missing"),
        ({"jsonrpc": "2.0", "id": 1, "method": "session/get", "params": ["s1"]},
         "params by position"),
        ({"jsonrpc": "2.0", "id": None, "method": "daemon/status"}, "null id"),
        ({"jsonrpc": "1.0", "id": 1, "method": "daemon/status"}, "wrong version"),
        ({"jsonrpc": "2.0", "id": 1, "method": "session/list", "params": {"limit": 0}},
         "limit below its minimum"),
        ({"jsonrpc": "2.0", "id": 1, "method": "tasks/update",
          "params": {"session_id": "s", "tasks": [{"content": "a", "status": "done"}]}},
         "task status outside the enum, inside a nested ref"),
    ],
)
def test_a_request_the_daemon_refuses_is_refused_by_the_schema(validator, request_, why):
    assert errors_of(validator, "Request.json", request_), why


def test_a_request_without_params_for_a_method_without_required_params_validates(validator):
    request = {"jsonrpc": "2.0", "id": "a", "method": "daemon/status", "x-trace": "t"}
    assert errors_of(validator, "Request.json", request) == []


@pytest.mark.parametrize("full", [False, True], ids=["required-only", "every-field"])
@pytest.mark.parametrize("name", list(METHODS))
def test_what_the_client_library_sends_matches_request_json(validator, make_example, name, full):
    request = json.loads(encode_request(5, name, make_example(METHODS[name].params, full=full)))
    assert errors_of(validator, "Request.json", request) == []


@pytest.mark.parametrize("full", [False, True], ids=["required-only", "every-field"])
@pytest.mark.parametrize("name", list(METHODS))
def test_what_the_daemon_answers_matches_the_result_schema(validator, make_example, name, full):
    index = json.loads((SCHEMAS / INDEX).read_text())
    result_file = next(m["result"] for m in index["methods"] if m["name"] == name)
    response = json.loads(encode_result(5, make_example(METHODS[name].result, full=full)))
    assert errors_of(validator, "Response.json", response) == []
    assert errors_of(validator, result_file, response["result"]) == []


@pytest.mark.parametrize("full", [False, True], ids=["required-only", "every-field"])
@pytest.mark.parametrize("name", list(NOTIFICATIONS))
def test_what_the_daemon_notifies_matches_notification_json(validator, make_example, name, full):
    note = json.loads(encode_event(make_example(NOTIFICATIONS[name].params, full=full)))
    assert note["method"] == name
    assert errors_of(validator, "Notification.json", note) == []


def test_a_notification_with_bad_params_for_its_method_is_refused(validator):
    note = {"jsonrpc": "2.0", "method": "message/delta", "params": {"session_id": "s", "seq": 1}}
    assert errors_of(validator, "Notification.json", note)


def test_an_unknown_notification_from_a_newer_daemon_is_accepted(validator):
    note = {"jsonrpc": "2.0", "method": "session/archived", "params": {"session_id": "s"}}
    assert errors_of(validator, "Notification.json", note) == []


def test_error_responses_match_response_json_and_result_plus_error_does_not(validator):
    error = json.loads(encode_error(None, RpcError(ErrorCode.INVALID_PARAMS, "bad",
                                                   {"path": "$.limit"})))
    assert errors_of(validator, "Response.json", error) == []
    assert errors_of(validator, "Response.json", {**error, "result": {}})
