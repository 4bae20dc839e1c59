"""Claude Code and Gemini CLI histories as their current writers lay them out
(tests/tool_shapes.py): what the parsers make of each case, and what a real daemon
stores of them through the real CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tool_shapes import (AGENT_ID, CC_COMMAND_SID, CC_SID, GEM_SID, GEM_SUB_SID, RESTORE_NAME, write_claude_tree,
                         write_gemini_tree)

from duologue.clients import importers
from duologue.clients.rpc.sync_client import Client
from duologue.protocol import methods as m
from duologue.protocol.entities import TextBlock, ThinkingBlock, ToolCallBlock, ToolResultBlock, Usage
from duologue.protocol.errors import ErrorCode, RpcError
from support import DaemonProcess
from transcript_support import at

SCRIPT = Path(sys.executable).with_name("duologue")


@pytest.fixture
def project(tmp_path: Path) -> str:
    path = tmp_path / "work" / "cache-lib"
    (path / ".git").mkdir(parents=True)
    return str(path)


def parse(*roots: Path) -> tuple[dict[str, m.ImportSession], importers.ParseReport]:
    report = importers.ParseReport()
    sessions = importers.load(list(roots), report, project_of=lambda p: p)
    return {s.external_id: s for s in sessions}, report


# --- Claude Code -----------------------------------------------------------------------


def test_claude_reply_parts_split_by_tool_results_make_one_reply_and_one_result_message(tmp_path, project):
    tree = write_claude_tree(tmp_path / "home", project)
    got, report = parse(tree.main)
    s = got[f"claude-code:{CC_SID}"]
    first_reply, results = s.messages[1], s.messages[2]
    assert first_reply.external_id == f"claude-code:{CC_SID}:msg_X"
    assert first_reply.content == [
        ThinkingBlock(text="Two files: read both at once.", signature="EqQBsig=="),
        ToolCallBlock(id="toolu_A", name="Read", input={"file_path": "a.toml"}),
        ToolCallBlock(id="toolu_B", name="Read", input={"file_path": "b.toml"})]
    assert results.role == "user" and results.content == [
        ToolResultBlock(call_id="toolu_A", name="Read", content="a = 1"),
        ToolResultBlock(call_id="toolu_B", name="Read", content="b = 2")]
    ids = [x.external_id for x in s.messages]
    assert len(ids) == len(set(ids)) == 8 and report.problems == []


def test_claude_usage_counts_cache_reads_and_writes_apart_as_live_turns_do(tmp_path, project):
    got, _ = parse(write_claude_tree(tmp_path / "home", project).main)
    reply = got[f"claude-code:{CC_SID}"].messages[1]
    assert reply.usage == Usage(input_tokens=6, output_tokens=180, cache_read_tokens=12000,
                                cache_write_tokens=1000, cache_write_1h_tokens=500)   # the last part's usage


def test_claude_synthetic_api_error_is_a_failed_reply_not_a_reply(tmp_path, project):
    got, _ = parse(write_claude_tree(tmp_path / "home", project).main)
    error = got[f"claude-code:{CC_SID}"].messages[5]
    assert error.external_id == f"claude-code:{CC_SID}:e0d6c2f1-synthetic"      # the id an older import gave it
    assert (error.role, error.status, error.content, error.model) == ("assistant", "failed", [], None)
    assert error.error == "You've hit your limit · resets 1:20am"


def test_claude_subagent_is_its_own_session_linked_to_its_parent_and_its_call(tmp_path, project):
    tree = write_claude_tree(tmp_path / "home", project)
    got, report = parse(tree.root)
    child = got[f"claude-code:{CC_SID}:agent-{AGENT_ID}"]
    assert child.metadata["parent_external_id"] == f"claude-code:{CC_SID}"
    assert child.metadata["parent_tool_call"] == "toolu_T" and child.metadata["subagent"] == AGENT_ID
    assert [(x.role, x.model) for x in child.messages] == [("user", None), ("assistant", "claude-haiku-4-5-20251001")]
    assert child.title == "Compare a.toml and b.toml"
    order = list(got)
    assert order.index(f"claude-code:{CC_SID}") < order.index(child.external_id)
    assert report.skipped["claude-code compaction agent record"] == 1
    assert not any(k.endswith(":agent-acompact-7f3e2d") for k in got)


def test_claude_titles_take_the_rename_and_clean_command_markup(tmp_path, project):
    got, _ = parse(write_claude_tree(tmp_path / "home", project).root)
    assert got[f"claude-code:{CC_SID}"].title == "Config diff"
    assert got[f"claude-code:{CC_COMMAND_SID}"].title == "/review the cache module"


# --- Gemini CLI ------------------------------------------------------------------------


def test_gemini_full_history_rewrite_replaces_the_messages_and_keeps_thoughts_with_signatures(tmp_path, project):
    tree = write_gemini_tree(tmp_path / "home", project)
    got, report = parse(tree.session)
    s = got[f"gemini-cli:{GEM_SID}"]
    assert s.title == "TTL in cache.py"
    assert [(x.role, x.model) for x in s.messages] == [
        ("user", None), ("assistant", "gemini-2.5-pro"), ("user", None), ("assistant", "gemini-2.5-flash")]
    assert s.messages[0].content == [TextBlock(text="What is in cache.py?")]
    assert s.messages[1].content == [
        ThinkingBlock(text="**Locating the file**\n\nI will read it.", signature="CiQB0e2Kb7sig"),
        ToolCallBlock(id="read_file_1", name="read_file", input={"path": "cache.py"}, signature="CiQB0e2Kcall")]
    assert s.messages[2].content == [ToolResultBlock(call_id="read_file_1", name="read_file", content="[masked] TTL")]
    assert report.skipped["gemini-cli message dropped by a full-history rewrite"] == 1
    assert report.skipped["gemini-cli tool response turn (its results are kept with the call)"] == 1
    assert report.problems == []


def test_gemini_usage_counts_the_cached_prompt_apart_and_thoughts_as_output(tmp_path, project):
    got, _ = parse(write_gemini_tree(tmp_path / "home", project).session)
    assert got[f"gemini-cli:{GEM_SID}"].messages[1].usage == Usage(
        input_tokens=300, output_tokens=60, cache_read_tokens=600, thinking_tokens=40)


def test_gemini_slug_folders_name_their_project(tmp_path, project):
    got, _ = parse(write_gemini_tree(tmp_path / "home", project).root)
    assert {s.external_id: s.project_id for s in got.values()} == {
        f"gemini-cli:{GEM_SID}": project, f"gemini-cli:{GEM_SUB_SID}": project,
        f"gemini-cli:restore:cache-lib/{RESTORE_NAME}": project}


def test_gemini_subagent_session_is_linked_to_its_parent(tmp_path, project):
    got, _ = parse(write_gemini_tree(tmp_path / "home", project).root)
    child = got[f"gemini-cli:{GEM_SUB_SID}"]
    assert child.metadata["parent_external_id"] == f"gemini-cli:{GEM_SID}"
    assert list(got).index(f"gemini-cli:{GEM_SID}") < list(got).index(child.external_id)


def test_gemini_restore_point_imports_its_client_history(tmp_path, project):
    tree = write_gemini_tree(tmp_path / "home", project)
    got, report = parse(tree.restore)
    (s,) = got.values()
    assert report.problems == []
    assert s.title == "Gemini CLI restore point before replace of cache.py"
    assert s.metadata["git_commit"] == "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432"
    assert [(x.role, x.created_at) for x in s.messages] == [("user", at(30)), ("assistant", at(30))]
    assert s.messages[1].content[1] == ToolCallBlock(id="replace_1", name="replace", input={
        "file_path": f"{project}/cache.py", "old_string": "TTL = 5", "new_string": "TTL = 10"})


# --- through the daemon ----------------------------------------------------------------


def run_json(env: dict[str, str], *args: str) -> Any:
    r = subprocess.run([str(SCRIPT), *args, "--json"], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, (args, r.stdout, r.stderr)
    return json.loads(r.stdout)


def test_an_import_on_an_empty_store_skips_nothing_and_links_subagents(daemon: DaemonProcess, tmp_path, project):
    home = tmp_path / "home"
    claude, gemini = write_claude_tree(home, project), write_gemini_tree(home, project)
    r = run_json(daemon.env, "import", str(claude.root), str(gemini.root))
    assert r["skipped_messages"] == 0 and r["skipped_sessions"] == 0 and r["parse"]["problems"] == []
    assert r["created_messages"] == r["parse"]["messages"]
    with Client(daemon.paths, autostart=False) as c:
        made = {x["external_id"]: x["session_id"] for x in r["sessions"]}
        child = c.get_session(made[f"claude-code:{CC_SID}:agent-{AGENT_ID}"]).session
        assert child.metadata["parent_session_id"] == made[f"claude-code:{CC_SID}"]
        child_reply = c.get_session(child.id).messages[1]        # priced as a live turn: $1 in, $5 out per Mtok
        assert child_reply.cost_usd == pytest.approx(30 * 1e-6 + 7 * 5e-6) and child.cost_usd == child_reply.cost_usd
        gem_child = c.get_session(made[f"gemini-cli:{GEM_SUB_SID}"]).session
        assert gem_child.metadata["parent_session_id"] == made[f"gemini-cli:{GEM_SID}"]
        parent = c.get_session(made[f"claude-code:{CC_SID}"])
        failed = parent.messages[5]
        assert (failed.status, failed.error, failed.text) == ("failed", "You've hit your limit · resets 1:20am", "")
        assert parent.messages[1].thinking == "Two files: read both at once."
    again = run_json(daemon.env, "import", str(claude.root), str(gemini.root))
    assert again["created_messages"] == 0 and again["skipped_messages"] == r["created_messages"]


def test_a_request_naming_a_message_twice_is_refused_and_changes_nothing(daemon: DaemonProcess):
    msg = {"external_id": "x:1", "role": "user", "content": [{"type": "text", "text": "hi"}],
           "created_at": "2025-01-01T00:00:00Z"}
    session = {"external_id": "x", "sources": ["claude-code"], "title": "t", "created_at": "2025-01-01T00:00:00Z",
               "messages": [msg, msg]}
    with Client(daemon.paths, autostart=False) as c:
        with pytest.raises(RpcError) as info:
            c.call("import/run", {"sessions": [session]})
        assert info.value.code == ErrorCode.INVALID_PARAMS
        assert info.value.data["path"] == "$.sessions[0].messages[1].external_id"
        assert c.list_sessions().sessions == []
