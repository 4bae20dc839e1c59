"""The chat's commands about the session's own exchanges: ``/cost`` (what each model
has cost in this session), ``/retry`` (the last prompt again, as a new turn),
``/edit`` (the last prompt back in the input, to change and send as a new turn) and
``/copy`` (the last reply to the clipboard).

They read what the chat shows (the transcript's messages), except ``/cost``, which
asks the daemon for the whole session: the chat draws only its latest messages.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from duologue.protocol.entities import CodeContextBlock, Message, ToolResultBlock

from ..render import format_cost
from .status_line import compact

HELP = "/cost · /retry · /edit · /copy"


class Chat(Protocol):
    """What these commands act on (``app.ChatApp``)."""

    emulator: bool
    transcript: Any
    client: Any
    session: Any

    def send(self, text: str, context: list[CodeContextBlock] | None = None) -> None: ...
    def put_in_prompt(self, text: str) -> None: ...
    def copy_to_clipboard(self, text: str) -> None: ...
    def notify(self, message: str, **kwargs: Any) -> None: ...
    def error_line(self, text: str) -> None: ...
    def short(self, model: str | None) -> str: ...
    def background(self, work: Any, what: str) -> None: ...


def run_session_command(app: Chat, line: str) -> bool:
    """Run ``line`` when it is one of these commands; False when it is not."""
    word = line.split(" ", 1)[0]
    command = COMMANDS.get(word)
    if command is None:
        return False
    command(app)
    return True


def _shown(app: Chat) -> list[Message]:
    """The messages the transcript holds, in session order."""
    return sorted((view.message for view in app.transcript.views.values()), key=lambda msg: msg.seq)


def last_prompt(messages: Iterable[Message]) -> Message | None:
    """The last thing a person asked: a user message that is not a tool round's results."""
    for msg in reversed(list(messages)):
        if msg.role == "user" and not (msg.content and all(isinstance(b, ToolResultBlock) for b in msg.content)):
            return msg
    return None


def last_reply(messages: Iterable[Message]) -> Message | None:
    """The last reply with text (a reply that only called a tool has none to copy)."""
    return next((msg for msg in reversed(list(messages)) if msg.role == "assistant" and msg.text), None)


def _context(msg: Message) -> list[CodeContextBlock]:
    return [b for b in msg.content if isinstance(b, CodeContextBlock)]


def retry(app: Chat) -> None:
    prompt = last_prompt(_shown(app))
    if prompt is None:
        app.error_line("/retry: no prompt to send again in this session yet")
        return
    app.send(prompt.text, context=_context(prompt) or None)


def edit(app: Chat) -> None:
    """The last prompt back in the input; sending it is a new turn (the old one stays).
    A prompt with one attached file comes back as ``/context FILE[:A-B] TEXT`` (the
    file is read again when sent); of several files, only the text comes back."""
    prompt = last_prompt(_shown(app))
    if prompt is None:
        app.error_line("/edit: no prompt to edit in this session yet")
        return
    blocks = _context(prompt)
    text = prompt.text
    if len(blocks) == 1:
        where = blocks[0].path + (f":{blocks[0].range.start}-{blocks[0].range.end}" if blocks[0].range else "")
        text = f"/context {where} {text}"
    elif blocks:
        app.notify(f"the {len(blocks)} attached files are not put back; attach them again with /context",
                   severity="warning")
    app.put_in_prompt(text)


def copy(app: Chat) -> None:
    reply = last_reply(_shown(app))
    if reply is None:
        app.error_line("/copy: no reply to copy yet")
        return
    app.copy_to_clipboard(reply.text)
    app.notify(f"copied the last reply ({len(reply.text):,} characters, {app.short(reply.model)}) to the "
               "clipboard through the terminal (OSC 52; some terminals need it allowed)")


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
             f"{compact(r.prompt_tokens)} in / {compact(r.output_tokens)} out, {cost(r.cost_usd)}" for r in rows]
    total = sum(r.cost_usd for r in rows)
    lines.append(f"session total: {cost(total)}"
                 + (" (the emulator bills nothing)" if emulator else " as billed, cache reads and writes included"))
    return "\n".join(lines)


def cost(app: Chat) -> None:
    if app.session is None:
        return
    sid = app.session.id

    async def show() -> None:
        got = await app.client.get_session(sid)
        app.transcript.notice(cost_text(cost_by_model(got.messages), app.short, app.emulator))
    app.background(show(), "/cost")


COMMANDS: dict[str, Callable[[Chat], None]] = {"/cost": cost, "/retry": retry, "/edit": edit, "/copy": copy}
