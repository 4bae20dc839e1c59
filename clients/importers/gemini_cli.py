"""Gemini CLI saved chats and checkpoints, under ``~/.gemini/tmp/<project hash>/``.

Three shapes, all written by Gemini CLI's ``ChatRecordingService`` and ``Logger``
(google-gemini/gemini-cli, packages/core/src/services/chatRecording*.ts and
packages/core/src/core/logger.ts); the project hash is the SHA-256 of the project root:

- ``chats/session-<time>-<id>.json`` (older releases): one ``ConversationRecord``:
  ``sessionId``, ``projectHash``, ``startTime``, ``lastUpdated``, ``summary?`` and
  ``messages``, each ``{id, timestamp, type, content}`` where ``type`` is ``user``,
  ``gemini`` (adding ``model``, ``tokens``, ``thoughts`` and ``toolCalls`` with their
  results) or ``info`` / ``error`` / ``warning`` (the CLI's own notes, skipped).
  ``content`` is a string or Gemini API parts.
- ``chats/session-*.jsonl`` (newer releases): the same, one record per line: a first
  metadata line, message records (a later line with the same ``id`` replaces the
  message), ``{"$set": {...}}`` metadata updates and ``{"$rewindTo": id}``, which
  drops that message and every later one.
- ``checkpoint-<tag>.json`` (``/chat save <tag>``): ``{"history": [Content]}`` or,
  from older releases, the bare list: Gemini API contents, ``role`` ``user`` or
  ``model`` with ``parts``. They hold no times and no model: every message gets the
  file's modification time and no model.

A tool call becomes a ``tool_call`` block in the reply and its result a ``tool_result``
block in a user message right after it, as duologue stores its own tool rounds.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from duologue.protocol import methods as m
from duologue.protocol.entities import TextBlock, ToolCallBlock, ToolResultBlock, Usage

from .records import (Broken, ParseReport, as_int, as_text, clip_title, first_text, parse_time, shown,
                      title_from)

SOURCE = "gemini-cli"
NOTE_TYPES = ("info", "error", "warning")
PREAMBLE = "This is the Gemini CLI. We are setting up the context for our chat."

ProjectResolver = Callable[[str | None], str | None]
"""Project hash -> the project's path, when one of the known paths hashes to it."""


# --- chat sessions ---------------------------------------------------------------------


def parse_session_json(path: Path, doc: dict[str, Any], report: ParseReport,
                       resolve: ProjectResolver) -> list[m.ImportSession]:
    records = doc.get("messages")
    if not isinstance(records, list):
        report.broken(path, None, "a Gemini CLI session without a messages list")
        return []
    indexed = [(f"messages[{i}]", r) for i, r in enumerate(records)]
    return _session(path, doc, indexed, report, resolve)


def parse_session_jsonl(path: Path, data: bytes, report: ParseReport,
                        resolve: ProjectResolver) -> list[m.ImportSession]:
    meta: dict[str, Any] = {}
    records: dict[str, tuple[str, dict[str, Any]]] = {}
    for lineno, raw in enumerate(data.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            rec = json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            report.broken(path, f"line {lineno}", "not valid JSON" + (
                " (nested too deeply)" if isinstance(exc, RecursionError) else ""))
            continue
        if not isinstance(rec, dict):
            report.broken(path, f"line {lineno}", "not a JSON object")
        elif isinstance(rec.get("$rewindTo"), str):
            ids = list(records)
            cut = ids.index(rec["$rewindTo"]) if rec["$rewindTo"] in ids else 0
            for dropped in ids[cut:]:
                del records[dropped]
            report.skip("gemini-cli message undone by a rewind", len(ids) - cut)
        elif isinstance(rec.get("$set"), dict):
            meta.update(rec["$set"])
        elif isinstance(rec.get("id"), str):
            records[rec["id"]] = (f"line {lineno}", rec)
        elif isinstance(rec.get("sessionId"), str):
            meta.update(rec)
        else:
            report.skip("gemini-cli record of an unknown kind")
    if not isinstance(meta.get("sessionId"), str):
        meta["sessionId"] = shown(path.stem)
    return _session(path, meta, list(records.values()), report, resolve)


def _session(path: Path, meta: dict[str, Any], records: list[tuple[str, Any]], report: ParseReport,
             resolve: ProjectResolver) -> list[m.ImportSession]:
    sid = str(meta.get("sessionId") or shown(path.stem))
    messages: list[m.ImportMessage] = []
    for where, rec in records:
        try:
            messages.extend(_message(sid, rec, report))
        except Broken as exc:
            report.broken(path, where, str(exc))
        except RecursionError:
            report.broken(path, where, "nested too deeply")
    project_hash = meta.get("projectHash") if isinstance(meta.get("projectHash"), str) else None
    summary = meta.get("summary") if isinstance(meta.get("summary"), str) else None
    return _finish(path, f"{SOURCE}:{sid}", sid, messages, summary, project_hash, report, resolve)


def _message(sid: str, rec: Any, report: ParseReport) -> list[m.ImportMessage]:
    if not isinstance(rec, dict):
        raise Broken("a message that is not a JSON object")
    kind = rec.get("type")
    if kind in NOTE_TYPES:
        report.skip(f"gemini-cli {kind} note")
        return []
    if kind not in ("user", "gemini"):
        report.skip(f"gemini-cli message type {kind!r}")
        return []
    mid = rec.get("id")
    if not isinstance(mid, str) or not mid:
        raise Broken(f"{kind} message without an id")
    created_at = parse_time(rec.get("timestamp"))
    calls: dict[str, str] = {}
    blocks = _parts(rec.get("content"), calls, report)
    ext = f"{SOURCE}:{sid}:{mid}"
    if kind == "user":
        return [m.ImportMessage(external_id=ext, role="user", content=blocks, created_at=created_at)]
    thoughts = rec.get("thoughts")
    report.skip("gemini-cli thought summary", len(thoughts) if isinstance(thoughts, list) else 0)
    results = []
    result_time = created_at
    for call in rec.get("toolCalls") or []:
        if not isinstance(call, dict) or not isinstance(call.get("id"), str) \
                or not isinstance(call.get("name"), str):
            report.skip("gemini-cli tool call without an id or name")
            continue
        args = call.get("args")
        blocks.append(ToolCallBlock(id=call["id"], name=call["name"], input=args if isinstance(args, dict) else {}))
        output = _result_text(call.get("result"))
        if not output and isinstance(call.get("resultDisplay"), str):
            output = call["resultDisplay"]
        results.append(ToolResultBlock(call_id=call["id"], name=call["name"], content=output,
                                       is_error=call.get("status") in ("error", "cancelled")))
        try:
            result_time = max(result_time, parse_time(call.get("timestamp")))
        except Broken:
            pass
    tokens = rec.get("tokens")
    usage = (Usage(input_tokens=as_int(tokens.get("input")), output_tokens=as_int(tokens.get("output")))
             if isinstance(tokens, dict) else None)
    model = rec.get("model") if isinstance(rec.get("model"), str) else None
    out = [m.ImportMessage(external_id=ext, role="assistant", content=blocks, created_at=created_at,
                           model=model, usage=usage)]
    if results:
        out.append(m.ImportMessage(external_id=ext + ":results", role="user", content=results,
                                   created_at=result_time))
    return out


# --- checkpoints -----------------------------------------------------------------------


def parse_checkpoint(path: Path, doc: Any, mtime: datetime, report: ParseReport,
                     resolve: ProjectResolver) -> list[m.ImportSession]:
    history = doc.get("history") if isinstance(doc, dict) else doc
    if not isinstance(history, list):
        report.broken(path, None, "a Gemini CLI checkpoint without a history list")
        return []
    tag = unquote(path.stem.removeprefix("checkpoint-"))
    key = f"checkpoint:{path.parent.name}/{tag}"
    calls: dict[str, str] = {}
    messages: list[m.ImportMessage] = []
    preamble = 0
    for i, content in enumerate(history):
        where = f"history[{i}]"
        if not isinstance(content, dict) or content.get("role") not in ("user", "model"):
            report.broken(path, where, "not a Gemini content with role user or model")
            continue
        blocks = _parts(content.get("parts"), calls, report)
        text = first_text(blocks) or ""
        if i == 0 and content["role"] == "user" and text.startswith(PREAMBLE):
            preamble = 1
            report.skip("gemini-cli context set-up turn")
            continue
        if i == 1 and preamble:
            report.skip("gemini-cli context set-up turn")
            continue
        messages.append(m.ImportMessage(
            external_id=f"{SOURCE}:{key}:{i}", role="assistant" if content["role"] == "model" else "user",
            content=blocks, created_at=mtime))
    project_hash = path.parent.name if _is_hash(path.parent.name) else None
    return _finish(path, f"{SOURCE}:{key}", key, messages, f"Gemini CLI checkpoint {tag}",
                   project_hash, report, resolve)


# --- parts -----------------------------------------------------------------------------


def _parts(content: Any, calls: dict[str, str], report: ParseReport) -> list[Any]:
    """Gemini API parts (or a plain string) as content blocks. ``calls`` maps a call's
    id to its name and matches responses without an id to the last call of the name."""
    if isinstance(content, (str, dict)):
        content = [content]
    if not isinstance(content, list):
        return []
    out: list[Any] = []
    for part in content:
        if isinstance(part, str):
            if part:
                out.append(TextBlock(text=part))
        elif not isinstance(part, dict):
            report.skip("gemini-cli part of an unknown kind")
        elif isinstance(part.get("text"), str):
            if part.get("thought"):
                report.skip("gemini-cli thought part")
            elif part["text"]:
                out.append(TextBlock(text=part["text"]))
        elif isinstance(part.get("functionCall"), dict):
            call = part["functionCall"]
            name = str(call.get("name") or "tool")
            call_id = str(call.get("id") or f"{name}-{len(calls) + 1}")
            calls[call_id] = name
            args = call.get("args")
            out.append(ToolCallBlock(id=call_id, name=name, input=args if isinstance(args, dict) else {}))
        elif isinstance(part.get("functionResponse"), dict):
            resp = part["functionResponse"]
            name = str(resp.get("name") or "tool")
            call_id = resp.get("id") if isinstance(resp.get("id"), str) else None
            if call_id is None:
                call_id = next((i for i, n in reversed(calls.items()) if n == name), f"{name}-result")
            out.append(ToolResultBlock(call_id=call_id, name=name, content=_response_text(resp.get("response")),
                                       is_error=isinstance(resp.get("response"), dict) and "error" in resp["response"]))
        elif "inlineData" in part or "fileData" in part:
            report.skip("gemini-cli inline data or file part")
        else:
            report.skip("gemini-cli part of an unknown kind")
    return out


def _response_text(response: Any) -> str:
    if isinstance(response, dict):
        for key in ("output", "error", "content"):
            if key in response:
                return as_text(response[key])
    return as_text(response)


def _result_text(result: Any) -> str:
    """A recorded tool result (Gemini parts) as text."""
    if isinstance(result, dict):
        result = [result]
    if not isinstance(result, list):
        return as_text(result)
    texts = []
    for part in result:
        if isinstance(part, dict) and isinstance(part.get("functionResponse"), dict):
            texts.append(_response_text(part["functionResponse"].get("response")))
        elif isinstance(part, dict) and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif isinstance(part, str):
            texts.append(part)
    return "\n".join(t for t in texts if t)


# --- sessions --------------------------------------------------------------------------


def _finish(path: Path, external_id: str, sid: str, messages: list[m.ImportMessage], summary: str | None,
            project_hash: str | None, report: ParseReport, resolve: ProjectResolver) -> list[m.ImportSession]:
    kept = []
    for x in messages:
        if x.content:
            kept.append(x)
        else:
            report.skip("gemini-cli message with nothing kept (thoughts or files only)")
    if not kept:
        report.skip("gemini-cli session without messages")
        return []
    first_prompt = next((first_text(x.content) for x in kept if x.role == "user" and first_text(x.content)), None)
    title = clip_title(summary) if summary else title_from(first_prompt, f"Gemini CLI {sid[:8]}")
    metadata = {"imported_from": SOURCE, "source_session": sid, "source_file": shown(str(path))}
    if project_hash:
        metadata["gemini_project_hash"] = project_hash
    report.sessions += 1
    report.messages += len(kept)
    return [m.ImportSession(external_id=external_id, sources=[SOURCE], title=title,
                            created_at=min(x.created_at for x in kept), project_id=resolve(project_hash),
                            metadata=metadata, messages=kept)]


def file_time(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)


def _is_hash(name: str) -> bool:
    return len(name) == 64 and all(c in "0123456789abcdef" for c in name)
