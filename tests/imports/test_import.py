"""`duologue import`: Claude Code and Gemini CLI histories (written by the tests in the
tools' own formats, broken records included) through the real CLI, client and daemon."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from duologue.clients import importers
from duologue.clients.rpc.sync_client import Client
from duologue.protocol.entities import TextBlock, ThinkingBlock, ToolCallBlock, ToolResultBlock
from duologue.protocol.errors import ErrorCode, RpcError
from support import DaemonProcess
from transcript_support import (
    CLAUDE_BROKEN_LINES,
    CLAUDE_SID,
    GEMINI_SID,
    Fixture,
    at,
    claude_lines,
    write_all,
    write_claude,
    write_gemini,
)

SCRIPT = Path(sys.executable).with_name("duologue")


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=60)


def ok_json(env: dict[str, str], *args: str) -> Any:
    r = run(env, *args, "--json")
    assert r.returncode == 0, (args, r.returncode, r.stdout, r.stderr)
    return json.loads(r.stdout)


@pytest.fixture
def env(daemon: DaemonProcess) -> dict[str, str]:
    return daemon.env


@pytest.fixture
def fx(tmp_path: Path) -> Fixture:
    project = tmp_path / "work" / "cache"
    (project / ".git").mkdir(parents=True)
    return write_all(tmp_path / "userhome", str(project))


@pytest.fixture
def sync(daemon: DaemonProcess):
    with Client(daemon.paths, autostart=False, client_name="import-test") as c:
        yield c


def roots(fx: Fixture) -> list[str]:
    return [str(fx.root / ".claude"), str(fx.root / ".gemini")]


def by_source_session(sync: Client) -> dict[str, Any]:
    out = {}
    for s in sync.list_sessions(limit=1000).sessions:
        out[s.metadata.get("source_session", s.id)] = sync.get_session(s.id)
    return out


# --- dry run ---------------------------------------------------------------------------


def test_dry_run_reports_what_it_would_create_and_changes_nothing(env, fx, sync):
    r = ok_json(env, "import", *roots(fx), "--dry-run")
    assert r["dry_run"] is True and r["batch_id"] is None
    assert r["created_sessions"] == 4 and r["created_messages"] == 15
    assert {x["action"] for x in r["sessions"]} == {"create"}
    assert all(x["session_id"] is None for x in r["sessions"])
    assert sync.list_sessions().sessions == []
    assert sync.list_imports() == []


# --- a real run ------------------------------------------------------------------------


def test_import_keeps_models_timestamps_tool_rounds_and_titles(env, fx, sync):
    r = ok_json(env, "import", *roots(fx))
    assert r["batch_id"] and r["created_sessions"] == 4 and r["created_messages"] == 15
    got = by_source_session(sync)

    claude = got[CLAUDE_SID]
    s = claude.session
    assert s.title == "Fix the flaky cache test"               # the transcript's summary
    assert s.project_id == fx.project                            # cwd, as a project (its git root)
    assert s.created_at == at(0) and s.updated_at == at(4)
    assert s.metadata["imported_from"] == "claude-code" and s.metadata["git_branch"] == "main"
    msgs = claude.messages
    assert [(x.role, x.model, x.created_at) for x in msgs] == [
        ("user", None, at(0)),
        ("assistant", "claude-sonnet-4-20250514", at(1)),        # three streamed lines, one message
        ("user", None, at(2)),
        ("assistant", "claude-opus-4-20250514", at(3)),
        ("user", None, at(4)),
    ]
    assert msgs[1].content == [ThinkingBlock(text="hmm", signature="sig"), TextBlock(text="Let me look at the cache."),
                               ToolCallBlock(id="toolu_01", name="Read", input={"file_path": "cache.py"})]
    assert (msgs[1].usage.input_tokens, msgs[1].usage.cache_read_tokens, msgs[1].usage.output_tokens) == (10, 5, 20)
    assert msgs[2].content == [ToolResultBlock(call_id="toolu_01", name="Read", content="TTL = time.time() + 5")]
    (switch,) = claude.switches                                  # the model changed between replies
    assert (switch.from_model, switch.to_model, switch.at) == (
        "claude-sonnet-4-20250514", "claude-opus-4-20250514", at(3))
    assert switch.message_index == 3 and switch.seq < msgs[3].seq
    assert s.message_count == 5 and s.last_seq == 1 + 5 + 1    # created, messages, one switch

    gemini = got[GEMINI_SID]
    assert gemini.session.title == "Explain the TTL in cache.py"
    assert gemini.session.project_id == fx.project               # project hash resolved via the Claude cwd
    assert [(x.role, x.model) for x in gemini.messages] == [
        ("user", None), ("assistant", "gemini-2.5-pro"), ("user", None), ("assistant", "gemini-2.5-flash")]
    assert gemini.messages[2].content == [ToolResultBlock(call_id="read_file-1", name="read_file", content="TTL = 5")]
    assert gemini.messages[2].created_at == at(11, 30)
    assert gemini.messages[1].usage.input_tokens == 120
    assert [w.to_model for w in gemini.switches] == ["gemini-2.5-flash"]

    later = [x for k, x in got.items() if k not in (CLAUDE_SID, GEMINI_SID)]
    titles = sorted(x.session.title for x in later)
    assert titles == ["Gemini CLI checkpoint my tag", "Planning the fix"]
    plan = next(x for x in later if x.session.title == "Planning the fix")
    assert [x.text for x in plan.messages] == ["Draft a plan", "Plan: 1. measure 2. fix"]   # rewind, update
    checkpoint = next(x for x in later if x.session.title.startswith("Gemini CLI checkpoint"))
    assert [x.role for x in checkpoint.messages] == ["user", "assistant", "user", "assistant"]
    call = checkpoint.messages[1].content[2]                    # after its thought and its text
    assert isinstance(call, ToolCallBlock) and checkpoint.messages[2].content[0].call_id == call.id


def test_broken_lines_and_files_are_reported_and_never_stop_the_rest(env, fx, sync):
    r = ok_json(env, "import", *roots(fx))
    problems = r["parse"]["problems"]
    claude_lines_reported = sorted(int(p["where"].split()[1]) for p in problems
                                   if p["path"] == str(fx.claude))
    assert claude_lines_reported == list(CLAUDE_BROKEN_LINES)
    assert any(p["path"] == str(fx.broken) and p["where"] is None for p in problems)
    assert any(p["path"] == str(fx.gemini) and p["where"] == "messages[4]" for p in problems)
    skipped = r["parse"]["skipped"]
    for kind in ("claude-code record type 'system'", "claude-code record type 'progress'",
                 "claude-code record type 'file-history-snapshot'", "claude-code meta record",
                 "gemini-cli info note"):
        assert skipped.get(kind) == 1, (kind, skipped)
    assert r["created_sessions"] == 4                              # everything readable went in

    text = run(env, "import", *roots(fx), "--dry-run").stdout
    assert f"{fx.claude}:line 9: not valid JSON" in text


def test_a_second_run_creates_nothing(env, fx, sync):
    first = ok_json(env, "import", *roots(fx))
    before = {s.id: s.last_seq for s in sync.list_sessions().sessions}
    again = ok_json(env, "import", *roots(fx))
    assert again["created_sessions"] == again["appended_sessions"] == again["created_messages"] == 0
    assert again["skipped_sessions"] == 4 and again["skipped_messages"] == first["created_messages"]
    assert again["batch_id"] is None
    assert {s.id: s.last_seq for s in sync.list_sessions().sessions} == before
    assert len(sync.list_imports()) == 1


def test_a_transcript_that_grew_gets_only_its_new_messages_and_undo_cuts_them_back(env, tmp_path, sync):
    project = str(tmp_path / "p")
    path = write_claude(tmp_path / "h", project)
    ok_json(env, "import", str(path))
    (sid,) = [s.id for s in sync.list_sessions().sessions]
    before = sync.get_session(sid)

    extra = json.loads(claude_lines(project)[13])
    extra.update(uuid="u9", timestamp="2025-05-01T10:09:00.000Z",
                 message={"role": "user", "content": "One more thing"})
    with path.open("a") as f:
        f.write(json.dumps(extra) + "\n")
    grown = ok_json(env, "import", str(path))
    assert (grown["created_sessions"], grown["appended_sessions"], grown["created_messages"]) == (0, 1, 1)
    after = sync.get_session(sid)
    assert [x.text for x in after.messages][-1] == "One more thing"
    assert after.session.message_count == before.session.message_count + 1

    undo = ok_json(env, "import", "--undo", grown["batch_id"])
    assert undo["truncated_sessions"] == [sid] and undo["removed_messages"] == 1
    restored = sync.get_session(sid)
    assert restored.session == before.session and restored.messages == before.messages


def test_undo_removes_exactly_what_the_batch_created(env, fx, sync):
    mine = sync.create_session(title="written here", project_id=fx.project)
    sync.rename_session(mine.id, "still mine")
    first = ok_json(env, "import", str(fx.claude))
    second = ok_json(env, "import", *roots(fx))
    assert second["created_sessions"] == 3                        # the Claude one came with the first
    ids_second = {x["session_id"] for x in second["sessions"] if x["action"] == "create"}

    undo = ok_json(env, "import", "--undo", second["batch_id"])
    assert set(undo["deleted_sessions"]) == ids_second
    left = {s.id for s in sync.list_sessions().sessions}
    assert left == {mine.id, first["sessions"][0]["session_id"]}
    assert [b.id for b in sync.list_imports()] == [first["batch_id"]]

    again = ok_json(env, "import", *roots(fx))                     # the undone ids are free again
    assert again["created_sessions"] == 3 and again["skipped_sessions"] == 1


def test_undo_of_an_unknown_batch_fails_clearly_and_changes_nothing(env, fx, sync):
    ok_json(env, "import", str(fx.claude))
    r = run(env, "import", "--undo", "01ARZ3NDEKTSV4RRFFQ69G5FAV")
    assert r.returncode == 1
    assert r.stderr.strip() == ("duologue: no import batch '01ARZ3NDEKTSV4RRFFQ69G5FAV'; "
                                "`duologue import --list` shows the batches")
    assert len(sync.list_sessions().sessions) == 1


def test_undo_refuses_when_an_imported_session_changed_since(env, fx, sync):
    r = ok_json(env, "import", str(fx.claude), str(fx.gemini))
    touched = r["sessions"][0]["session_id"]
    sync.rename_session(touched, "renamed after the import")
    with pytest.raises(RpcError) as info:
        sync.undo_import(r["batch_id"])
    assert info.value.code == ErrorCode.IMPORT_CONFLICT
    assert info.value.data["session_ids"] == [touched]
    assert len(sync.list_sessions().sessions) == 2                # nothing removed

    sync.delete_session(touched)                                   # the user decides; then undo works
    undo = sync.undo_import(r["batch_id"])
    assert undo.already_gone == [touched] and len(undo.deleted_sessions) == 1
    assert sync.list_sessions().sessions == []


def test_merge_makes_one_session_whose_messages_keep_each_tools_model(env, tmp_path, sync):
    project = str(tmp_path / "p")
    claude = write_claude(tmp_path / "h", project)
    gemini = write_gemini(tmp_path / "h", project)
    r = ok_json(env, "import", "--merge", str(claude), str(gemini))
    assert r["created_sessions"] == 1 and r["created_messages"] == 9
    (s,) = sync.list_sessions().sessions
    got = sync.get_session(s.id)
    assert sorted(s.metadata["imported_from"].split("+")) == ["claude-code", "gemini-cli"]
    assert [x.created_at for x in got.messages] == sorted(x.created_at for x in got.messages)
    models = [x.model for x in got.messages if x.role == "assistant"]
    assert models == ["claude-sonnet-4-20250514", "claude-opus-4-20250514", "gemini-2.5-pro", "gemini-2.5-flash"]
    assert [(w.from_model, w.to_model) for w in got.switches] == [
        ("claude-sonnet-4-20250514", "claude-opus-4-20250514"),
        ("claude-opus-4-20250514", "gemini-2.5-pro"),
        ("gemini-2.5-pro", "gemini-2.5-flash")]
    again = ok_json(env, "import", "--merge", str(claude), str(gemini))
    assert again["created_messages"] == 0


def test_from_limits_the_import_to_one_tool(env, fx, sync):
    r = ok_json(env, "import", "--from", "gemini-cli", *roots(fx), "--dry-run")
    assert r["created_sessions"] == 3
    assert r["parse"]["skipped"]["file from claude-code (importing gemini-cli only)"] == 1


def test_without_a_path_the_tools_default_folders_are_read(daemon, fx, sync):
    env = {**daemon.env, "HOME": str(fx.root)}
    env.pop("CLAUDE_CONFIG_DIR", None)
    r = ok_json(env, "import", "--from", "claude-code", "--dry-run")
    assert r["created_sessions"] == 1
    missing = run({**env, "HOME": str(fx.root / "nowhere")}, "import")
    assert missing.returncode == 2 and "give a PATH" in missing.stderr


def test_a_large_session_is_sent_in_pieces_of_one_batch(daemon, tmp_path, sync):
    report = importers.ParseReport()
    sessions = importers.load([write_claude(tmp_path / "h", str(tmp_path / "p"))], report)
    parsed_problems = len(report.problems)
    chunks = importers.requests(sessions, report, limit=1200)
    assert len(chunks) > 1 and len(report.problems) == parsed_problems   # split, nothing dropped
    batch = None
    for chunk in chunks:
        batch = sync.import_sessions(chunk, batch_id=batch).batch_id
    (s,) = sync.list_sessions().sessions
    assert s.message_count == 5
    (record,) = sync.list_imports()
    assert record.id == batch and record.created_sessions == [s.id] and record.messages == 5
    assert len(sync.undo_import(batch).deleted_sessions) == 1
    with pytest.raises(RpcError) as info:
        sync.import_sessions(chunks[0], batch_id="NOSUCHBATCH")
    assert info.value.code == ErrorCode.UNKNOWN_BATCH


def test_import_params_are_strict(sync):
    with pytest.raises(RpcError) as info:
        sync.call("import/run", {"sessions": [{"external_id": "x", "sources": ["nope"], "title": "t",
                                               "created_at": "2025-01-01T00:00:00Z"}]})
    assert info.value.code == ErrorCode.INVALID_PARAMS and info.value.data["path"] == "$.sessions[0].sources[0]"
