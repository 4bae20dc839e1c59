"""A duologue session as a Claude Code transcript (``duologue export --format
claude-code``), written where Claude Code looks: ``~/.claude/projects/<cwd with every
character other than a letter or digit made "-">/<session uuid>.jsonl``.

The lines are the ones Claude Code writes (see clients/importers/claude_code.py): a
reply as one assistant line per content block sharing ``message.id``, a tool round's
results as one user line with ``tool_result`` blocks, a failed reply as a synthetic
API-error line, the title as a ``custom-title`` record. Each line links to the one
before by ``parentUuid``, so ``claude --resume`` follows the chain and continues it.

What Claude Code cannot hold: thinking written by a model of another provider (its
signature is not Claude's, and Claude rejects a block it cannot verify) is left out;
code context becomes text; a reply's status other than failed, and model switch
reasons, are not kept (switches are recomputed from each reply's model on import).
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from duologue.protocol import methods as m
from duologue.protocol.entities import (CodeContextBlock, ImageBlock, Message, TextBlock, ThinkingBlock,
                                        ToolCallBlock, ToolResultBlock, Usage)

from . import NAMESPACE, iso_time

def folder_name(cwd: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "-", cwd)


def session_uuid(doc: m.ExportDocument) -> str:
    return str(uuid.uuid5(NAMESPACE, doc.session.id))


def transcript(doc: m.ExportDocument, cwd: str) -> bytes:
    sid = session_uuid(doc)
    lines: list[dict[str, Any]] = []
    parent: str | None = None
    for x in doc.messages:
        for n, record in enumerate(_records(x)):
            line_id = str(uuid.uuid5(NAMESPACE, f"{x.id}/{n}"))
            lines.append({"parentUuid": parent, "isSidechain": False, "userType": "external", "cwd": cwd,
                          "sessionId": sid, **record, "uuid": line_id, "timestamp": iso_time(x.created_at)})
            parent = line_id
    lines.append({"type": "custom-title", "customTitle": doc.session.title, "sessionId": sid})
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in lines).encode()


def _records(x: Message) -> list[dict[str, Any]]:
    if x.role == "user":
        return [_prompt(x)]
    if x.status == "failed" and not x.content:
        return [{"type": "assistant", "isApiErrorMessage": True, "message": {
            "id": f"msg_{x.id}", "type": "message", "role": "assistant", "model": "<synthetic>",
            "content": [{"type": "text", "text": x.error or "API error"}], "stop_reason": "stop_sequence",
            "stop_sequence": "", "usage": {"input_tokens": 0, "output_tokens": 0}}}]
    blocks = [b for b in (_block(b, x.model) for b in x.content) if b is not None]
    usage = _usage(x.usage) if x.usage is not None else None
    return [{"type": "assistant", "message": {
        "id": f"msg_{x.id}", "type": "message", "role": "assistant", "model": x.model or "unknown",
        "content": [b], "stop_reason": x.stop_reason if i == len(blocks) - 1 else None, "stop_sequence": None,
        **({"usage": usage} if usage else {})}} for i, b in enumerate(blocks)]


def _prompt(x: Message) -> dict[str, Any]:
    blocks = [b for b in (_block(b, None) for b in x.content) if b is not None]
    results = [b for b in x.content if isinstance(b, ToolResultBlock)]
    content: Any = blocks[0]["text"] if len(blocks) == 1 and blocks[0]["type"] == "text" else blocks
    record: dict[str, Any] = {"type": "user", "message": {"role": "user", "content": content}}
    if results:  # the tools' structured result is theirs; its text is what every reader takes
        record["toolUseResult"] = "\n".join(b.content for b in results)
    return record


def _block(b: Any, model: str | None) -> dict[str, Any] | None:
    if isinstance(b, TextBlock):
        return {"type": "text", "text": b.text}
    if isinstance(b, CodeContextBlock):
        return {"type": "text", "text": f"{b.path}:\n```{b.language or ''}\n{b.text}\n```"}
    if isinstance(b, ImageBlock):  # as Claude Code keeps a pasted image: the Messages API block
        return {"type": "image", "source": {"type": "base64", "media_type": b.media_type, "data": b.data}}
    if isinstance(b, ToolCallBlock):
        return {"type": "tool_use", "id": b.id, "name": b.name, "input": b.input}
    if isinstance(b, ToolResultBlock):
        return {"type": "tool_result", "tool_use_id": b.call_id, "content": b.content,
                **({"is_error": True} if b.is_error else {})}
    if isinstance(b, ThinkingBlock) and (model or "").startswith("claude"):
        if b.redacted is not None:
            return {"type": "redacted_thinking", "data": b.redacted}
        return {"type": "thinking", "thinking": b.text, "signature": b.signature or ""}
    return None


def _usage(u: Usage) -> dict[str, Any]:
    return {"input_tokens": u.input_tokens, "cache_creation_input_tokens": u.cache_write_tokens
            + u.cache_write_1h_tokens, "cache_read_input_tokens": u.cache_read_tokens,
            "cache_creation": {"ephemeral_5m_input_tokens": u.cache_write_tokens,
                               "ephemeral_1h_input_tokens": u.cache_write_1h_tokens},
            "output_tokens": u.output_tokens,
            **({"output_tokens_details": {"thinking_tokens": u.thinking_tokens}} if u.thinking_tokens else {})}
