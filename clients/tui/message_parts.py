"""The lines of a message that are not its text, the same whether it is still
streaming (:mod:`.live_reply`) or finished (:mod:`.message_view`): the head naming
who wrote it, the code context attached, tool calls and results one line each, and
the tail for cost, refusals and failures."""

from __future__ import annotations

import json

from rich.text import Text

from duologue.protocol import images
from duologue.protocol.entities import CodeContextBlock, ImageBlock, Message, ToolCallBlock, ToolResultBlock

from ..render import format_cost, one_line, refusal_line

ENDED_BADLY = ("failed", "interrupted")


def tool_line(block: ToolCallBlock | ToolResultBlock) -> Text:
    """A tool call or result as one line, its arguments or output cut to fit."""
    if isinstance(block, ToolCallBlock):
        args = json.dumps(block.input, ensure_ascii=False, sort_keys=True)
        return Text(f"⚙ {block.name} {one_line(args)[:200]}", style="dim")
    lines = block.content.splitlines()
    first = one_line(lines[0])[:160] if lines else "(empty)"
    more = f" (+{len(lines) - 1} lines)" if len(lines) > 1 else ""
    if block.is_error:
        return Text(f"↳ {block.name} failed: {first}{more}", style="red")
    return Text(f"↳ {block.name}: {first}{more}", style="dim")


def tool_lines(msg: Message) -> list[Text]:
    return [tool_line(b) for b in msg.content if isinstance(b, (ToolCallBlock, ToolResultBlock))]


def is_tool_round(msg: Message) -> bool:
    """A user-side message the daemon wrote with tool results only: not a prompt."""
    return msg.role == "user" and bool(msg.content) and all(isinstance(b, ToolResultBlock) for b in msg.content)


def head_lines(msg: Message, label: str, via: str | None, emulator: bool) -> Text:
    """Who wrote it, how it ended, and under it the code context and images the prompt
    attached (an image as one line naming it)."""
    head = Text(label, style="bold" + (" cyan" if msg.role == "user" else " green"))
    if emulator and msg.role == "assistant":
        head.append(" · EMULATOR", style="bold reverse red")
    if via:
        head.append(f" · {via}", style="dim")
    if msg.pinned:
        head.append(" · pinned", style="dim")
    if msg.status == "streaming":
        head.append(" …", style="dim")
    elif msg.status != "complete":
        head.append(f" · {msg.status}", style="bold yellow" if msg.status in ("refused", "cancelled")
                    else "bold red")
    for block in msg.content:
        if isinstance(block, CodeContextBlock):
            where = block.path + (f":{block.range.start}-{block.range.end}" if block.range else "")
            head.append(f"\n[context {where}]", style="dim")
        elif isinstance(block, ImageBlock):
            head.append(f"\n{images.label(block)}", style="dim")
    return head


def tail_text(msg: Message) -> Text:
    """Cost, and how a reply that did not complete ended (empty when neither)."""
    lines = [Text(format_cost(msg.cost_usd), style="dim")] if msg.cost_usd else []
    if msg.status == "refused":
        lines.append(Text(f"⊘ {refusal_line(msg)}", style="bold yellow"))
    elif msg.status == "cancelled":
        lines.append(Text("■ cancelled (the partial reply is kept)", style="bold yellow"))
    elif msg.status in ENDED_BADLY:
        lines.append(Text(f"✗ turn {msg.status}: {msg.error or 'no detail'}", style="bold red"))
    return Text("\n").join(lines)


def thinking_title(thinking: str) -> str:
    return f"thinking · {len(thinking.split())} words"
