"""`duologue export --format claude-code | gemini-cli`: a session handed back to the other
tool, in that tool's folder and shapes, and imported back unchanged. The sessions are
a real daemon's: one talked on its emulator (Sonnet, a manual switch, Flash) and ones
imported from the tools' own shapes (tool rounds, thinking with signatures, cache
usage, failed replies); all through the real CLI."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest
from conversation_support import send_and_wait
from tool_shapes import CC_SID, GEM_SID, write_claude_tree, write_gemini_tree

from duologue.clients.rpc.client import AsyncClient
from duologue.clients.rpc.sync_client import Client
from duologue.protocol import methods as m
from duologue.protocol.entities import ThinkingBlock
from support import DaemonProcess

SCRIPT = Path(sys.executable).with_name("duologue")
SONNET, FLASH = "claude-sonnet-5-5", "gemini-3.8-flash"


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=60)


def ok_json(env: dict[str, str], *args: str) -> Any:
    r = run(env, *args, "--json")
    assert r.returncode == 0, (args, r.stdout, r.stderr)
    return json.loads(r.stdout)


def kept(got: m.GetResult) -> list[tuple[Any, ...]]:
    """What a round trip must keep of each message."""
    return [(x.role, x.content, x.model, x.created_at, x.usage, x.status, x.error, x.cost_usd) for x in got.messages]


def unpriced(got: m.GetResult) -> m.GetResult:
    """The session without costs, as the emulator's replies were: it bills nothing, and
    an import prices the usage it brings back (as it does any tool's history)."""
    return msgspec.structs.replace(got, messages=[msgspec.structs.replace(x, cost_usd=None) for x in got.messages])


def hand_back_and_import(env: dict[str, str], home: Path, sid: str, tool: str) -> tuple[dict[str, Any], str]:
    said = ok_json({**env, "HOME": str(home)}, "export", sid, "--format", tool)
    back = ok_json(env, "import", "--from", tool, said["wrote"])
    assert back["created_sessions"] == 1 and back["parse"]["problems"] == [], back
    return said, back["sessions"][0]["session_id"]


@pytest.fixture
def env(daemon: DaemonProcess, tmp_path: Path) -> dict[str, str]:
    e = {**daemon.env, "HOME": str(tmp_path / "home")}
    e.pop("CLAUDE_CONFIG_DIR", None)
    e.pop("GEMINI_CLI_HOME", None)
    return e


@pytest.fixture
def project(tmp_path: Path) -> str:
    path = tmp_path / "work" / "cache-lib"
    (path / ".git").mkdir(parents=True)
    return str(path)


def imported(env: dict[str, str], root: Path, external_id: str) -> str:
    r = ok_json(env, "import", str(root))
    return next(x["session_id"] for x in r["sessions"] if x["external_id"] == external_id)


@pytest.mark.parametrize("tool, write, external_id", [
    ("claude-code", write_claude_tree, f"claude-code:{CC_SID}"),
    ("gemini-cli", write_gemini_tree, f"gemini-cli:{GEM_SID}")])
def test_a_session_from_the_tool_goes_back_to_it_and_returns_unchanged(daemon, env, tmp_path, project,
                                                                        tool, write, external_id):
    tree = write(tmp_path / "theirs", project)
    sid = imported(env, tree.root, external_id)
    said, back = hand_back_and_import(env, tmp_path / "exported", sid, tool)
    with Client(daemon.paths, autostart=False) as c:
        before, after = c.get_session(sid), c.get_session(back)
    assert kept(after) == kept(before)
    assert after.session.title == before.session.title and after.session.project_id == project
    assert [(w.from_model, w.to_model) for w in after.switches] == [(w.from_model, w.to_model)
                                                                    for w in before.switches]


async def test_a_session_that_switched_models_exports_each_reply_with_its_model(daemon, env, client: AsyncClient,
                                                                               tmp_path, project):
    s = await client.create_session(model="sonnet", title="two models", project_id=project)
    await client.attach(s.id, since_seq=s.last_seq)
    await send_and_wait(client, s.id, "first question")
    await client.switch_model(s.id, "flash", reason="long read")
    await send_and_wait(client, s.id, "second question")
    before = await client.get_session(s.id)
    assert [x.model for x in before.messages] == [None, SONNET, None, FLASH]

    claude, back = hand_back_and_import(env, tmp_path / "c", s.id, "claude-code")
    lines = [json.loads(x) for x in Path(claude["wrote"]).read_text().splitlines()]
    assert Path(claude["wrote"]).parent.name == re.sub(r"[^A-Za-z0-9]", "-", project)   # Claude Code's folder
    assert {x["message"]["model"] for x in lines if x.get("type") == "assistant"} == {SONNET, FLASH}
    after = await client.get_session(back)
    assert all(x.cost_usd for x in after.messages if x.role == "assistant")
    after = unpriced(after)
    # Claude Code keeps Claude's thinking with its signature; Gemini's thinking and signatures it cannot hold.
    assert kept(after) == kept(_as_claude_code_keeps(before, FLASH))
    assert [w.to_model for w in after.switches] == [FLASH]

    gemini, back = hand_back_and_import(env, tmp_path / "g", s.id, "gemini-cli")
    after = unpriced(await client.get_session(back))
    assert [x.model for x in after.messages] == [None, SONNET, None, FLASH]
    assert kept(after)[2:] == kept(before)[2:]                     # Gemini's reply whole, signatures too
    sonnet_before, sonnet_after = before.messages[1], after.messages[1]
    assert sonnet_after.text == sonnet_before.text and sonnet_after.usage == sonnet_before.usage
    assert [b.signature for b in sonnet_after.content if isinstance(b, ThinkingBlock)] == \
        [None for b in sonnet_before.content if isinstance(b, ThinkingBlock) and b.text]  # shown, not signed


def _as_claude_code_keeps(got: m.GetResult, gemini: str) -> m.GetResult:
    """The session without what the Gemini model's reply carries for Gemini alone."""
    def unsigned(x: m.Message) -> m.Message:
        content = [msgspec.structs.replace(b, signature=None) if hasattr(b, "signature") else b
                   for b in x.content if not isinstance(b, ThinkingBlock)]
        return msgspec.structs.replace(x, content=content)

    return msgspec.structs.replace(got, messages=[unsigned(x) if x.model == gemini else x for x in got.messages])


def test_exporting_again_names_the_same_file_and_never_overwrites_a_continued_one(daemon, env, tmp_path, project):
    sid = imported(env, write_claude_tree(tmp_path / "theirs", project).root, f"claude-code:{CC_SID}")
    out_env = {**env, "HOME": str(tmp_path / "exported")}
    first = ok_json(out_env, "export", sid, "--format", "claude-code")
    again = ok_json(out_env, "export", sid, "--format", "claude-code")
    assert again["wrote"] == first["wrote"] and again["unchanged"] is True
    path = Path(first["wrote"])
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    continued = path.read_bytes() + b'{"type": "user", "note": "written by the tool after the export"}\n'
    path.write_bytes(continued)
    r = run(out_env, "export", sid, "--format", "claude-code")
    assert r.returncode == 1 and "exists and holds something else" in r.stderr and str(path) in r.stderr
    assert path.read_bytes() == continued


def test_a_gemini_export_goes_to_the_folder_gemini_cli_gave_the_project(daemon, env, tmp_path, project):
    tree = write_gemini_tree(tmp_path / "home", project)               # HOME: the slug folder exists
    sid = imported(env, tree.root, f"gemini-cli:{GEM_SID}")
    said = ok_json(env, "export", sid, "--format", "gemini-cli")
    assert Path(said["wrote"]).parent == tree.session.parent
    fresh = ok_json({**env, "HOME": str(tmp_path / "other")}, "export", sid, "--format", "gemini-cli")
    folder = Path(fresh["wrote"]).parent.parent                        # never seen: claimed as Gemini CLI does
    assert folder.name == "cache-lib" and (folder / ".project_root").read_text() == project
