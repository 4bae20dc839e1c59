"""What the chat does with the session's events from the daemon (its own and every
other client's): messages and their deltas into the transcript, switches, tasks,
titles and the turn's progress into the header and the progress line; and what it
shows when the connection goes and comes back.

A part of :class:`~.app.ChatApp`, apart because it is one idea: the screen follows
the session's events, and nothing else draws what they carry.
"""

from __future__ import annotations

from typing import Any

import msgspec
from textual.app import ScreenStackError
from textual.css.query import NoMatches

from duologue.protocol import methods as m

from .message_parts import is_tool_round
from .progress import TurnState
from .status_line import StatusLine


class DaemonEvents:
    """The chat app's handling of session events (``SessionFeed`` calls these)."""

    _inflight: list[str]
    """Prompts this chat sent and has not seen come back as messages yet."""

    def session_event(self, event: Any) -> None:
        try:
            self._apply(event)
        except (NoMatches, ScreenStackError):
            # The feed's events can come while the screen's widgets are being removed
            # (quitting, or the test pilot tearing the app down, before Textual marks
            # the app closing); the event is for a screen that is going.
            return

    def _apply(self, event: Any) -> None:
        t = self.transcript
        if isinstance(event, m.MessageCreated):
            msg = event.message
            if msg.role == "user":
                mine = msg.text in self._inflight
                if mine:
                    self._inflight.remove(msg.text)
                # a tool round's results are the daemon's, not another client's prompt
                t.message_created(msg, via=None if mine or is_tool_round(msg) else "from another client")
            else:
                t.message_created(msg)
                self.turn.model = msg.model or self.turn.model
        elif isinstance(event, m.MessageDelta):
            t.delta(event.message_id, event.text, event.thinking)
        elif isinstance(event, m.MessageCompleted):
            msg = event.message
            t.message_completed(msg)
            if msg.role == "assistant" and msg.turn_id and msg.status in ("interrupted", "failed", "cancelled"):
                # the turn ended there, even when its progress end never came (the
                # daemon stopped and marked it interrupted when it started again)
                self.running.discard(msg.turn_id)
            if msg.role == "assistant":
                self.turn.outcome, self.turn.error = msg.status, msg.error
                self.turn.model = msg.model or self.turn.model
                if msg.usage:
                    self.turn.output_tokens = msg.usage.output_tokens
                self.query_one(StatusLine).reply_completed(msg)
        elif isinstance(event, m.ModelSwitched):
            t.switched(event.switch)
            if self.session:
                self.session = msgspec.structs.replace(self.session, current_model=event.switch.to_model)
                self._show_session()
                self._spawn(self._refresh_session(), "cannot refresh the session")
        elif isinstance(event, m.TasksChanged):
            self.tasks = event.tasks
            self._show_tasks()
        elif isinstance(event, m.SessionRenamed) and self.session:
            self.session = msgspec.structs.replace(self.session, title=event.title)
            self._show_session()
        elif isinstance(event, m.SessionDeleted):
            t.notice("This session was deleted; ctrl+o opens another, ctrl+n starts one.", style="bold red")
        elif isinstance(event, m.Progress):
            self._progress(event)
        self._show_progress()

    def _progress(self, p: m.Progress) -> None:
        if p.kind == "end":
            self.running.discard(p.turn_id)
            if p.outcome and self.turn.outcome is None:
                self.turn.outcome = p.outcome
            return
        if p.kind == "begin":
            self.turn = TurnState(model=p.model)
        self.running.add(p.turn_id)
        self.turn.model, self.turn.output_tokens, self.turn.estimated_s = p.model, p.output_tokens, p.estimated_s

    def connection_changed(self, up: bool) -> None:
        # the reconnect callback runs in the client's task, outside the app's context:
        # hand the drawing to the app's own message loop
        self.call_later(self._show_connection, up)

    def session_lost(self, reason: str) -> None:
        self.call_later(self._show_lost, reason)

    def _show_lost(self, reason: str) -> None:
        self.transcript.notice(f"this session is no longer followed: {reason}. Open another with ctrl+o",
                               style="bold red")

    def _show_connection(self, up: bool) -> None:
        self.transcript.notice("reconnected to the daemon" if up else
                               "the daemon connection was lost; waiting for it to come back",
                               style="green" if up else "bold red")
        if up:
            self._spawn(self._forget_ended_turns(), "cannot refresh the progress")

    async def _forget_ended_turns(self) -> None:
        """After a reconnect (the daemon may have restarted), a turn the daemon no
        longer runs is not running here either."""
        status = await self.client.status()
        alive = {t.turn_id for t in status.running_turns}
        if self.running - alive:
            self.running &= alive
            self._show_progress()

    async def _refresh_session(self) -> None:
        if self.session:
            got = await self.client.get_session(self.session.id, since_seq=self.session.last_seq, limit=1)
            self.session = got.session
            self._show_session()
