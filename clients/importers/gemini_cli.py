"""Gemini CLI sessions and checkpoints, under ``~/.gemini/tmp/<project>/``.

The shapes are the ones Gemini CLI's writers produce (google-gemini/gemini-cli:
packages/core/src/services/chatRecordingService.ts and chatRecordingTypes.ts,
core/logger.ts, utils/checkpointUtils.ts); where the project folder is and which
project it names is ``gemini_projects``:

- ``chats/session-<time>-<id>.jsonl`` (and ``.json``, from older releases, the same
  as one document): a ``ConversationRecord``: ``sessionId``, ``projectHash``,
  ``startTime``, ``lastUpdated``, ``summary?``, ``kind?`` and ``messages``, each
  ``{id, timestamp, type, content}`` where ``type`` is ``user``, ``gemini`` (adding
  ``model``, ``tokens``, ``thoughts`` and ``toolCalls`` with their results),
  ``error`` (the CLI's note of a failed request: imported as a failed reply whose
  ``error`` is the text, as Claude Code's synthetic error lines are) or ``info`` /
  ``warning`` (the CLI's own notes, skipped). In the line
  format a later record with the same ``id`` replaces the message, ``{"$rewindTo":
  id}`` drops that message and every later one, ``{"$set": {...}}`` updates the
  metadata, and a ``$set`` holding ``messages`` rewrites the whole history.
- ``chats/<parent session id>/<id>.jsonl``: a subagent's session (``kind:
  "subagent"``), imported as a session of its own linked to its parent.
- ``checkpoint-<tag>.json`` (``/chat save <tag>``): ``{"history": [Content]}`` or,
  from older releases, the bare list of Gemini API contents.
- ``checkpoints/<time>-<file>-<tool>.json`` (``/restore`` points, written before a
  tool edits a file): ``clientHistory`` (the Gemini API contents up to the edit),
  ``toolCall``, ``commitHash``, and ``history`` (the UI's items, not a conversation:
  ignored). Checkpoints hold no times and no model: messages get the time in the
  file name (or the file's modification time) and no model.

A reply's content is the source of truth in current releases (thought parts with
their ``thoughtSignature``, function calls); older records keep thoughts and calls
only in ``thoughts`` / ``toolCalls``. Thoughts become thinking blocks, a tool call a
``tool_call`` block in the reply and its result a ``tool_result`` block in a user
message right after it, as duologue stores its own tool rounds. ``tokens`` is read as
the live Gemini provider reads usage: the cached part of the prompt apart, thoughts
counted as output.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from duologue.protocol import methods as m
from duologue.protocol.entities import TextBlock, ThinkingBlock, ToolCallBlock, ToolResultBlock, Usage

from .records import (Broken, ParseReport, as_int, as_text, clip_title, parse_time, prompt_title, shown,
                      title_from)

SOURCE = "gemini-cli"
NOTE_TYPES = ("info", "warning")
PREAMBLE = "This is the Gemini CLI. We are setting up the context for our chat."
CONTEXT_TURNS = ("<session_context>", "<hook_context>")
"""How Gemini CLI's own set-up turns begin (not the person's words)."""
_RESTORE_NAME = re.compile(r"(\d{4}-\d{2}-\d{2})T(\d{2})-(\d{2})-(\d{2})_(\d{3})Z-(.*)")

ProjectResolver = Callable[[Path, "str | None"], "str | None"]
"""(file, project hash) -> the project's path, when it can be known."""


@dataclass
class _Calls:
    """The calls of one conversation: id -> name (a response without an id answers the
    last call of its name), and the ids whose results are already kept."""

    names: dict[str, str] = field(default_factory=dict)
    answered: set[str] = field(default_factory=set)


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
            update = dict(rec["$set"])
            if isinstance(update.get("messages"), list):
                _rewrite(records, update.pop("messages"), f"line {lineno}", report)
            meta.update(update)
        elif isinstance(rec.get("id"), str):
            records[rec["id"]] = (f"line {lineno}", rec)
        elif isinstance(rec.get("sessionId"), str):
            if isinstance(rec.get("messages"), list):  # a whole legacy record on one line
                _rewrite(records, rec["messages"], f"line {lineno}", report)
            meta.update({k: v for k, v in rec.items() if k != "messages"})
        else:
            report.skip("gemini-cli record of an unknown kind")
    if not isinstance(meta.get("sessionId"), str):
        meta["sessionId"] = shown(path.stem)
    return _session(path, meta, list(records.values()), report, resolve)


def _rewrite(records: dict[str, tuple[str, dict[str, Any]]], messages: list[Any], where: str,
             report: ParseReport) -> None:
    """A full-history rewrite: the messages it lists replace every earlier one."""
    new = {x["id"]: (f"{where} $set.messages[{i}]", x) for i, x in enumerate(messages)
           if isinstance(x, dict) and isinstance(x.get("id"), str)}
    report.skip("gemini-cli message dropped by a full-history rewrite", len(set(records) - set(new)))
    records.clear()
    records.update(new)


def _session(path: Path, meta: dict[str, Any], records: list[tuple[str, Any]], report: ParseReport,
             resolve: ProjectResolver) -> list[m.ImportSession]:
    sid = str(meta.get("sessionId") or shown(path.stem))
    external_id = f"{SOURCE}:{sid}"
    calls = _Calls()
    messages: list[m.ImportMessage] = []
    for where, rec in records:
        try:
            messages.extend(_message(external_id, rec, calls, report))
        except Broken as exc:
            report.broken(path, where, str(exc))
        except RecursionError:
            report.broken(path, where, "nested too deeply")
    project_hash = meta.get("projectHash") if isinstance(meta.get("projectHash"), str) else None
    summary = meta.get("summary") if isinstance(meta.get("summary"), str) else None
    extra = {}
    if meta.get("kind") == "subagent":
        parent = path.parent.name if path.parent.name != "chats" else None
        extra = {"subagent": sid, **({"parent_external_id": f"{SOURCE}:{parent}"} if parent else {})}
    return _finish(path, external_id, sid, messages, summary, project_hash, report, resolve, extra)


def _message(prefix: str, rec: Any, calls: _Calls, report: ParseReport) -> list[m.ImportMessage]:
    if not isinstance(rec, dict):
        raise Broken("a message that is not a JSON object")
    kind = rec.get("type")
    if kind == "error" and isinstance(rec.get("id"), str):
        # the CLI's note of a failed request: a failed reply, its text the error
        error = _text(_parts(rec.get("content"), calls, report)).strip() or "error"
        return [m.ImportMessage(external_id=f"{prefix}:{rec['id']}", role="assistant", content=[],
                                created_at=parse_time(rec.get("timestamp")), status="failed", error=error)]
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
    blocks = _parts(rec.get("content"), calls, report)
    ext = f"{prefix}:{mid}"
    if kind == "user":
        if _set_up_turn(blocks, report):
            return []
        if blocks and all(isinstance(b, ToolResultBlock) and b.call_id in calls.answered for b in blocks):
            report.skip("gemini-cli tool response turn (its results are kept with the call)")
            return []
        return [m.ImportMessage(external_id=ext, role="user", content=blocks, created_at=created_at)]
    if not any(isinstance(b, ThinkingBlock) for b in blocks):
        blocks[:0] = _thoughts(rec.get("thoughts"))
    results, result_time = _tool_calls(rec.get("toolCalls"), blocks, calls, created_at, report)
    model = rec.get("model") if isinstance(rec.get("model"), str) else None
    out = [m.ImportMessage(external_id=ext, role="assistant", content=blocks, created_at=created_at,
                           model=model, usage=_usage(rec.get("tokens")))]
    if results:
        out.append(m.ImportMessage(external_id=ext + ":results", role="user", content=results,
                                   created_at=result_time))
    return out


def _set_up_turn(blocks: list[Any], report: ParseReport) -> bool:
    text = _text(blocks).lstrip()
    if text.startswith(CONTEXT_TURNS) or text.startswith(PREAMBLE):
        report.skip("gemini-cli context set-up turn")
        return True
    return False


def _thoughts(raw: Any) -> list[ThinkingBlock]:
    """Thought summaries as Gemini CLI split them (utils/thoughtUtils.ts: a bold
    ``**subject**`` and the rest), put back together as the model wrote them."""
    out = []
    for t in raw if isinstance(raw, list) else []:
        if not isinstance(t, dict):
            continue
        subject = t.get("subject") if isinstance(t.get("subject"), str) else ""
        description = t.get("description") if isinstance(t.get("description"), str) else ""
        text = f"**{subject}**\n\n{description}" if subject else description
        if text:
            out.append(ThinkingBlock(text=text))
    return out


def _tool_calls(raw: Any, blocks: list[Any], calls: _Calls, created_at: datetime,
                report: ParseReport) -> tuple[list[ToolResultBlock], datetime]:
    """The recorded calls' results (and the calls, for records whose content lacks them)."""
    in_content = {b.id for b in blocks if isinstance(b, ToolCallBlock)}
    results = []
    result_time = created_at
    for call in raw or []:
        if not isinstance(call, dict) or not isinstance(call.get("id"), str) \
                or not isinstance(call.get("name"), str):
            report.skip("gemini-cli tool call without an id or name")
            continue
        if call["id"] not in in_content:
            args = call.get("args")
            blocks.append(ToolCallBlock(id=call["id"], name=call["name"],
                                        input=args if isinstance(args, dict) else {}))
            calls.names[call["id"]] = call["name"]
        display = call.get("resultDisplay") if isinstance(call.get("resultDisplay"), str) else None
        if call.get("result") is None and display is None:
            continue  # never answered (the round was cut short): no result to keep
        output = _result_text(call.get("result")) or display or ""
        results.append(ToolResultBlock(call_id=call["id"], name=call["name"], content=output,
                                       is_error=call.get("status") in ("error", "cancelled")))
        calls.answered.add(call["id"])
        try:
            result_time = max(result_time, parse_time(call.get("timestamp")))
        except Broken:
            pass
    return results, result_time


def _usage(tokens: Any) -> Usage | None:
    """As the live provider reads ``usageMetadata`` (daemon/providers/gemini.py)."""
    if not isinstance(tokens, dict):
        return None
    cached, thoughts = as_int(tokens.get("cached")), as_int(tokens.get("thoughts"))
    return Usage(input_tokens=max(0, as_int(tokens.get("input")) - cached),
                 output_tokens=as_int(tokens.get("output")) + thoughts,
                 cache_read_tokens=cached, thinking_tokens=thoughts)


# --- checkpoints -----------------------------------------------------------------------


def parse_checkpoint(path: Path, doc: Any, mtime: datetime, report: ParseReport,
                     resolve: ProjectResolver) -> list[m.ImportSession]:
    """A ``/chat save`` file."""
    history = doc.get("history") if isinstance(doc, dict) else doc
    if not isinstance(history, list):
        report.broken(path, None, "a Gemini CLI checkpoint without a history list")
        return []
    tag = unquote(path.stem.removeprefix("checkpoint-"))
    key = f"checkpoint:{path.parent.name}/{tag}"
    messages = _contents(path, f"{SOURCE}:{key}", history, "history", mtime, report)
    return _finish(path, f"{SOURCE}:{key}", key, messages, f"Gemini CLI checkpoint {tag}", None, report,
                   resolve)


def parse_restore_point(path: Path, doc: dict[str, Any], mtime: datetime, report: ParseReport,
                        resolve: ProjectResolver) -> list[m.ImportSession]:
    """A ``/restore`` point: the conversation in ``clientHistory`` up to a file edit."""
    history = doc.get("clientHistory")
    if not isinstance(history, list):
        report.broken(path, None, "a Gemini CLI restore point without a clientHistory list")
        return []
    named = _RESTORE_NAME.fullmatch(path.stem)
    when = (datetime.fromisoformat(f"{named[1]}T{named[2]}:{named[3]}:{named[4]}.{named[5]}+00:00")
            if named else mtime)
    tool = doc.get("toolCall") if isinstance(doc.get("toolCall"), dict) else {}
    args = tool.get("args") if isinstance(tool.get("args"), dict) else {}
    edited = args.get("file_path") if isinstance(args.get("file_path"), str) else (named[6] if named else "")
    key = f"restore:{path.parent.parent.name}/{path.stem}"
    messages = _contents(path, f"{SOURCE}:{key}", history, "clientHistory", when, report)
    extra = {"gemini_restore_point": path.stem}
    if isinstance(doc.get("commitHash"), str):
        extra["git_commit"] = doc["commitHash"]
    title = f"Gemini CLI restore point before {tool.get('name') or 'an edit'} of {Path(edited).name or 'a file'}"
    return _finish(path, f"{SOURCE}:{key}", key, messages, title, None, report, resolve, extra)


def _contents(path: Path, prefix: str, history: list[Any], field_name: str, when: datetime,
              report: ParseReport) -> list[m.ImportMessage]:
    """Gemini API contents (role ``user`` / ``model`` with parts) as messages."""
    calls = _Calls()
    messages: list[m.ImportMessage] = []
    preamble = False
    for i, content in enumerate(history):
        where = f"{field_name}[{i}]"
        if not isinstance(content, dict) or content.get("role") not in ("user", "model"):
            report.broken(path, where, "not a Gemini content with role user or model")
            continue
        blocks = _parts(content.get("parts"), calls, report)
        if content["role"] == "user" and _set_up_turn(blocks, report):
            preamble = _text(blocks).lstrip().startswith(PREAMBLE)
            continue
        if preamble and content["role"] == "model":  # the older set-up's "Got it" reply
            preamble = False
            report.skip("gemini-cli context set-up turn")
            continue
        preamble = False
        messages.append(m.ImportMessage(
            external_id=f"{prefix}:{i}", role="assistant" if content["role"] == "model" else "user",
            content=blocks, created_at=when))
    return messages


# --- parts -----------------------------------------------------------------------------


def _parts(content: Any, calls: _Calls, report: ParseReport) -> list[Any]:
    """Gemini API parts (or a plain string) as content blocks, thought signatures kept
    where the live provider keeps them."""
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
            signature = part.get("thoughtSignature") if isinstance(part.get("thoughtSignature"), str) else None
            if part.get("thought"):
                out.append(ThinkingBlock(text=part["text"], signature=signature))
            elif part["text"] or signature:
                out.append(TextBlock(text=part["text"], signature=signature))
        elif isinstance(part.get("functionCall"), dict):
            call = part["functionCall"]
            name = str(call.get("name") or "tool")
            call_id = str(call.get("id") or f"{name}-{len(calls.names) + 1}")
            calls.names[call_id] = name
            args = call.get("args")
            signature = part.get("thoughtSignature") if isinstance(part.get("thoughtSignature"), str) else None
            out.append(ToolCallBlock(id=call_id, name=name, input=args if isinstance(args, dict) else {},
                                     signature=signature))
        elif isinstance(part.get("functionResponse"), dict):
            resp = part["functionResponse"]
            name = str(resp.get("name") or "tool")
            call_id = resp.get("id") if isinstance(resp.get("id"), str) else None
            if call_id is None:
                call_id = next((i for i, n in reversed(calls.names.items()) if n == name), f"{name}-result")
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


def _text(blocks: list[Any]) -> str:
    return "\n".join(b.text for b in blocks if isinstance(b, TextBlock))


# --- sessions --------------------------------------------------------------------------


def _finish(path: Path, external_id: str, sid: str, messages: list[m.ImportMessage], summary: str | None,
            project_hash: str | None, report: ParseReport, resolve: ProjectResolver,
            extra: dict[str, str] | None = None) -> list[m.ImportSession]:
    kept = []
    for x in messages:
        if x.content or x.error is not None:
            kept.append(x)
        else:
            report.skip("gemini-cli message with nothing kept (files only)")
    if not kept:
        report.skip("gemini-cli session without messages")
        return []
    first_prompt = next((t for x in kept if x.role == "user" for t in [prompt_title(_text(x.content))] if t), None)
    title = clip_title(summary) if summary else title_from(first_prompt, f"Gemini CLI {sid[:8]}")
    metadata = {"imported_from": SOURCE, "source_session": sid, "source_file": shown(str(path)), **(extra or {})}
    if project_hash:
        metadata["gemini_project_hash"] = project_hash
    report.sessions += 1
    report.messages += len(kept)
    return [m.ImportSession(external_id=external_id, sources=[SOURCE], title=title,
                            created_at=min(x.created_at for x in kept), project_id=resolve(path, project_hash),
                            metadata=metadata, messages=kept)]


def file_time(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)
