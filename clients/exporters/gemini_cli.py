"""A duologue session as a Gemini CLI session file (``duologue export --format
gemini-cli``), written where ``gemini --resume`` lists it:
``~/.gemini/tmp/<project slug>/chats/session-<start>-<id prefix>.jsonl``.

The records are the ones Gemini CLI's ChatRecordingService appends (see
clients/importers/gemini_cli.py): a metadata line naming the project by the SHA-256
of its root, one record per message, a tool round's results inside the reply's
``toolCalls``, and the title as a ``$set`` of ``summary``. A reply's ``content``
holds its parts as the API returned them (thought parts and signatures included),
which is what Gemini CLI sends back on resume. The project's slug folder is the one
``projects.json`` or a ``.project_root`` marker gives it; for a project Gemini CLI has
never seen, one is claimed as Gemini CLI claims it (config/projectRegistry.ts).

What Gemini CLI cannot hold: thinking of another provider's model is kept only as
its display summary (``thoughts``), without its signature; cache writes are not
counted (Gemini has none); code context becomes text; a failed reply becomes an
``error`` note; statuses other than failed and switch reasons are not kept.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from pathlib import Path
from typing import Any

from duologue.protocol import methods as m
from duologue.protocol.entities import (CodeContextBlock, ImageBlock, Message, TextBlock, ThinkingBlock,
                                        ToolCallBlock, ToolResultBlock, Usage)

from . import NAMESPACE, iso_time


def session_id(doc: m.ExportDocument) -> str:
    return str(uuid.uuid5(NAMESPACE, "gemini-cli/" + doc.session.id))


def file_name(doc: m.ExportDocument) -> str:
    start = doc.session.created_at.strftime("%Y-%m-%dT%H-%M")
    return f"session-{start}-{session_id(doc)[:8]}.jsonl"


def project_folder(gemini_dir: Path, root: str) -> Path:
    """The project's folder under ``tmp``: the registry's slug, a folder whose marker
    names the root, or a new slug from the root's name, claimed with its marker."""
    tmp = gemini_dir / "tmp"
    try:
        registry = json.loads((gemini_dir / "projects.json").read_text(encoding="utf-8")).get("projects") or {}
    except (OSError, ValueError, AttributeError):
        registry = {}
    if isinstance(registry.get(root), str):
        return tmp / registry[root]
    taken = {v for v in registry.values() if isinstance(v, str)}
    for folder in sorted(tmp.iterdir()) if tmp.is_dir() else []:
        if _owner(folder) == root:
            return folder
    slug = re.sub(r"-+", "-", re.sub(r"[^a-z0-9]", "-", Path(root).name.lower())).strip("-") or "project"
    for n in range(1000):
        candidate = slug if n == 0 else f"{slug}-{n}"
        folder = tmp / candidate
        if candidate not in taken and _owner(folder) in (None, root):
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            (folder / ".project_root").write_text(root, encoding="utf-8")
            return folder
    raise OSError(f"no free project folder for {root} under {tmp}")


def _owner(folder: Path) -> str | None:
    try:
        return (folder / ".project_root").read_text(encoding="utf-8").strip()
    except OSError:
        return None


def session_file(doc: m.ExportDocument, root: str) -> bytes:
    s = doc.session
    records: list[dict[str, Any]] = [{
        "sessionId": session_id(doc), "projectHash": hashlib.sha256(root.encode()).hexdigest(),
        "startTime": iso_time(s.created_at), "lastUpdated": iso_time(s.updated_at), "kind": "main"}]
    reply: dict[str, Any] | None = None
    for x in doc.messages:
        results = [b for b in x.content if isinstance(b, ToolResultBlock)]
        calls = {c["id"]: c for c in (reply or {}).get("toolCalls", [])}
        if x.role == "user" and results and len(results) == len(x.content) \
                and all(b.call_id in calls for b in results):
            for b in results:  # the round's results, recorded with the calls they answer
                calls[b.call_id].update(result=[_response(b)], status="error" if b.is_error else "success",
                                        timestamp=iso_time(x.created_at))
            continue
        reply = None
        if x.role == "user":
            records.append({"id": x.id, "timestamp": iso_time(x.created_at), "type": "user",
                            "content": [_part(b, True) for b in x.content]})
        elif x.status == "failed" and not x.content:
            records.append({"id": x.id, "timestamp": iso_time(x.created_at), "type": "error",
                            "content": x.error or "API error"})
        else:
            reply = _reply(x)
            records.append(reply)
    records.append({"$set": {"summary": s.title}})
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode()


def _reply(x: Message) -> dict[str, Any]:
    own = (x.model or "").startswith("gemini")
    parts = [_part(b, own) for b in x.content
             if not isinstance(b, ThinkingBlock) or (own and b.redacted is None)]
    record: dict[str, Any] = {
        "id": x.id, "timestamp": iso_time(x.created_at), "type": "gemini", "content": parts,
        "thoughts": [{**_summary(b.text), "timestamp": iso_time(x.created_at)}
                     for b in x.content if isinstance(b, ThinkingBlock) and b.text],
        "tokens": _tokens(x.usage) if x.usage is not None else None, "model": x.model or "unknown"}
    calls = [{"id": b.id, "name": b.name, "args": b.input, "status": "cancelled", "timestamp": iso_time(x.created_at)}
             for b in x.content if isinstance(b, ToolCallBlock)]
    if calls:
        record["toolCalls"] = calls
    return record


def _part(b: Any, own: bool) -> dict[str, Any]:
    signature = {"thoughtSignature": b.signature} if own and getattr(b, "signature", None) else {}
    if isinstance(b, ThinkingBlock):
        return {"text": b.text, "thought": True, **signature}
    if isinstance(b, TextBlock):
        return {"text": b.text, **signature}
    if isinstance(b, ToolCallBlock):
        return {"functionCall": {"id": b.id, "name": b.name, "args": b.input}, **signature}
    if isinstance(b, ToolResultBlock):
        return _response(b)
    if isinstance(b, CodeContextBlock):
        return {"text": f"{b.path}:\n```{b.language or ''}\n{b.text}\n```"}
    if isinstance(b, ImageBlock):  # a Gemini API part, as Gemini CLI keeps an attached image
        return {"inlineData": {"mimeType": b.media_type, "data": b.data}}
    raise TypeError(f"no Gemini part for {type(b).__name__}")


def _response(b: ToolResultBlock) -> dict[str, Any]:
    return {"functionResponse": {"id": b.call_id, "name": b.name,
                                 "response": {"error" if b.is_error else "output": b.content}}}


def _summary(text: str) -> dict[str, str]:
    """A thought as Gemini CLI shows it: a leading ``**subject**`` apart from the rest."""
    found = re.match(r"\s*\*\*(.+?)\*\*\s*(.*)", text, re.S)
    return {"subject": found[1].strip(), "description": found[2].strip()} if found \
        else {"subject": "", "description": text.strip()}


def _tokens(u: Usage) -> dict[str, int]:
    prompt = u.input_tokens + u.cache_read_tokens
    candidates = max(0, u.output_tokens - u.thinking_tokens)
    return {"input": prompt, "output": candidates, "cached": u.cache_read_tokens,
            "thoughts": u.thinking_tokens, "tool": 0, "total": prompt + candidates + u.thinking_tokens}
