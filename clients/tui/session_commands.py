"""The chat's commands about the session's own exchanges: ``/cost`` (what each model
has cost in this session), ``/retry`` (the last prompt again, as a new turn),
``/edit`` (the last prompt back in the input, to change and send as a new turn) and
``/copy`` (the last reply to the clipboard).

They read what the chat shows (the transcript's messages), except ``/cost``, which
asks the daemon for the whole session: the chat draws only its latest messages.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from duologue.protocol.entities import CodeContextBlock, Message

from ..exchanges import context_of, cost_by_model, cost_text, last_prompt, last_reply


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


def retry(app: Chat) -> None:
    prompt = last_prompt(_shown(app))
    if prompt is None:
        app.error_line("/retry: no prompt to send again in this session yet")
        return
    app.send(prompt.text, context=context_of(prompt) or None)


def edit(app: Chat) -> None:
    """The last prompt back in the input; sending it is a new turn (the old one stays).
    A prompt with one attached file comes back as ``/context FILE[:A-B] TEXT`` (the
    file is read again when sent); of several files, only the text comes back."""
    prompt = last_prompt(_shown(app))
    if prompt is None:
        app.error_line("/edit: no prompt to edit in this session yet")
        return
    blocks = context_of(prompt)
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


def cost(app: Chat) -> None:
    if app.session is None:
        return
    sid = app.session.id

    async def show() -> None:
        got = await app.client.get_session(sid)
        app.transcript.notice(cost_text(cost_by_model(got.messages), app.short, app.emulator))
    app.background(show(), "/cost")


COMMANDS: dict[str, Callable[[Chat], None]] = {"/cost": cost, "/retry": retry, "/edit": edit, "/copy": copy}
