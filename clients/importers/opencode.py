"""opencode sessions, from ``$XDG_DATA_HOME/opencode`` (``~/.local/share/opencode``).

Read as opencode's own code stores them (anomalyco/opencode,
packages/opencode/src/session/session.sql.ts and message-v2.ts):

- ``opencode.db`` (current releases; a release channel's is ``opencode-<channel>.db``): SQLite tables ``session`` (``id``,
  ``parent_id``, ``directory``, ``title``, ``time_created``, ...), ``message``
  (``id``, ``session_id``, ``time_created``, ``data``: the message info as JSON) and
  ``part`` (``id``, ``message_id``, ``data``: the part as JSON, in ``id`` order). Read
  only, never written.
- ``storage/`` (older releases): the same records as files:
  ``session/<project>/<id>.json``, ``message/<session>/<id>.json``,
  ``part/<message>/<id>.json``.

A message info is ``role: "user"`` or ``"assistant"`` (adding ``modelID``,
``providerID``, ``tokens {input, output, reasoning, cache {read, write}}`` with input
already uncached, and ``error {name, data {message}}``); its parts are ``text``,
``reasoning`` (thinking; the provider's signature in ``metadata``), ``tool``
(``callID``, ``tool``, ``state {status, input, output | error}``), ``file``,
``step-start`` / ``step-finish``, ``snapshot``, ``patch``, ``agent``, ``subtask``,
``retry`` and ``compaction``. A tool part becomes a call in the reply and its result
in a user message after it; text opencode made itself (``synthetic``, ``ignored``)
and files, steps, snapshots and patches are skipped and counted. A session with a
``parent_id`` (a subagent's) is linked to its parent.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from duologue.protocol import methods as m
from duologue.protocol.entities import TextBlock, ThinkingBlock, ToolCallBlock, ToolResultBlock, Usage

from .records import ParseReport, as_int, clip_title, prompt_title, shown, title_from

SOURCE = "opencode"
SKIPPED_PARTS = ("file", "step-start", "step-finish", "snapshot", "patch", "agent", "subtask", "retry", "compaction")

Record = tuple[dict[str, Any], list[tuple[dict[str, Any], list[dict[str, Any]]]]]
"""A session's info and its messages, each with its parts, in order."""


def stores(root: Path) -> list[Path]:
    """The opencode databases and ``storage`` folders at or under ``root``."""
    if root.is_file():
        return [root] if _is_database(root) else []
    found = [p for p in root.rglob("opencode*.db") if p.is_file()]
    found += [p for p in (root, *root.rglob("storage")) if p.name == "storage" and _is_tree(p)]
    return sorted(found)


def _is_tree(folder: Path) -> bool:
    return (folder / "session").is_dir() and (folder / "message").is_dir()


def _is_database(path: Path) -> bool:
    """``opencode.db``, or a release channel's own (``opencode-beta.db``)."""
    return path.name.startswith("opencode") and path.suffix == ".db"


def parse(store: Path, report: ParseReport, project_of: Callable[[str], str]) -> list[m.ImportSession]:
    try:
        records = list(_from_database(store) if store.is_file() else _from_files(store, report))
    except (sqlite3.Error, OSError) as exc:
        report.broken(store, None, f"unreadable opencode store: {exc}")
        return []
    out = [s for s in (_session(store, info, messages, report, project_of) for info, messages in records) if s]
    return sorted(out, key=lambda s: "parent_external_id" in s.metadata)


def _from_database(path: Path) -> Iterator[Record]:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        sessions = con.execute("SELECT id, parent_id, directory, title, time_created FROM session "
                               "ORDER BY time_created, id").fetchall()
        for sid, parent, directory, title, created in sessions:
            info = {"id": sid, "parentID": parent, "directory": directory, "title": title,
                    "time": {"created": created}}
            messages = []
            for mid, data in con.execute("SELECT id, data FROM message WHERE session_id = ? "
                                         "ORDER BY time_created, id", (sid,)):
                parts = [_json(d) for (d,) in con.execute("SELECT data FROM part WHERE message_id = ? ORDER BY id",
                                                          (mid,))]
                messages.append(({**_json(data), "id": mid}, [p for p in parts if p]))
            yield info, messages
    finally:
        con.close()


def _from_files(storage: Path, report: ParseReport) -> Iterator[Record]:
    for path in sorted((storage / "session").glob("*/*.json")):
        info = _read(path, report)
        if not isinstance(info.get("id"), str):
            continue
        messages = []
        for mpath in (storage / "message" / info["id"]).glob("*.json"):
            message = _read(mpath, report)
            if isinstance(message.get("id"), str):
                parts = [_read(p, report) for p in sorted((storage / "part" / message["id"]).glob("*.json"))]
                messages.append((message, [p for p in parts if p]))
        messages.sort(key=lambda x: (as_int((x[0].get("time") or {}).get("created")), x[0]["id"]))
        yield info, messages


def _read(path: Path, report: ParseReport) -> dict[str, Any]:
    try:
        value = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError) as exc:
        report.broken(path, None, f"not a readable JSON record ({str(exc)[:60]})")
        return {}
    report.files += 1
    return value if isinstance(value, dict) else {}


def _json(raw: Any) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (TypeError, ValueError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {}


def _time(ms: Any) -> datetime:
    return datetime.fromtimestamp(as_int(ms) / 1000, timezone.utc)


def _session(store: Path, info: dict[str, Any], records: list[tuple[dict[str, Any], list[dict[str, Any]]]],
             report: ParseReport, project_of: Callable[[str], str]) -> m.ImportSession | None:
    sid = str(info["id"])
    prefix = f"{SOURCE}:{sid}"
    messages: list[m.ImportMessage] = []
    for message, parts in records:
        messages += _message(prefix, message, parts, report)
    if not messages:
        report.skip("opencode session without messages")
        return None
    metadata = {"imported_from": SOURCE, "source_session": sid, "source_file": shown(str(store))}
    directory = info.get("directory") if isinstance(info.get("directory"), str) and info["directory"] else None
    if directory:
        metadata["cwd"] = directory
    if isinstance(info.get("parentID"), str) and info["parentID"]:
        metadata["parent_external_id"] = f"{SOURCE}:{info['parentID']}"
    report.sessions += 1
    report.messages += len(messages)
    first_prompt = next((t for x in messages if x.role == "user"
                         for t in [prompt_title("".join(b.text for b in x.content if isinstance(b, TextBlock)))]
                         if t), None)
    title = info.get("title") if isinstance(info.get("title"), str) and info["title"].strip() else None
    return m.ImportSession(external_id=prefix, sources=[SOURCE],
                           title=clip_title(title) if title else title_from(first_prompt, f"opencode {sid[:12]}"),
                           created_at=min(x.created_at for x in messages),
                           project_id=project_of(directory) if directory else None, metadata=metadata,
                           messages=messages)


def _message(prefix: str, info: dict[str, Any], parts: list[dict[str, Any]],
             report: ParseReport) -> list[m.ImportMessage]:
    role = info.get("role")
    times = info.get("time") if isinstance(info.get("time"), dict) else {}
    created = _time(times.get("created"))
    ext = f"{prefix}:{info['id']}"
    if role == "user":
        step = _Step()
        for part in parts:
            step.add(part, role, report)
        return [m.ImportMessage(external_id=ext, role="user", content=step.blocks, created_at=created)] \
            if step.blocks else []
    if role != "assistant":
        report.skip(f"opencode message role {role!r}")
        return []
    steps = [_Step()]
    for part in parts:  # one reply holds every step of a turn: each is a reply of its own here
        if part.get("type") == "step-start" and (steps[-1].blocks or steps[-1].results):
            steps.append(_Step())
        steps[-1].add(part, role, report)
    error = info.get("error") if isinstance(info.get("error"), dict) else None
    why = None
    if error is not None and error.get("name") != "MessageAbortedError":
        data = error.get("data") if isinstance(error.get("data"), dict) else {}
        why = str(data.get("message") or error.get("name") or "error")
    model = info.get("modelID") if isinstance(info.get("modelID"), str) else None
    done = _time(times.get("completed") or times.get("created"))
    out = []
    for n, step in enumerate(steps):
        last = n == len(steps) - 1
        if not step.blocks and not (last and why):
            continue
        step_ext = ext if n == 0 else f"{ext}:step-{n}"
        usage = _usage(step.tokens) if step.tokens is not None else (_usage(info.get("tokens")) if last else None)
        status = ("failed" if why else "interrupted" if error is not None else "complete") if last else "complete"
        out.append(m.ImportMessage(external_id=step_ext, role="assistant", content=step.blocks, created_at=created,
                                   model=model, usage=usage, status=status, error=why if last else None))
        if step.results:
            out.append(m.ImportMessage(external_id=step_ext + ":results", role="user", content=step.results,
                                       created_at=done))
    return out


class _Step:
    """The parts of one model call: its content, its tools' results, its tokens."""

    def __init__(self) -> None:
        self.blocks: list[Any] = []
        self.results: list[ToolResultBlock] = []
        self.tokens: dict[str, Any] | None = None

    def add(self, part: dict[str, Any], role: Any, report: ParseReport) -> None:
        kind = part.get("type")
        if kind == "text" and isinstance(part.get("text"), str):
            if part.get("synthetic") or part.get("ignored"):
                report.skip("opencode text it made itself (synthetic or ignored)")
            elif part["text"]:
                self.blocks.append(TextBlock(text=part["text"]))
        elif kind == "reasoning" and isinstance(part.get("text"), str) and role == "assistant":
            self.blocks.append(ThinkingBlock(text=part["text"], signature=_signature(part.get("metadata"))))
        elif kind == "tool" and isinstance(part.get("callID"), str) and isinstance(part.get("tool"), str):
            state = part.get("state") if isinstance(part.get("state"), dict) else {}
            args = state.get("input")
            self.blocks.append(ToolCallBlock(id=part["callID"], name=part["tool"],
                                             input=args if isinstance(args, dict) else {}))
            if state.get("status") in ("completed", "error"):
                error = state.get("status") == "error"
                text = state.get("error" if error else "output")
                self.results.append(ToolResultBlock(call_id=part["callID"], name=part["tool"],
                                                    content=text if isinstance(text, str) else "", is_error=error))
        elif kind == "step-finish" and isinstance(part.get("tokens"), dict):
            self.tokens = part["tokens"]
        elif kind != "step-start":
            report.skip(f"opencode {kind} part" if kind in SKIPPED_PARTS else f"opencode part {kind!r}")


def _signature(metadata: Any) -> str | None:
    """The provider's proof on a reasoning part, as the AI SDK keeps it per provider."""
    if not isinstance(metadata, dict):
        return None
    for provider, key in (("anthropic", "signature"), ("google", "thoughtSignature"), ("vertex", "thoughtSignature")):
        value = metadata.get(provider, {}).get(key) if isinstance(metadata.get(provider), dict) else None
        if isinstance(value, str) and value:
            return value
    return None


def _usage(tokens: Any) -> Usage | None:
    """opencode's input is already the uncached part; reasoning is billed as output."""
    if not isinstance(tokens, dict):
        return None
    cache = tokens.get("cache") if isinstance(tokens.get("cache"), dict) else {}
    reasoning = as_int(tokens.get("reasoning"))
    return Usage(input_tokens=as_int(tokens.get("input")), output_tokens=as_int(tokens.get("output")) + reasoning,
                 cache_read_tokens=as_int(cache.get("read")), cache_write_tokens=as_int(cache.get("write")),
                 thinking_tokens=reasoning)
