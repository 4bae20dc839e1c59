"""`duologue import --from opencode`: opencode's SQLite store and its older file tree,
written by the tests in opencode's own tables and records (tests/tool_shapes.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest
from tool_shapes import OC_CHILD, OC_SID, write_opencode_db, write_opencode_files

from duologue.clients import importers
from duologue.clients.rpc.sync_client import Client
from duologue.protocol.entities import TextBlock, ThinkingBlock, ToolCallBlock, ToolResultBlock, Usage
from support import DaemonProcess
from transcript_support import at

SCRIPT = Path(sys.executable).with_name("duologue")


@pytest.fixture
def project(tmp_path: Path) -> str:
    path = tmp_path / "work" / "cache-lib"
    (path / ".git").mkdir(parents=True)
    return str(path)


def parse(root: Path):
    report = importers.ParseReport()
    sessions = importers.load([root], report, project_of=lambda p: p)
    return {s.external_id: s for s in sessions}, report


def test_each_step_of_an_opencode_turn_is_a_reply_with_its_tool_round(tmp_path, project):
    got, report = parse(write_opencode_db(tmp_path / "data", project))
    s = got[f"opencode:{OC_SID}"]
    assert (s.title, s.project_id) == ("Fix the TTL", project)
    assert [(x.role, x.model, x.status) for x in s.messages] == [
        ("user", None, "complete"), ("assistant", "claude-sonnet-4-5", "complete"), ("user", None, "complete"),
        ("assistant", "claude-sonnet-4-5", "complete"), ("user", None, "complete"),
        ("assistant", "claude-sonnet-4-5", "failed")]
    prompt, step1, results, step2, _, failed = s.messages
    assert prompt.content == [TextBlock(text="Why is the TTL wrong?")]      # not opencode's own synthetic text
    assert step1.content == [ThinkingBlock(text="Read the file first.", signature="ErUBsigOC"),
                             ToolCallBlock(id="toolu_OC1", name="read", input={"filePath": "cache.py"})]
    assert results.content == [ToolResultBlock(call_id="toolu_OC1", name="read", content="TTL = time.time() + 5")]
    assert step2.content == [TextBlock(text="It adds wall-clock seconds; use monotonic time.")]
    assert step1.usage == Usage(input_tokens=10, output_tokens=38, cache_read_tokens=1000, cache_write_tokens=70,
                                thinking_tokens=8)
    assert (failed.content, failed.error, failed.created_at) == ([], "Overloaded", at(42, 1))
    assert report.skipped["opencode text it made itself (synthetic or ignored)"] == 1
    assert report.skipped["opencode file part"] == 1 and report.problems == []


def test_an_opencode_subagent_session_is_linked_to_its_parent(tmp_path, project):
    got, _ = parse(write_opencode_db(tmp_path / "data", project))
    child = got[f"opencode:{OC_CHILD}"]
    assert child.metadata["parent_external_id"] == f"opencode:{OC_SID}"
    assert list(got).index(f"opencode:{OC_SID}") < list(got).index(child.external_id)


def test_the_older_file_tree_gives_the_same_sessions_as_the_database(tmp_path, project):
    from_db, _ = parse(write_opencode_db(tmp_path / "a", project))
    from_files, report = parse(write_opencode_files(tmp_path / "b", project))
    assert report.problems == [] and report.skipped.get("file of no known format") is None
    same = lambda s: msgspec.structs.replace(s, metadata={k: v for k, v in s.metadata.items()  # noqa: E731
                                                          if k != "source_file"})
    assert {k: same(v) for k, v in from_files.items()} == {k: same(v) for k, v in from_db.items()}


def test_import_from_opencode_reads_its_default_folder_and_never_writes_there(daemon: DaemonProcess, tmp_path,
                                                                              project):
    db = write_opencode_db(tmp_path / "data", project)
    before = db.read_bytes()
    env = {**daemon.env, "XDG_DATA_HOME": str(tmp_path / "data")}
    r = subprocess.run([str(SCRIPT), "import", "--from", "opencode", "--json"], env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert (result["created_sessions"], result["created_messages"], result["skipped_messages"]) == (2, 8, 0)
    assert db.read_bytes() == before
    with Client(daemon.paths, autostart=False) as c:
        made = {x["external_id"]: x["session_id"] for x in result["sessions"]}
        child = c.get_session(made[f"opencode:{OC_CHILD}"]).session
        assert child.metadata["parent_session_id"] == made[f"opencode:{OC_SID}"]
