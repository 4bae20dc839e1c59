"""Claude Code and Gemini CLI histories in the shapes their current writers produce
(importable as ``tool_shapes``), for the cases a simpler reader gets wrong:

Claude Code 2.x (lines as the tool appends them): one reply with two parallel tool
calls written as assistant(X, call A), user(result A), assistant(X, call B), user(result
B); thinking with its signature; usage with 5-minute and 1-hour cache writes; a
subagent started by the ``Agent`` tool (its result line names it in ``toolUseResult``)
whose lines are in ``<session>/subagents/agent-<id>.jsonl``, beside an
``agent-acompact-*`` compaction file; a synthetic API-error line; a ``/rename`` title.
A second session begins with a slash command in Claude Code's markup.

Gemini CLI (packages/core/src/services/chatRecordingService.ts, config/projectRegistry.ts,
utils/checkpointUtils.ts): a slug project folder with ``.project_root`` and
``projects.json``; a session whose history was rewritten by a ``$set`` of ``messages``
(with the tool response turn that rewrite writes); reply content holding thought parts
with signatures and function calls; a subagent's session under ``chats/<parent id>/``;
a ``/restore`` point in ``checkpoints/``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transcript_support import project_hash, t

CC_SID = "0b7f3c2a-5d1e-4f60-9a8b-1c2d3e4f5a6b"
CC_COMMAND_SID = "1c8a4d3b-6e2f-4071-8b9c-2d3e4f5a6b7c"
AGENT_ID = "a8c41f0e2b7d9356"
GEM_SID = "3f2e1d0c-aaaa-4bbb-8ccc-0123456789ab"
GEM_SUB_SID = "5e6f7a8b-dddd-4eee-8fff-0123456789ab"
SLUG = "cache-lib"


def _cc(uuid: str, parent: str | None, ts: str, cwd: str, kind: str, **extra: Any) -> dict[str, Any]:
    return {"parentUuid": parent, "isSidechain": False, "userType": "external", "cwd": cwd,
            "sessionId": CC_SID, "version": "2.1.14", "gitBranch": "main", "type": kind,
            "uuid": uuid, "timestamp": ts, **extra}


def _reply(uuid: str, parent: str, ts: str, cwd: str, msg_id: str, block: dict[str, Any],
           usage: dict[str, Any], model: str = "claude-sonnet-4-5-20250929", **extra: Any) -> dict[str, Any]:
    return {**_cc(uuid, parent, ts, cwd, "assistant", requestId=f"req_{msg_id}", **extra),
            "message": {"model": model, "id": msg_id, "type": "message", "role": "assistant",
                        "content": [block], "stop_reason": None, "stop_sequence": None, "usage": usage}}


def _result(uuid: str, parent: str, ts: str, cwd: str, call: str, text: str, tool_result: Any,
            **extra: Any) -> dict[str, Any]:
    return {**_cc(uuid, parent, ts, cwd, "user", **extra),
            "message": {"role": "user", "content": [{"tool_use_id": call, "type": "tool_result", "content": text}]},
            "toolUseResult": tool_result}


USAGE = {"input_tokens": 6, "cache_creation_input_tokens": 1500, "cache_read_input_tokens": 12000,
         "cache_creation": {"ephemeral_5m_input_tokens": 1000, "ephemeral_1h_input_tokens": 500},
         "output_tokens": 3, "service_tier": "standard"}
FINAL_USAGE = {**USAGE, "output_tokens": 180}


def claude_main(cwd: str) -> list[dict[str, Any]]:
    return [
        _cc("c1", None, t(0), cwd, "user", message={"role": "user", "content": "Read both config files"}),
        _reply("c2", "c1", t(0, 5), cwd, "msg_X", {"type": "thinking", "thinking": "Two files: read both at once.",
                                                     "signature": "EqQBsig=="}, USAGE),
        _reply("c3", "c2", t(0, 6), cwd, "msg_X", {"type": "tool_use", "id": "toolu_A", "name": "Read",
                                                     "input": {"file_path": "a.toml"}}, USAGE),
        _result("c4", "c3", t(0, 7), cwd, "toolu_A", "a = 1",
                {"type": "text", "file": {"filePath": "a.toml", "content": "a = 1"}}),
        _reply("c5", "c4", t(0, 8), cwd, "msg_X", {"type": "tool_use", "id": "toolu_B", "name": "Read",
                                                     "input": {"file_path": "b.toml"}}, FINAL_USAGE),
        _result("c6", "c5", t(0, 9), cwd, "toolu_B", "b = 2",
                {"type": "text", "file": {"filePath": "b.toml", "content": "b = 2"}}),
        _reply("c7", "c6", t(1), cwd, "msg_Y", {"type": "tool_use", "id": "toolu_T", "name": "Agent",
                                                  "input": {"description": "Compare configs",
                                                            "subagent_type": "Explore",
                                                            "prompt": "Compare a.toml and b.toml"}},
               {"input_tokens": 4, "output_tokens": 60}),
        _result("c8", "c7", t(2), cwd, "toolu_T", "They differ in one key.",
                {"status": "completed", "prompt": "Compare a.toml and b.toml", "agentId": AGENT_ID,
                 "agentType": "Explore", "content": [{"type": "text", "text": "They differ in one key."}],
                 "totalDurationMs": 4000, "totalTokens": 900, "totalToolUseCount": 1}),
        {**_cc("c9", "c8", t(3), cwd, "assistant"), "isApiErrorMessage": True, "error": "rate_limit",
         "message": {"id": "e0d6c2f1-synthetic", "model": "<synthetic>", "role": "assistant",
                     "stop_reason": "stop_sequence", "stop_sequence": "", "type": "message",
                     "usage": {"input_tokens": 0, "output_tokens": 0},
                     "content": [{"type": "text", "text": "You've hit your limit · resets 1:20am"}]}},
        _cc("c10", "c9", t(4), cwd, "user", message={"role": "user", "content": "Try again"}),
        _reply("c11", "c10", t(4, 5), cwd, "msg_Z", {"type": "text", "text": "a and b differ in one key."},
               {"input_tokens": 8, "output_tokens": 9}),
        {"type": "custom-title", "customTitle": "Config diff", "sessionId": CC_SID},
    ]


def claude_subagent(cwd: str) -> list[dict[str, Any]]:
    side = {"isSidechain": True, "agentId": AGENT_ID}
    return [
        {**_cc("s1", None, t(1, 1), cwd, "user", **side),
         "message": {"role": "user", "content": "Compare a.toml and b.toml"}},
        _reply("s2", "s1", t(1, 2), cwd, "msg_S", {"type": "text", "text": "They differ in one key."},
               {"input_tokens": 30, "output_tokens": 7}, model="claude-haiku-4-5-20251001", **side),
    ]


def claude_command_session(cwd: str) -> list[dict[str, Any]]:
    base = {"isSidechain": False, "userType": "external", "cwd": cwd, "sessionId": CC_COMMAND_SID,
            "version": "2.1.14", "gitBranch": "main"}
    wrapped = ("<command-message>review is running…</command-message>\n<command-name>/review</command-name>\n"
               "<command-args>the cache module</command-args>")
    return [
        {**base, "parentUuid": None, "type": "user", "uuid": "d1", "timestamp": t(5),
         "message": {"role": "user", "content": wrapped}},
        {**base, "parentUuid": "d1", "type": "assistant", "uuid": "d2", "timestamp": t(5, 3),
         "message": {"model": "claude-sonnet-4-5-20250929", "id": "msg_D", "type": "message", "role": "assistant",
                     "content": [{"type": "text", "text": "Reviewing."}], "usage": {"input_tokens": 1,
                                                                                   "output_tokens": 1}}},
    ]


def _lines(path: Path, recs: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    return path


@dataclass
class ClaudeTree:
    root: Path
    main: Path
    subagent: Path
    command: Path


def write_claude_tree(home: Path, cwd: str) -> ClaudeTree:
    folder = home / ".claude" / "projects" / "".join(c if c.isalnum() else "-" for c in cwd)
    main = _lines(folder / f"{CC_SID}.jsonl", claude_main(cwd))
    sub = _lines(folder / CC_SID / "subagents" / f"agent-{AGENT_ID}.jsonl", claude_subagent(cwd))
    _lines(folder / CC_SID / "subagents" / "agent-acompact-7f3e2d.jsonl", [
        {**_cc("k1", None, t(6), cwd, "user", isSidechain=True, agentId="acompact-7f3e2d"),
         "message": {"role": "user", "content": "Summarize the conversation"}}])
    command = _lines(folder / f"{CC_COMMAND_SID}.jsonl", claude_command_session(cwd))
    return ClaudeTree(home / ".claude", main, sub, command)


# --- Gemini CLI --------------------------------------------------------------------------


def _tokens(prompt: int, cached: int, out: int, thoughts: int) -> dict[str, int]:
    return {"input": prompt, "output": out, "cached": cached, "thoughts": thoughts, "tool": 0,
            "total": prompt + out + thoughts}


def gemini_records(project: str) -> list[dict[str, Any]]:
    """A session as the recording service appends it: metadata, the first turns, then
    a ``$set`` that rewrites the history (e.g. after masking a tool output) and a reply
    after it, and the summary."""
    hashed = project_hash(project)
    first_user = {"id": "g1", "timestamp": t(10), "type": "user",
                  "content": [{"text": "<session_context>\nThis is the Gemini CLI. We are setting up the context "
                                       "for our chat.\n</session_context>"}]}
    prompt = {"id": "g2", "timestamp": t(10, 1), "type": "user", "content": [{"text": "What is in cache.py?"}]}
    reply = {"id": "g3", "timestamp": t(10, 5), "type": "gemini", "model": "gemini-2.5-pro",
             "content": [{"text": "**Locating the file**\n\nI will read it.", "thought": True,
                          "thoughtSignature": "CiQB0e2Kb7sig"},
                         {"functionCall": {"id": "read_file_1", "name": "read_file", "args": {"path": "cache.py"}},
                          "thoughtSignature": "CiQB0e2Kcall"}],
             "thoughts": [{"subject": "Locating the file", "description": "I will read it.", "timestamp": t(10, 4)}],
             "tokens": _tokens(900, 600, 20, 40),
             "toolCalls": [{"id": "read_file_1", "name": "read_file", "args": {"path": "cache.py"},
                            "result": [{"functionResponse": {"id": "read_file_1", "name": "read_file",
                                                             "response": {"output": "TTL = 5"}}}],
                            "status": "success", "timestamp": t(10, 6), "displayName": "ReadFile",
                            "description": "Reads a file", "renderOutputAsMarkdown": False}]}
    masked = {**reply, "toolCalls": [{**reply["toolCalls"][0], "result": [
        {"functionResponse": {"id": "read_file_1", "name": "read_file", "response": {"output": "[masked] TTL"}}}]}]}
    response_turn = {"id": "g3_response", "timestamp": t(10, 7), "type": "user",
                     "content": [{"functionResponse": {"id": "read_file_1", "name": "read_file",
                                                       "response": {"output": "[masked] TTL"}}}]}
    answer = {"id": "g4", "timestamp": t(11), "type": "gemini", "model": "gemini-2.5-flash",
              "content": [{"text": "It sets a TTL of five seconds."}], "thoughts": [],
              "tokens": _tokens(1000, 0, 12, 0)}
    return [
        {"sessionId": GEM_SID, "projectHash": hashed, "startTime": t(10), "lastUpdated": t(10), "kind": "main"},
        first_user, prompt, reply,
        {"id": "g-old", "timestamp": t(10, 8), "type": "user", "content": [{"text": "a prompt the rewrite drops"}]},
        {"$set": {"messages": [first_user, prompt, masked, response_turn], "lastUpdated": t(10, 9)}},
        answer,
        {"$set": {"lastUpdated": t(11)}},
        {"$set": {"summary": "TTL in cache.py"}},
    ]


def gemini_subagent(project: str) -> list[dict[str, Any]]:
    return [
        {"sessionId": GEM_SUB_SID, "projectHash": project_hash(project), "startTime": t(12), "lastUpdated": t(12),
         "kind": "subagent", "directories": [project]},
        {"id": "h1", "timestamp": t(12), "type": "user", "content": [{"text": "Find every TTL"}]},
        {"id": "h2", "timestamp": t(12, 5), "type": "gemini", "model": "gemini-2.5-flash",
         "content": [{"text": "One TTL, in cache.py."}], "thoughts": [], "tokens": _tokens(50, 0, 5, 0)},
    ]


RESTORE_NAME = "2025-05-01T10-30-00_000Z-cache.py-replace"


def restore_point(project: str) -> dict[str, Any]:
    return {
        "history": [{"type": "user", "text": "Make the TTL ten seconds", "id": 1},
                    {"type": "gemini", "text": "Editing.", "id": 2}],
        "clientHistory": [
            {"role": "user", "parts": [{"text": "<session_context>\nThis is the Gemini CLI. We are setting up "
                                                "the context for our chat.\n</session_context>"}]},
            {"role": "user", "parts": [{"text": "Make the TTL ten seconds"}]},
            {"role": "model", "parts": [{"text": "Editing."},
                                        {"functionCall": {"id": "replace_1", "name": "replace", "args": {
                                            "file_path": f"{project}/cache.py", "old_string": "TTL = 5",
                                            "new_string": "TTL = 10"}}}]},
        ],
        "toolCall": {"name": "replace", "args": {"file_path": f"{project}/cache.py", "old_string": "TTL = 5",
                                                 "new_string": "TTL = 10"}},
        "commitHash": "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432",
        "messageId": "prompt-7",
    }


@dataclass
class GeminiTree:
    root: Path
    session: Path
    subagent: Path
    restore: Path


def write_gemini_tree(home: Path, project: str) -> GeminiTree:
    gemini = home / ".gemini"
    folder = gemini / "tmp" / SLUG
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ".project_root").write_text(project)
    (gemini / "projects.json").write_text(json.dumps({"projects": {project: SLUG}}, indent=2))
    session = _lines(folder / "chats" / f"session-2025-05-01T10-10-{GEM_SID[:8]}.jsonl", gemini_records(project))
    sub = _lines(folder / "chats" / GEM_SID / f"{GEM_SUB_SID}.jsonl", gemini_subagent(project))
    restore = folder / "checkpoints" / f"{RESTORE_NAME}.json"
    restore.parent.mkdir()
    restore.write_text(json.dumps(restore_point(project), indent=2))
    return GeminiTree(gemini, session, sub, restore)


# --- opencode ----------------------------------------------------------------------------

OC_SID, OC_CHILD = "ses_4a1b2c3d4e5fQwErTyUiOpAs", "ses_4a1b2c3d4e60ZxCvBnMlKjHg"
_OC_TABLES = (
    "CREATE TABLE project (id TEXT PRIMARY KEY, worktree TEXT NOT NULL, vcs TEXT, name TEXT, "
    "time_created INTEGER NOT NULL, time_updated INTEGER NOT NULL)",
    "CREATE TABLE session (id TEXT PRIMARY KEY, project_id TEXT NOT NULL REFERENCES project(id) ON DELETE CASCADE, "
    "workspace_id TEXT, parent_id TEXT, slug TEXT NOT NULL, directory TEXT NOT NULL, path TEXT, title TEXT NOT NULL, "
    "version TEXT NOT NULL, share_url TEXT, summary_additions INTEGER, summary_deletions INTEGER, "
    "summary_files INTEGER, summary_diffs TEXT, cost REAL NOT NULL DEFAULT 0, tokens_input INTEGER NOT NULL DEFAULT 0, "
    "tokens_output INTEGER NOT NULL DEFAULT 0, tokens_reasoning INTEGER NOT NULL DEFAULT 0, "
    "tokens_cache_read INTEGER NOT NULL DEFAULT 0, tokens_cache_write INTEGER NOT NULL DEFAULT 0, revert TEXT, "
    "permission TEXT, goal TEXT, agent TEXT, model TEXT, time_created INTEGER NOT NULL, "
    "time_updated INTEGER NOT NULL, time_compacting INTEGER, time_archived INTEGER)",
    "CREATE TABLE message (id TEXT PRIMARY KEY, session_id TEXT NOT NULL REFERENCES session(id) ON DELETE CASCADE, "
    "time_created INTEGER NOT NULL, time_updated INTEGER NOT NULL, data TEXT NOT NULL)",
    "CREATE TABLE part (id TEXT PRIMARY KEY, message_id TEXT NOT NULL REFERENCES message(id) ON DELETE CASCADE, "
    "session_id TEXT NOT NULL, time_created INTEGER NOT NULL, time_updated INTEGER NOT NULL, data TEXT NOT NULL)",
)


def ms(minute: int, second: int = 0) -> int:
    from transcript_support import at
    return int(at(minute, second).timestamp() * 1000)


def opencode_sessions(project: str) -> list[tuple[dict[str, Any], list[tuple[dict[str, Any], list[dict[str, Any]]]]]]:
    """Two sessions as opencode's message-v2 records them: a turn of two steps (reasoning
    with Anthropic's signature, a tool call and its result, then the answer), a failed
    reply, and a subagent's session under it."""
    model = {"providerID": "anthropic", "modelID": "claude-sonnet-4-5"}
    tokens = {"total": 1530, "input": 12, "output": 40, "reasoning": 8, "cache": {"read": 1400, "write": 70}}
    assistant = {"role": "assistant", "parentID": "msg_01", "modelID": "claude-sonnet-4-5", "providerID": "anthropic",
                 "mode": "build", "agent": "build", "path": {"cwd": project, "root": project}, "cost": 0.0012,
                 "tokens": tokens, "finish": "stop"}
    main = [
        ({"id": "msg_01", "sessionID": OC_SID, "role": "user", "time": {"created": ms(40)}, "agent": "build",
          "model": model},
         [{"id": "prt_01", "type": "text", "text": "Why is the TTL wrong?"},
          {"id": "prt_02", "type": "text", "synthetic": True,
           "text": "Called the Read tool with the following input: {\"filePath\":\"cache.py\"}"},
          {"id": "prt_03", "type": "file", "mime": "text/plain", "filename": "cache.py",
           "url": f"file://{project}/cache.py"}]),
        ({"id": "msg_02", "sessionID": OC_SID, **assistant, "time": {"created": ms(40, 5), "completed": ms(41)}},
         [{"id": "prt_04", "type": "step-start", "snapshot": "4b825dc6"},
          {"id": "prt_05", "type": "reasoning", "text": "Read the file first.",
           "metadata": {"anthropic": {"signature": "ErUBsigOC"}}, "time": {"start": ms(40, 5), "end": ms(40, 6)}},
          {"id": "prt_06", "type": "tool", "callID": "toolu_OC1", "tool": "read",
           "state": {"status": "completed", "input": {"filePath": "cache.py"}, "output": "TTL = time.time() + 5",
                     "title": "cache.py", "metadata": {}, "time": {"start": ms(40, 6), "end": ms(40, 7)}}},
          {"id": "prt_07", "type": "step-finish", "reason": "tool-calls", "cost": 0.0008,
           "tokens": {"input": 10, "output": 30, "reasoning": 8, "cache": {"read": 1000, "write": 70}}},
          {"id": "prt_08", "type": "step-start"},
          {"id": "prt_09", "type": "text", "text": "It adds wall-clock seconds; use monotonic time.",
           "time": {"start": ms(40, 8), "end": ms(40, 9)}},
          {"id": "prt_10", "type": "step-finish", "reason": "stop", "cost": 0.0004,
           "tokens": {"input": 2, "output": 10, "reasoning": 0, "cache": {"read": 400, "write": 0}}}]),
        ({"id": "msg_03", "sessionID": OC_SID, "role": "user", "time": {"created": ms(42)}, "agent": "build",
          "model": model}, [{"id": "prt_11", "type": "text", "text": "And the other caches?"}]),
        ({"id": "msg_04", "sessionID": OC_SID, **assistant, "time": {"created": ms(42, 1)},
          "tokens": {"input": 0, "output": 0, "reasoning": 0, "cache": {"read": 0, "write": 0}},
          "error": {"name": "APIError", "data": {"message": "Overloaded", "statusCode": 529, "isRetryable": True}}},
         [{"id": "prt_12", "type": "step-start"}]),
    ]
    child = [
        ({"id": "msg_05", "sessionID": OC_CHILD, "role": "user", "time": {"created": ms(41, 1)}, "agent": "explore",
          "model": model}, [{"id": "prt_13", "type": "text", "text": "List every cache in the repo"}]),
        ({"id": "msg_06", "sessionID": OC_CHILD, **assistant, "agent": "explore", "time": {"created": ms(41, 2)}},
         [{"id": "prt_14", "type": "text", "text": "Two: cache.py and memo.py."}]),
    ]
    return [({"id": OC_SID, "parentID": None, "title": "Fix the TTL", "time": {"created": ms(40)}}, main),
            ({"id": OC_CHILD, "parentID": OC_SID, "title": "List caches (@explore subagent)",
              "time": {"created": ms(41, 1)}}, child)]


def write_opencode_db(data_home: Path, project: str) -> Path:
    import sqlite3
    path = data_home / "opencode" / "opencode.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path)
    with con:
        for statement in _OC_TABLES:
            con.execute(statement)
        con.execute("INSERT INTO project VALUES ('prj1', ?, 'git', NULL, ?, ?)", (project, ms(40), ms(40)))
        for info, messages in opencode_sessions(project):
            con.execute("INSERT INTO session (id, project_id, parent_id, slug, directory, title, version, time_created, "
                        "time_updated) VALUES (?, 'prj1', ?, 'calm-otter', ?, ?, '1.1.4', ?, ?)",
                        (info["id"], info["parentID"], project, info["title"], info["time"]["created"],
                         info["time"]["created"]))
            for msg, parts in messages:
                data = {k: v for k, v in msg.items() if k not in ("id", "sessionID")}
                con.execute("INSERT INTO message VALUES (?, ?, ?, ?, ?)", (msg["id"], info["id"], msg["time"]["created"],
                                                                            msg["time"]["created"], json.dumps(data)))
                for p in parts:
                    con.execute("INSERT INTO part VALUES (?, ?, ?, ?, ?, ?)", (
                        p["id"], msg["id"], info["id"], msg["time"]["created"], msg["time"]["created"],
                        json.dumps({k: v for k, v in p.items() if k != "id"})))
    con.close()
    return path


def write_opencode_files(data_home: Path, project: str) -> Path:
    """The same sessions as an older opencode's ``storage/`` tree."""
    storage = data_home / "opencode" / "storage"
    for info, messages in opencode_sessions(project):
        record = {**info, "projectID": "prj1", "directory": project, "version": "0.15.2",
                  "time": {**info["time"], "updated": info["time"]["created"]}}
        if record["parentID"] is None:
            del record["parentID"]
        _write_json(storage / "session" / "prj1" / f"{info['id']}.json", record)
        for msg, parts in messages:
            _write_json(storage / "message" / info["id"] / f"{msg['id']}.json", msg)
            for p in parts:
                _write_json(storage / "part" / msg["id"] / f"{p['id']}.json",
                            {**p, "sessionID": info["id"], "messageID": msg["id"]})
    return storage


def _write_json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2))
