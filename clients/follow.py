"""Following a session's live stream in a terminal: one turn (send, ask) or
everything (attach). The events come through :class:`~.session_events.SessionEvents`,
so a restart, a drop notice or a gap is caught up without printing anything twice,
and a notification this client does not know is never printed (nor fatal)."""

from __future__ import annotations

import sys
from typing import Any

import msgspec

from duologue.protocol import methods as m
from duologue.protocol.entities import Message, ToolCallBlock

from . import render
from .rpc.client import AsyncClient, DaemonUnavailable, Disconnected
from .rpc.session_events import Resumed, SessionEvents, Unfollowed

def _write(text: str) -> None:
    """Print for a person: control characters the text may hold are shown escaped
    (``--json`` lines are written as encoded, where JSON escapes them)."""
    sys.stdout.write(render.terminal_safe(text))
    sys.stdout.flush()


class _Printer:
    """Prints events as a person reads them, each as it is given (``SessionEvents``
    has already dropped repeats); anything else it is given, it ignores."""

    def __init__(self, echo: bool = True, as_json: bool = False):
        self.echo = echo
        self.as_json = as_json
        self._open_reply: str | None = None
        self._thinking_shown: str | None = None

    def show(self, event: Any) -> None:
        method = m.EVENT_TYPES.get(type(event))
        if method is None:
            return
        if self.as_json:
            if m.NOTIFICATIONS[method].stored:
                _write(msgspec.json.encode({"method": method, "params": event}).decode() + "\n")
            return
        if not self.echo:
            return
        if isinstance(event, m.MessageCreated):
            self._end_reply()
            msg = event.message
            if msg.role == "user":
                _write(render.message_block(msg) + "\n")
            else:
                _write(f"\n{msg.model or 'assistant'}:\n")
                self._open_reply = msg.id
        elif isinstance(event, m.MessageDelta):
            if event.thinking and self._thinking_shown != event.message_id:
                self._thinking_shown = event.message_id
                _write("[thinking…]\n")  # collapsed: `duologue show` has the thought
            _write(event.text)
        elif isinstance(event, m.MessageCompleted):
            msg = event.message
            calls = [b.name for b in msg.content if isinstance(b, ToolCallBlock)]
            if calls and self._open_reply == msg.id:
                _write("".join(f"\n[calls {name}]" for name in calls))
            self._end_reply()
            if msg.status == "refused":
                _write(f"[{render.refusal_line(msg)}]\n")
            elif msg.status != "complete":
                _write(f"[{msg.status}{': ' + msg.error if msg.error else ''}]\n")
        elif isinstance(event, m.ModelSwitched):
            self._end_reply()
            _write(render.switch_line(event.switch) + "\n")
        elif isinstance(event, m.TasksChanged):
            _write(render.tasks_text(event.tasks) + "\n")
        elif isinstance(event, m.SessionRenamed):
            _write(f"[renamed: {event.title}]\n")
        elif isinstance(event, m.SessionDeleted):
            _write("[the session was deleted]\n")

    def _end_reply(self) -> None:
        if self._open_reply is not None:
            _write("\n")
            self._open_reply = None


async def follow_turn(events: SessionEvents, session_id: str, turn_id: str, *,
                      echo: bool = True) -> Message | None:
    """Print one turn's events until it ends; return its last reply."""
    printer = _Printer(echo=echo)
    since = events.last_seq(session_id)
    final: Message | None = None
    async for event in events.events():
        if isinstance(event, Unfollowed):
            raise event.error
        if isinstance(event, Disconnected) or (isinstance(event, Resumed) and event.restarted):
            raise DaemonUnavailable("the daemon went away during the turn; `duologue show last` "
                                    "shows what was kept")
        if isinstance(event, (m.MessageCreated, m.MessageDelta, m.ModelSwitched, m.MessageCompleted)):
            printer.show(event)
        if isinstance(event, m.MessageCompleted) and event.message.turn_id == turn_id:
            final = event.message
        if isinstance(event, m.Progress) and event.turn_id == turn_id and event.kind == "end":
            return final
        if isinstance(event, (m.ClientDropped, Resumed)):
            ended, reply = await _ended(events.client, session_id, turn_id, since)
            if ended:  # its progress end may have been lost with what was dropped
                return reply
    return final


async def _ended(client: AsyncClient, session_id: str, turn_id: str, since: int) -> tuple[bool, Message | None]:
    """Whether the turn is over, and then its last reply, read from the store."""
    status = await client.status()
    if any(turn.turn_id == turn_id for turn in status.running_turns):
        return False, None
    got = await client.whole_session(session_id, since_seq=since)
    replies = [msg for msg in got.messages if msg.turn_id == turn_id and msg.role == "assistant"]
    return True, replies[-1] if replies else None


async def follow_session(client: AsyncClient, session_id: str, *, since_seq: int | None,
                         as_json: bool = False) -> None:
    """Print a session's events until interrupted or the session is gone."""
    printer = _Printer(as_json=as_json)
    events = SessionEvents(client)
    result = await events.attach(session_id, since_seq=since_seq)
    if not as_json:
        _write(render.session_header(result.session) + "\n")
    async for event in events.events():
        if isinstance(event, Unfollowed):
            raise event.error
        if not as_json and isinstance(event, Disconnected):
            _write("[daemon connection lost; waiting for it to come back]\n")
        elif not as_json and isinstance(event, Resumed):
            _write("[reconnected to a restarted daemon]\n" if event.restarted else "[reconnected]\n")
        printer.show(event)
        if isinstance(event, m.SessionDeleted):
            return
