"""A session's automatic title, made from its first exchange without asking a model.

The daemon titles a session once, after its first reply completes, so every client
(the CLI, the chat, an editor over LSP or ACP) shows the same title without each
deriving its own. The title is what was asked, cut to a line: the first sentence of
the prompt with Markdown marks and code left out, or, for a prompt that is only
attached code, the files it attached. A reply's first line stands in only when the
prompt holds neither. No provider call: a title costs nothing, works offline and on
the emulator alike, and cannot fail a turn.
"""

from __future__ import annotations

import logging
import re

from duologue.protocol.entities import CodeContextBlock, Message

from .sessions import DEFAULT_TITLE, Sessions
from .store import StoreWriteError

log = logging.getLogger(__name__)

MAX_CHARS = 60
"""Long enough for a question, short enough for a list row or a picker line."""

_FENCE = re.compile(r"^\s*(```|~~~).*?(^\s*\1|\Z)", re.S | re.M)
_MARKS = re.compile(r"^\s*(?:(?:[#>]+|[*+-]|\d+[.)])\s+)+|\*\*|__|`+|~~")
_SENTENCE_END = re.compile(r"(?<=[.?!])\s")


def title_first_exchange(sessions: Sessions, prompt: Message, turn_id: str) -> None:
    """Title the session of a turn that completed, when it still has the default
    title and nobody gave it one. A title is not worth failing a turn over: a store
    that refuses it leaves the default title."""
    session = sessions.store.get_session(prompt.session_id)
    if session is None or session.title_given or session.title != DEFAULT_TITLE:
        return
    title = title_of(prompt)
    if not title:  # the prompt was only code: the reply's first line says what it was
        replies = [msg for msg in sessions.store.messages(session.id, prompt.seq)
                   if msg.role == "assistant" and msg.turn_id == turn_id]
        title = title_of(prompt, replies[-1] if replies else None)
    try:
        sessions.title_automatically(session.id, title)
    except StoreWriteError as exc:
        log.warning("session %s keeps its default title: %s", session.id, exc)


def title_of(prompt: Message, reply: Message | None = None) -> str:
    """The title for a session whose first exchange is ``prompt`` and ``reply``;
    empty when neither holds a word (the session keeps its default title)."""
    line = _first_line(prompt.text)
    if not line:
        line = _files(prompt)
    if not line and reply is not None:
        line = _first_line(reply.text)
    return _cut(line)


def _first_line(text: str) -> str:
    """The first line of prose: code blocks and Markdown marks left out, the first
    sentence when the line holds several."""
    for raw in _FENCE.sub("\n", text).splitlines():
        line = " ".join(_MARKS.sub(" ", raw).split())
        if any(ch.isalnum() for ch in line):
            return _SENTENCE_END.split(line, maxsplit=1)[0]
    return ""


def _files(prompt: Message) -> str:
    names = []
    for block in prompt.content:
        if isinstance(block, CodeContextBlock):
            where = block.path.rsplit("/", 1)[-1]
            names.append(where + (f":{block.range.start}-{block.range.end}" if block.range else ""))
    return f"About {', '.join(names)}" if names else ""


def _cut(line: str) -> str:
    """At most ``MAX_CHARS``, cut at a word with an ellipsis when it had to be cut."""
    if len(line) <= MAX_CHARS:
        return line
    head = line[: MAX_CHARS - 1]
    space = head.rfind(" ")
    if space >= MAX_CHARS // 2:
        head = head[:space]
    return head.rstrip(" ,;:-") + "…"
