"""`duologue export`: a session with replies from two models and a manual switch, written
by a real daemon (on its emulator), exported through the real CLI as Markdown and as
JSON, and the JSON imported back into a fresh home with `duologue import --from duologue`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest
from conversation_support import send_and_wait

from duologue.clients.rpc.client import AsyncClient
from duologue.clients.rpc.sync_client import Client
from duologue.protocol import methods as m
from duologue.protocol.schema import INDEX, schema_id
from support import DaemonProcess

SCRIPT = Path(sys.executable).with_name("duologue")
SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
UNKNOWN_SID = "01ARZ3NDEKTSV4RRFFQ69G5FAV"
SONNET, FLASH = "claude-sonnet-5-5", "gemini-3.8-flash"


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=60)


def ok(env: dict[str, str], *args: str) -> str:
    r = run(env, *args)
    assert r.returncode == 0, (args, r.returncode, r.stdout, r.stderr)
    return r.stdout


@pytest.fixture
async def talked(client: AsyncClient) -> m.GetResult:
    """A session: a reply by Sonnet, a manual switch to Flash with a reason, a reply by Flash."""
    s = await client.create_session(model="sonnet", title="two models")
    await client.attach(s.id, since_seq=s.last_seq)
    await send_and_wait(client, s.id, "first question")
    await client.switch_model(s.id, "flash", reason="long read")
    await send_and_wait(client, s.id, "second question")
    got = await client.get_session(s.id)
    assert [(x.role, x.model) for x in got.messages] == [
        ("user", None), ("assistant", SONNET), ("user", None), ("assistant", FLASH)]
    return got


def texts(got: m.GetResult | m.ExportDocument) -> list[tuple[str, str, str | None, Any]]:
    return [(x.role, x.text, x.model, x.created_at) for x in got.messages]


# --- Markdown -------------------------------------------------------------------------


async def test_markdown_labels_each_reply_with_its_model_and_marks_the_switch(daemon: DaemonProcess,
                                                                             talked: m.GetResult):
    sid = talked.session.id
    md = ok(daemon.env, "export", sid)

    assert md.startswith("# two models\n") and f"- **Session:** `{sid}`" in md
    first_q, first_reply, second_q, second_reply = talked.messages
    marks = [md.index("### You · "), md.index("first question"),
             md.index(f"### `{SONNET}` · "), md.index(first_reply.text),
             md.index(f"> **⇄ Model switch:** `{SONNET}` → `{FLASH}` (manual: long read)"),
             md.index("second question"),
             md.index(f"### `{FLASH}` · "), md.index(second_reply.text)]
    assert marks == sorted(marks), md  # each reply under its model, the switch between them
    assert md.count("Model switch") == len(talked.switches) == 1


async def test_markdown_goes_to_a_file_with_o_and_format_md_is_the_default(daemon: DaemonProcess,
                                                                         talked: m.GetResult,
                                                                         tmp_path: Path):
    sid = talked.session.id
    out = tmp_path / "session.md"

    said = ok(daemon.env, "export", sid, "--format", "md", "-o", str(out))

    assert said.strip() == f"wrote {out}"
    assert out.read_text(encoding="utf-8") == ok(daemon.env, "export", sid)
    # For scripts, --json says the same as JSON.
    assert json.loads(ok(daemon.env, "export", sid, "-o", str(out), "--json")) == {"wrote": str(out)}


# --- JSON -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def export_validator():
    pytest.importorskip("referencing", reason="pip install 'jsonschema>=4.18' (test extra)")
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    docs = [json.loads(p.read_text(encoding="utf-8")) for p in SCHEMAS.glob("*.json") if p.name != INDEX]
    registry = Registry().with_resources(
        (doc["$id"], Resource.from_contents(doc, default_specification=DRAFT202012)) for doc in docs)
    return Draft202012Validator({"$ref": schema_id("ExportDocument.json")}, registry=registry)


async def test_json_export_validates_against_its_schema_and_decodes_to_the_protocol_type(
        daemon: DaemonProcess, talked: m.GetResult, export_validator):
    sid = talked.session.id
    raw = ok(daemon.env, "export", sid, "--format", "json")

    value = json.loads(raw)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in export_validator.iter_errors(value)]
    assert errors == []
    value["messages"][1]["role"] = "robot"  # the schema does constrain the messages
    assert not export_validator.is_valid(value)
    doc = msgspec.json.decode(raw, type=m.ExportDocument)
    assert (doc.format, doc.version) == ("duologue-export", 1)
    assert doc.session == talked.session
    assert doc.messages == talked.messages and doc.switches == talked.switches
    assert [(w.kind, w.reason, w.to_model) for w in doc.switches] == [("manual", "long read", FLASH)]
    by_flag = msgspec.json.decode(ok(daemon.env, "export", sid, "--json"), type=m.ExportDocument)
    assert by_flag.messages == doc.messages  # --json is the same document


async def test_a_json_export_imports_into_a_fresh_home_once(daemon: DaemonProcess, talked: m.GetResult,
                                                            tmp_path: Path):
    exported = tmp_path / "export.json"
    ok(daemon.env, "export", talked.session.id, "--format", "json", "-o", str(exported))
    fresh = DaemonProcess(tmp_path / "fresh").start()
    try:
        first = json.loads(ok(fresh.env, "import", "--from", "duologue", str(exported), "--json"))
        again = json.loads(ok(fresh.env, "import", "--from", "duologue", str(exported), "--json"))
        with Client(fresh.paths, autostart=False, timeout=20.0) as c:
            (only,) = c.list_sessions().sessions
            got = c.get_session(only.id)
    finally:
        fresh.stop()

    assert (first["created_sessions"], first["created_messages"]) == (1, 4) and first["batch_id"]
    assert got.session.title == "two models"
    assert got.session.metadata["source_session"] == talked.session.id
    assert texts(got) == texts(talked)  # roles, texts, models and times, in order
    assert [w.to_model for w in got.switches] == [FLASH]  # recomputed from the reply models
    assert (again["created_sessions"], again["created_messages"], again["batch_id"]) == (0, 0, None)
    assert again["skipped_sessions"] == 1 and again["skipped_messages"] == 4


# --- failure --------------------------------------------------------------------------


def test_exporting_an_unknown_session_fails_in_one_line_and_writes_nothing(daemon: DaemonProcess,
                                                                          tmp_path: Path):
    out = tmp_path / "never.md"
    for args in ((), ("--format", "json"), ("-o", str(out))):
        r = run(daemon.env, "export", UNKNOWN_SID, *args)
        assert r.returncode == 1, (args, r.stdout, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("duologue: ") and UNKNOWN_SID in lines[0]
        assert r.stdout == ""
    assert not out.exists()
