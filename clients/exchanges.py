"""What the chats' session commands read from a session's messages: the last prompt
(``/retry``, ``/edit``), the last reply (``/copy``) and each model's share of the
cost (``/cost``). Pure: messages in, answers out, for both chats."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from duologue.protocol.entities import CodeContextBlock, Message, ToolResultBlock

from .render import compact_tokens, format_cost


def last_prompt(messages: Iterable[Message]) -> Message | None:
    """The last thing a person asked: a user message that is not a tool round's results."""
    for msg in reversed(list(messages)):
        if msg.role == "user" and not (msg.content and all(isinstance(b, ToolResultBlock) for b in msg.content)):
            return msg
    return None


def last_reply(messages: Iterable[Message]) -> Message | None:
    """The last reply with text (a reply that only called a tool has none to copy)."""
    return next((msg for msg in reversed(list(messages)) if msg.role == "assistant" and msg.text), None)


def context_of(msg: Message) -> list[CodeContextBlock]:
    """The code context a prompt attached (sent again with it by ``/retry``)."""
    return [b for b in msg.content if isinstance(b, CodeContextBlock)]


@dataclass
class ModelCost:
    """One model's share of a session."""

    model: str
    replies: int = 0
    prompt_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0


def cost_by_model(messages: Iterable[Message]) -> list[ModelCost]:
    """Each model's replies, tokens and cost as billed, the costliest first."""
    rows: dict[str, ModelCost] = {}
    for msg in messages:
        if msg.role != "assistant" or not msg.model:
            continue
        row = rows.setdefault(msg.model, ModelCost(msg.model))
        row.replies += 1
        if msg.usage is not None:
            row.prompt_tokens += msg.usage.prompt_tokens
            row.output_tokens += msg.usage.output_tokens
        row.cost_usd += msg.cost_usd or 0.0
    return sorted(rows.values(), key=lambda r: (-r.cost_usd, r.model))


def cost_text(rows: list[ModelCost], short: Callable[[str | None], str], emulator: bool) -> str:
    if not rows:
        return "/cost: no replies in this session yet"
    cost = (lambda usd: "emulator/$0") if emulator else format_cost
    lines = [f"{short(r.model)} ({r.model}): {r.replies} repl{'y' if r.replies == 1 else 'ies'}, "
             f"{compact_tokens(r.prompt_tokens)} in / {compact_tokens(r.output_tokens)} out, {cost(r.cost_usd)}"
             for r in rows]
    total = sum(r.cost_usd for r in rows)
    lines.append(f"session total: {cost(total)}"
                 + (" (the emulator bills nothing)" if emulator else " as billed, cache reads and writes included"))
    return "\n".join(lines)
