"""Claude Code transcripts: ``~/.claude/projects/<encoded cwd>/<session id>.jsonl``.

One JSON object per line, appended as the session goes (no official schema; this
follows the records Claude Code 1.x and 2.x write):

- ``type: "user" | "assistant"`` with ``message`` (an Anthropic Messages API message:
  ``role``, ``content`` as a string or blocks ``text`` / ``tool_use`` /
  ``tool_result`` / ``thinking`` / ``redacted_thinking`` / ``image``; assistant
  messages add ``id``, ``model`` and ``usage``), plus ``uuid``, ``parentUuid``,
  ``sessionId``, ``timestamp`` (ISO), ``cwd``, ``gitBranch``, ``version``,
  ``isSidechain``, ``agentId`` and ``isMeta``; a tool's result line adds
  ``toolUseResult`` (for a subagent: its ``agentId``).
- One API reply is written as several assistant lines sharing ``message.id``, one
  content block each, and with parallel tool calls the results come in between:
  assistant(X, call A), user(result A), assistant(X, call B), user(result B). Every
  part of X is joined into one message wherever it appears, and the results of its
  calls into the one user message after it, as duologue keeps a tool round.
- ``isApiErrorMessage`` lines (``model: "<synthetic>"``) are Claude Code's own notes
  of a failed request ("API Error: 529 ...", "You've hit your limit ..."): imported
  as failed replies carrying the text as their ``error``, never as a reply.
- Subagents: their lines carry ``isSidechain: true``; Claude Code 2.x writes each to
  ``<session id>/subagents/agent-<agentId>.jsonl``, 1.x inline in the main file.
  Each becomes a session of its own whose metadata links it to its parent (see
  ``link_subagents``); ``agent-acompact-*`` (context compaction) is skipped.
- Titles: ``custom-title`` (``/rename``) wins over ``summary`` / ``ai-title``, which
  win over the first prompt (with Claude Code's command markup cleaned).
- Everything else (``system``, ``file-history-snapshot``, ``queue-operation``,
  ``progress``, …) is bookkeeping of the tool: skipped and counted by type, as are
  meta lines, compaction summaries and images.

Thinking is kept as thinking blocks with Claude's signatures, so the same model can
be sent them back. Usage is read as the live Anthropic provider reads it: uncached
input, cache reads, and 5-minute and 1-hour cache writes apart. Messages are taken in
file order: the ``parentUuid`` tree would also hold branches that a rewind abandoned,
but Claude Code itself writes the live branch last.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec

from duologue.protocol import methods as m
from duologue.protocol.entities import TextBlock, ThinkingBlock, ToolCallBlock, ToolResultBlock, Usage

from .records import (Broken, ParseReport, as_int, as_text, clip_title, parse_time, prompt_title, shown,
                      title_from)

SOURCE = "claude-code"
MESSAGE_TYPES = ("user", "assistant")
SYNTHETIC_MODEL = "<synthetic>"
SPAWNING_TOOLS = ("Task", "Agent")
"""The tools with which a Claude Code model starts a subagent (renamed in 2.x)."""


@dataclass
class _Message:
    external_id: str
    role: str
    blocks: list[Any]
    created_at: datetime
    model: str | None = None
    usage: Usage | None = None
    error: str | None = None
    results: _Message | None = None
    """For a reply with tool calls: the user message holding their results."""


@dataclass
class _Session:
    id: str
    agent: str | None = None
    """The subagent's id, for a sidechain; None for the main conversation."""
    messages: list[_Message] = field(default_factory=list)
    replies: dict[str, _Message] = field(default_factory=dict)
    """API message id -> the message its parts are joined into."""
    calls: dict[str, tuple[str, _Message]] = field(default_factory=dict)
    """Tool call id -> (tool name, the reply that made the call)."""
    spawned: dict[str, str] = field(default_factory=dict)
    """Subagent id -> the tool call that started it."""
    cwd: str | None = None
    git_branch: str | None = None
    version: str | None = None


@dataclass
class _Titles:
    custom: str | None = None
    generated: str | None = None


def parse(path: Path, data: bytes, report: ParseReport,
          project_of: Callable[[str], str]) -> list[m.ImportSession]:
    sessions: dict[tuple[str, str | None], _Session] = {}
    titles = _Titles()
    side_roots: dict[str, str] = {}
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
        if _title_record(rec, titles):
            continue
        if kind not in MESSAGE_TYPES:
            report.skip(f"claude-code record type {kind!r}" if isinstance(kind, str)
                        else "claude-code record without a type")
            continue
        if rec.get("isMeta"):
            report.skip("claude-code meta record")
            continue
        if rec.get("isCompactSummary"):
            report.skip("claude-code compaction summary")
            continue
        agent = _agent_of(rec, side_roots)
        if agent is not None and agent.startswith("acompact"):
            report.skip("claude-code compaction agent record")
            continue
        sid = rec.get("sessionId") if isinstance(rec.get("sessionId"), str) else shown(path.stem)
        session = sessions.setdefault((sid, agent), _Session(sid, agent))
        try:
            _add(session, rec, kind, report)
        except Broken as exc:
            report.broken(path, f"line {lineno}", str(exc))
        except RecursionError:
            report.broken(path, f"line {lineno}", "nested too deeply")
    finished = (_finish(path, x, titles, report, project_of) for x in sessions.values())
    return [s for s in finished if s]


def _title_record(rec: dict[str, Any], titles: _Titles) -> bool:
    kind = rec.get("type")
    if kind == "custom-title" and isinstance(rec.get("customTitle"), str) and rec["customTitle"].strip():
        titles.custom = rec["customTitle"]
    elif kind == "summary" and isinstance(rec.get("summary"), str) and rec["summary"].strip():
        titles.generated = rec["summary"]
    elif kind == "ai-title" and isinstance(rec.get("aiTitle"), str) and rec["aiTitle"].strip():
        titles.generated = rec["aiTitle"]
    else:
        return kind in ("custom-title", "summary", "ai-title")
    return True


def _agent_of(rec: dict[str, Any], side_roots: dict[str, str]) -> str | None:
    """The subagent a line belongs to: its ``agentId`` (2.x), or for a 1.x inline
    sidechain the first line of its chain, so two subagents never mix."""
    if not rec.get("isSidechain"):
        return None
    if isinstance(rec.get("agentId"), str) and rec["agentId"]:
        return rec["agentId"]
    uuid, parent = rec.get("uuid"), rec.get("parentUuid")
    root = side_roots.get(parent) if isinstance(parent, str) else None
    root = root or (uuid if isinstance(uuid, str) else "sidechain")
    if isinstance(uuid, str):
        side_roots[uuid] = root
    return f"sidechain-{root}"


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
    prefix = f"{SOURCE}:{session.id}:" + (f"agent-{session.agent}:" if session.agent else "")
    if kind == "assistant" and (rec.get("isApiErrorMessage") or message.get("model") == SYNTHETIC_MODEL):
        text = as_text(message.get("content")).strip() or str(rec.get("error") or "API error")
        api_id = message.get("id") if isinstance(message.get("id"), str) and message["id"] else uuid
        session.messages.append(_Message(external_id=prefix + api_id, role="assistant", blocks=[],
                                         created_at=created_at, error=text))
        return
    if kind == "assistant":
        _add_reply(session, message, prefix, uuid, created_at, report)
    else:
        _add_prompt(session, rec, message, prefix, uuid, created_at, report)


def _add_reply(session: _Session, message: dict[str, Any], prefix: str, uuid: str, created_at: datetime,
               report: ParseReport) -> None:
    api_id = message.get("id") if isinstance(message.get("id"), str) and message["id"] else None
    blocks = _blocks(message.get("content"), session, report)
    usage = _usage(message.get("usage"))
    reply = session.replies.get(api_id) if api_id else None
    if reply is None:
        model = message.get("model") if isinstance(message.get("model"), str) else None
        reply = _Message(external_id=prefix + (api_id or uuid), role="assistant", blocks=[],
                         created_at=created_at, model=model)
        session.messages.append(reply)
        if api_id:
            session.replies[api_id] = reply
    reply.blocks.extend(blocks)  # the next part of the same reply, wherever it was written
    reply.usage = usage or reply.usage
    for b in blocks:
        if isinstance(b, ToolCallBlock):
            session.calls[b.id] = (b.name, reply)


def _add_prompt(session: _Session, rec: dict[str, Any], message: dict[str, Any], prefix: str, uuid: str,
                created_at: datetime, report: ParseReport) -> None:
    blocks = _blocks(message.get("content"), session, report)
    results = [b for b in blocks if isinstance(b, ToolResultBlock)]
    spawn = rec.get("toolUseResult")
    if results and isinstance(spawn, dict) and isinstance(spawn.get("agentId"), str) and spawn["agentId"]:
        session.spawned[spawn["agentId"]] = results[0].call_id
    owner = session.calls.get(results[0].call_id, ("", None))[1] if results else None
    if owner is not None and len(results) == len(blocks) and owner.results is not None:
        owner.results.blocks.extend(blocks)  # results of later parts of a reply already answered
        return
    prompt = _Message(external_id=prefix + uuid, role="user", blocks=blocks, created_at=created_at)
    session.messages.append(prompt)
    if owner is not None and len(results) == len(blocks):
        owner.results = prompt


def _blocks(content: Any, session: _Session, report: ParseReport) -> list[Any]:
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
            args = block.get("input")
            out.append(ToolCallBlock(id=block["id"], name=block["name"],
                                     input=args if isinstance(args, dict) else {}))
        elif kind == "tool_result" and isinstance(block.get("tool_use_id"), str):
            call_id = block["tool_use_id"]
            out.append(ToolResultBlock(call_id=call_id, name=session.calls.get(call_id, ("tool",))[0],
                                       content=as_text(block.get("content")),
                                       is_error=bool(block.get("is_error"))))
        elif kind == "thinking" and isinstance(block.get("thinking"), str):
            out.append(ThinkingBlock(text=block["thinking"], signature=_opt_str(block.get("signature"))))
        elif kind == "redacted_thinking" and isinstance(block.get("data"), str):
            out.append(ThinkingBlock(redacted=block["data"]))
        elif kind in ("image", "document"):
            report.skip(f"claude-code {kind} block")
        else:
            report.skip(f"claude-code content block {kind!r}")
    return out


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _usage(raw: Any) -> Usage | None:
    """As the live provider reads the API's usage (daemon/providers/anthropic.py)."""
    if not isinstance(raw, dict):
        return None
    written = as_int(raw.get("cache_creation_input_tokens"))
    split = raw.get("cache_creation") if isinstance(raw.get("cache_creation"), dict) else None
    one_hour = as_int(split.get("ephemeral_1h_input_tokens")) if split else 0
    five_min = as_int(split.get("ephemeral_5m_input_tokens")) if split else written
    details = raw.get("output_tokens_details") if isinstance(raw.get("output_tokens_details"), dict) else {}
    return Usage(input_tokens=as_int(raw.get("input_tokens")), output_tokens=as_int(raw.get("output_tokens")),
                 cache_read_tokens=as_int(raw.get("cache_read_input_tokens")),
                 cache_write_tokens=five_min, cache_write_1h_tokens=one_hour,
                 thinking_tokens=as_int(details.get("thinking_tokens")))


def _finish(path: Path, s: _Session, titles: _Titles, report: ParseReport,
            project_of: Callable[[str], str]) -> m.ImportSession | None:
    messages = []
    for x in s.messages:
        if not x.blocks and x.error is None:
            report.skip("claude-code message with nothing kept (images only)")
            continue
        messages.append(m.ImportMessage(
            external_id=x.external_id, role=x.role, content=x.blocks, created_at=x.created_at, model=x.model,
            usage=x.usage, status="failed" if x.error is not None else "complete", error=x.error))
    if not messages:
        report.skip("claude-code session without messages")
        return None
    external_id = f"{SOURCE}:{s.id}"
    metadata = {"imported_from": SOURCE, "source_session": s.id, "source_file": shown(str(path))}
    if s.agent:
        metadata.update(parent_external_id=external_id, subagent=s.agent)
        external_id += f":agent-{s.agent}"
    for key, value in (("cwd", s.cwd), ("git_branch", s.git_branch), ("claude_code_version", s.version)):
        if value:
            metadata[key] = value
    for agent, call in s.spawned.items():
        metadata[f"subagent:{agent}"] = call
    report.sessions += 1
    report.messages += len(messages)
    first_prompt = next((t for x in messages if x.role == "user"
                         for t in [prompt_title(_text(x.content))] if t), None)
    fallback = f"Claude Code subagent {s.agent[:12]}" if s.agent else f"Claude Code {s.id[:8]}"
    title = None if s.agent else (titles.custom or titles.generated)
    return m.ImportSession(
        external_id=external_id, sources=[SOURCE],
        title=clip_title(title) if title else title_from(first_prompt, fallback),
        created_at=min(x.created_at for x in messages),
        project_id=project_of(s.cwd) if s.cwd else None, metadata=metadata, messages=messages)


def link_subagents(sessions: list[m.ImportSession]) -> list[m.ImportSession]:
    """Each subagent's session told which tool call of its parent started it (the
    parent's result line names the subagent; the subagent's own file does not)."""
    spawns = {(s.metadata.get("source_session"), key.removeprefix("subagent:")): call
              for s in sessions for key, call in s.metadata.items() if key.startswith("subagent:")}
    out = []
    for s in sessions:
        agent = s.metadata.get("subagent")
        call = spawns.get((s.metadata.get("source_session"), agent)) if agent else None
        if call:
            s = msgspec.structs.replace(s, metadata={**s.metadata, "parent_tool_call": call})
        out.append(s)
    return out


def _text(blocks: list[Any]) -> str:
    return "\n".join(b.text for b in blocks if isinstance(b, TextBlock))


def _short(exc: Exception) -> str:
    text = str(exc)
    return text if len(text) <= 80 else text[:77] + "..."
