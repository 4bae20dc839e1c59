"""Claude Code transcripts: ``~/.claude/projects/<encoded cwd>/<session id>.jsonl``.

One JSON object per line, appended as the session goes (no official schema; this
follows the records Claude Code 1.x and 2.x write):

- ``type: "user" | "assistant"`` with ``message`` (an Anthropic Messages API message:
  ``role``, ``content`` as a string or blocks ``text`` / ``tool_use`` /
  ``tool_result`` / ``thinking`` / ``image``; assistant messages add ``id``, ``model``
  and ``usage``), plus ``uuid``, ``parentUuid``, ``sessionId``, ``timestamp`` (ISO),
  ``cwd``, ``gitBranch``, ``version``, ``isSidechain`` and ``isMeta``.
  One streamed reply is written as several assistant lines sharing ``message.id``,
  one content block each; they are joined back into one message.
- ``type: "summary"`` (``summary``, ``leafUuid``): the session's title.
- Everything else (``system``, ``file-history-snapshot``, ``queue-operation``,
  ``progress``, …) is bookkeeping of the tool: skipped and counted by type, as are
  sidechain (subagent) lines, meta lines, compaction summaries, thinking and images.

Messages are taken in file order: the ``parentUuid`` tree would also hold branches
that a rewind abandoned, but Claude Code itself writes the live branch last.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from duologue.protocol import methods as m
from duologue.protocol.entities import TextBlock, ToolCallBlock, ToolResultBlock, Usage

from .records import (Broken, ParseReport, as_int, as_text, clip_title, first_text, parse_time, shown,
                      title_from)

SOURCE = "claude-code"
MESSAGE_TYPES = ("user", "assistant")


@dataclass
class _Message:
    external_id: str
    role: str
    blocks: list[Any]
    created_at: Any
    api_id: str | None = None
    model: str | None = None
    usage: Usage | None = None


@dataclass
class _Session:
    id: str
    messages: list[_Message] = field(default_factory=list)
    tool_names: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    git_branch: str | None = None
    version: str | None = None


def parse(path: Path, data: bytes, report: ParseReport,
          project_of: Callable[[str], str]) -> list[m.ImportSession]:
    sessions: dict[str, _Session] = {}
    summary: str | None = None
    for lineno, raw in enumerate(data.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            rec = json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            why = "nested too deeply" if isinstance(exc, RecursionError) else _short(exc)
            report.broken(path, f"line {lineno}", f"not valid JSON ({why})")
            continue
        if not isinstance(rec, dict):
            report.broken(path, f"line {lineno}", "not a JSON object")
            continue
        kind = rec.get("type")
        if kind == "summary" and isinstance(rec.get("summary"), str):
            summary = rec["summary"]
            continue
        if kind not in MESSAGE_TYPES:
            report.skip(f"claude-code record type {kind!r}" if isinstance(kind, str)
                        else "claude-code record without a type")
            continue
        if rec.get("isSidechain"):
            report.skip("claude-code sidechain (subagent) record")
            continue
        if rec.get("isMeta"):
            report.skip("claude-code meta record")
            continue
        if rec.get("isCompactSummary"):
            report.skip("claude-code compaction summary")
            continue
        sid = rec.get("sessionId") if isinstance(rec.get("sessionId"), str) else shown(path.stem)
        session = sessions.setdefault(sid, _Session(sid))
        try:
            _add(session, rec, kind, report)
        except Broken as exc:
            report.broken(path, f"line {lineno}", str(exc))
        except RecursionError:
            report.broken(path, f"line {lineno}", "nested too deeply")
    return [s for s in (_finish(path, x, summary, report, project_of) for x in sessions.values()) if s]


def _add(session: _Session, rec: dict[str, Any], kind: str, report: ParseReport) -> None:
    message = rec.get("message")
    if not isinstance(message, dict):
        raise Broken(f"{kind} record without a message object")
    created_at = parse_time(rec.get("timestamp"))
    uuid = rec.get("uuid")
    if not isinstance(uuid, str) or not uuid:
        raise Broken(f"{kind} record without a uuid")
    for key, attr in (("cwd", "cwd"), ("gitBranch", "git_branch"), ("version", "version")):
        if isinstance(rec.get(key), str) and rec[key]:
            setattr(session, attr, rec[key])
    blocks = _blocks(message.get("content"), session.tool_names, report)
    api_id = message.get("id") if isinstance(message.get("id"), str) else None
    usage = _usage(message.get("usage"))
    last = session.messages[-1] if session.messages else None
    if kind == "assistant" and api_id and last and last.role == "assistant" and last.api_id == api_id:
        last.blocks.extend(blocks)  # the next block of the same streamed reply
        last.usage = usage or last.usage
        return
    model = message.get("model") if kind == "assistant" and isinstance(message.get("model"), str) else None
    session.messages.append(_Message(
        external_id=f"{SOURCE}:{session.id}:{api_id or uuid}", role=kind, blocks=blocks,
        created_at=created_at, api_id=api_id, model=model, usage=usage))


def _blocks(content: Any, tool_names: dict[str, str], report: ParseReport) -> list[Any]:
    if isinstance(content, str):
        return [TextBlock(text=content)] if content else []
    if not isinstance(content, list):
        raise Broken("message content is neither text nor a list of blocks")
    out: list[Any] = []
    for block in content:
        if isinstance(block, str):
            out.append(TextBlock(text=block))
            continue
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text" and isinstance(block.get("text"), str):
            if block["text"]:
                out.append(TextBlock(text=block["text"]))
        elif kind == "tool_use" and isinstance(block.get("id"), str) and isinstance(block.get("name"), str):
            tool_names[block["id"]] = block["name"]
            args = block.get("input")
            out.append(ToolCallBlock(id=block["id"], name=block["name"],
                                     input=args if isinstance(args, dict) else {}))
        elif kind == "tool_result" and isinstance(block.get("tool_use_id"), str):
            call_id = block["tool_use_id"]
            out.append(ToolResultBlock(call_id=call_id, name=tool_names.get(call_id, "tool"),
                                       content=as_text(block.get("content")),
                                       is_error=bool(block.get("is_error"))))
        elif kind in ("thinking", "redacted_thinking"):
            report.skip("claude-code thinking block")
        elif kind in ("image", "document"):
            report.skip(f"claude-code {kind} block")
        else:
            report.skip(f"claude-code content block {kind!r}")
    return out


def _usage(raw: Any) -> Usage | None:
    if not isinstance(raw, dict):
        return None
    read = as_int(raw.get("input_tokens")) + as_int(raw.get("cache_read_input_tokens")) \
        + as_int(raw.get("cache_creation_input_tokens"))
    return Usage(input_tokens=read, output_tokens=as_int(raw.get("output_tokens")))


def _finish(path: Path, s: _Session, summary: str | None, report: ParseReport,
            project_of: Callable[[str], str]) -> m.ImportSession | None:
    messages = []
    for x in s.messages:
        if not x.blocks:
            report.skip("claude-code message with nothing kept (thinking or images only)")
            continue
        messages.append(m.ImportMessage(external_id=x.external_id, role=x.role, content=x.blocks,
                                        created_at=x.created_at, model=x.model, usage=x.usage))
    if not messages:
        report.skip("claude-code session without messages")
        return None
    first_prompt = next((first_text(x.content) for x in messages
                         if x.role == "user" and first_text(x.content)), None)
    metadata = {"imported_from": SOURCE, "source_session": s.id, "source_file": shown(str(path))}
    if s.cwd:
        metadata["cwd"] = s.cwd
    if s.git_branch:
        metadata["git_branch"] = s.git_branch
    if s.version:
        metadata["claude_code_version"] = s.version
    report.sessions += 1
    report.messages += len(messages)
    return m.ImportSession(
        external_id=f"{SOURCE}:{s.id}", sources=[SOURCE],
        title=clip_title(summary) if summary else title_from(first_prompt, f"Claude Code {s.id[:8]}"),
        created_at=min(x.created_at for x in messages),
        project_id=project_of(s.cwd) if s.cwd else None, metadata=metadata, messages=messages)


def _short(exc: Exception) -> str:
    text = str(exc)
    return text if len(text) <= 80 else text[:77] + "..."
