"""The emulator's unscripted answer: a reply that shows what the model was given.

A person trying duologue offline (or reading a failing test) should see at a glance
whether the whole conversation reached the model after a switch. So the default reply
names the answering model, counts the earlier turns it received, says which models
wrote the earlier assistant turns, quotes the first user message and echoes the latest
one. Every reply starts with a signature ``[emulator <model>]``; parsing those out of
the assistant turns in a later request is how the emulator knows who wrote what.

The wire modules reduce each provider's request to a :class:`Conversation`, so this
logic is written once for both providers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .script import Failure, Reply, Step, ToolCall

SIGNATURE_RE = re.compile(r"\[emulator ([^\]\s]+)\]")
PLAN_RE = re.compile(r"\bplan\b", re.IGNORECASE)
PLAN_TOOL = "update_tasks"
QUOTE_LIMIT = 80


@dataclass
class Turn:
    """One message of the received history, reduced to what the reply talks about."""

    role: str  # "user" or "assistant"
    text: str = ""
    tool_calls: list[str] = field(default_factory=list)
    tool_results: list[str] = field(default_factory=list)
    thinking: str = ""  # shown thinking text sent back (Claude thinking blocks, Gemini thought parts)
    images: list[str] = field(default_factory=list)  # the media types of the images it carried


@dataclass
class Conversation:
    """A provider request reduced to a provider-neutral shape."""

    model: str
    turns: list[Turn]
    tool_names: list[str]
    system: str | None = None


def signature(model: str) -> str:
    return f"[emulator {model}]"


def _quote(text: str) -> str:
    flat = " ".join(text.split())
    if len(flat) > QUOTE_LIMIT:
        flat = flat[: QUOTE_LIMIT - 1] + "…"
    return f"“{flat}”"


def _author(turn: Turn) -> str:
    found = SIGNATURE_RE.search(turn.text) or SIGNATURE_RE.search(turn.thinking)
    return found.group(1) if found else "an unknown model"


def default_thinking(conv: Conversation) -> str:
    """The reasoning a thinking model shows when the script gives none: short, and
    naming the model so a test can see whose thinking came back."""
    user_texts = [t.text for t in conv.turns if t.role == "user" and t.text.strip()]
    latest = _quote(user_texts[-1]) if user_texts else "the tool results"
    return f"Thinking as {conv.model}: the user said {latest}; I will answer from the {len(conv.turns)} turns I have."


def _describe_history(earlier: list[Turn]) -> str:
    users = sum(1 for t in earlier if t.role == "user")
    assistants = [t for t in earlier if t.role == "assistant"]
    if not earlier:
        return "This is the first turn: I received no earlier turns."
    counts = f"I received {len(earlier)} earlier turns ({users} user, {len(assistants)} assistant)"
    if not assistants:
        return counts + "."
    authors: dict[str, int] = {}
    for turn in assistants:
        name = _author(turn)
        authors[name] = authors.get(name, 0) + 1
    listed = ", ".join(f"{name} ×{n}" for name, n in authors.items())
    return f"{counts}; earlier answers came from {listed}."


def default_reply(conv: Conversation) -> Reply:
    """Compute the deterministic default reply for a request.

    When the latest user message asks to plan and the request offers the task tool,
    the reply is a call of that tool; the request that carries its result gets text.
    """
    user_texts = [t for t in conv.turns if t.role == "user" and t.text.strip()]
    latest = user_texts[-1].text if user_texts else ""
    last_turn = conv.turns[-1] if conv.turns else None
    answering_tool = last_turn is not None and bool(last_turn.tool_results)

    if PLAN_RE.search(latest) and PLAN_TOOL in conv.tool_names and not answering_tool:
        return Reply(
            text=f"{signature(conv.model)} Let me plan this first.",
            tool_calls=[ToolCall(PLAN_TOOL, {"tasks": plan_tasks(latest)})],
        )

    # Earlier turns: everything before the latest user message that has text.
    cut = len(conv.turns)
    for index in range(len(conv.turns) - 1, -1, -1):
        if conv.turns[index].role == "user" and conv.turns[index].text.strip():
            cut = index
            break
    earlier = conv.turns[:cut]

    parts = [signature(conv.model), f"This is the provider emulator answering as {conv.model}."]
    parts.append(_describe_history(earlier))
    if user_texts:
        parts.append(f"The first user message I saw was {_quote(user_texts[0].text)}.")
        parts.append(f"You just said: {_quote(latest)}.")
    shown = user_texts[-1].images if user_texts else []
    if shown:
        parts.append(f"You showed me {len(shown)} image{'s' if len(shown) > 1 else ''} ({', '.join(shown)}).")
    if answering_tool:
        names = ", ".join(last_turn.tool_results) if last_turn else ""
        parts.append(f"Thanks, I received the result of {names}; carrying on with the plan.")
    return Reply(text=" ".join(parts))


def reply_for(step: Step | None, conv: Conversation) -> Reply:
    """What a request is answered with: the scripted reply (a failure's own, for one
    that streams part of a reply), else the default reply."""
    if isinstance(step, Reply):
        return step
    if isinstance(step, Failure) and step.reply is not None:
        return step.reply
    return default_reply(conv)


def plan_tasks(request: str) -> list[dict[str, str]]:
    """Three generic tasks derived from the request, the first one in progress."""
    topic = " ".join(request.split()[:6]) or "the request"
    return [
        {"content": f"Understand: {topic}", "status": "in_progress", "active_form": "Understanding the request"},
        {"content": "Work out the approach", "status": "pending", "active_form": "Working out the approach"},
        {"content": "Write up the answer", "status": "pending", "active_form": "Writing up the answer"},
    ]
