"""A session as Markdown (``duologue export --format md``). Pure: document in, text out.

Every reply is headed by the model that wrote it, model switches appear where they
happened (with kind and reason), code context and tool rounds are kept in fences that
no content can close early, and the task list and context summaries follow.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

from duologue.protocol import methods as m
from duologue.protocol import images
from duologue.protocol.entities import (CodeContextBlock, ImageBlock, Message, ModelSwitch, TextBlock, ToolCallBlock,
                                       ToolResultBlock)

_MARK = {"pending": "[ ]", "in_progress": "[ ]", "completed": "[x]"}


def export_markdown(doc: m.ExportDocument) -> str:
    s = doc.session
    out = [f"# {s.title}", ""]
    model = f"`{s.current_model}`" + (f" (chosen: `{s.model}`)" if s.model != s.current_model else "")
    facts = [("Session", f"`{s.id}`"), ("Model", model),
             ("Created", _time(s.created_at)), ("Updated", _time(s.updated_at)),
             ("Messages", str(len(doc.messages)))]
    if s.project_id:
        facts.insert(1, ("Project", f"`{s.project_id}`"))
    if s.metadata.get("imported_from"):
        facts.append(("Imported from", s.metadata["imported_from"]))
    out += [f"- **{k}:** {v}" for k, v in facts]
    if s.system_prompt:
        out += ["", "**System prompt:**", "", _quote(s.system_prompt)]
    out += ["", "---", ""]
    switches = sorted(doc.switches, key=lambda w: w.seq)
    for msg in doc.messages:
        while switches and switches[0].seq < msg.seq:
            out += [_switch(switches.pop(0)), ""]
        out += [_message(msg), ""]
    out += [x for w in switches for x in (_switch(w), "")]
    if doc.tasks.tasks:
        out += ["## Tasks", ""]
        for t in doc.tasks.tasks:
            suffix = " *(in progress)*" if t.status == "in_progress" else ""
            out.append(f"- {_MARK[t.status]} {t.content}{suffix}")
        out.append("")
    if doc.summaries:
        out += ["## Context summaries", ""]
        for x in doc.summaries:
            out += [f"Summary of {x.covered_messages} messages (up to seq {x.covers_up_to_seq}), "
                    f"written by `{x.model}` for `{x.for_model}`, {_time(x.created_at)}:", "", _quote(x.text), ""]
    return "\n".join(out).rstrip() + "\n"


def _message(msg: Message) -> str:
    who = "You" if msg.role == "user" else f"`{msg.model or 'assistant'}`"
    if msg.role == "user" and msg.content and all(isinstance(b, ToolResultBlock) for b in msg.content):
        who = "Tool results"
    marks = [msg.status] if msg.status != "complete" else []
    if msg.pinned:
        marks.append("pinned")
    head = f"### {who} · {_time(msg.created_at)}" + (f" ({', '.join(marks)})" if marks else "")
    parts = [head, ""]
    for i, b in enumerate(msg.content):
        if isinstance(b, TextBlock):
            if i and isinstance(msg.content[i - 1], TextBlock):
                parts[-2] += b.text  # one text in several parts (a signed part is kept apart)
                continue
            parts.append(b.text)
        elif isinstance(b, CodeContextBlock):
            where = b.path + (f":{b.range.start}-{b.range.end}" if b.range else "")
            parts += [f"**Context** `{where}`", "", _fence(b.text, b.language or "")]
        elif isinstance(b, ImageBlock):
            parts.append(f"**Image** `{images.label(b)}`")
        elif isinstance(b, ToolCallBlock):
            parts += [f"**Tool call** `{b.name}` (`{b.id}`)", "",
                      _fence(json.dumps(b.input, indent=2, ensure_ascii=False, sort_keys=True), "json")]
        elif isinstance(b, ToolResultBlock):
            label = "Tool error" if b.is_error else "Tool result"
            parts += [f"<details><summary>{label}: {b.name} (<code>{b.call_id}</code>)</summary>", "",
                      _fence(b.content, ""), "", "</details>"]
        parts.append("")
    if msg.error:
        parts += [f"> **Error:** {msg.error}", ""]
    return "\n".join(parts).rstrip()


def _switch(w: ModelSwitch) -> str:
    return (f"> **⇄ Model switch:** `{w.from_model or '-'}` → `{w.to_model}` "
            f"({w.kind}: {w.reason}) · {_time(w.at)}")


def _fence(text: str, language: str) -> str:
    longest = run = 0
    for ch in text:
        run = run + 1 if ch == "`" else 0
        longest = max(longest, run)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{language}\n{text.rstrip(chr(10))}\n{ticks}"


def _quote(text: str) -> str:
    return "\n".join("> " + line if line else ">" for line in text.splitlines())


def _time(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
