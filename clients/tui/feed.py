"""The wiring between the client's event stream and the chat screen.

:class:`SessionFeed` follows one session at a time through
:class:`~..session_events.SessionEvents`, so the screen receives every stored event
of that session exactly once and in seq order: after a drop notice, a gap or a
reconnect the session is attached again from the last seq passed on, and events of
a session it no longer follows (a detach can race the next attach) are dropped.
It knows nothing of Textual: the app hands it a :class:`Sink` and runs :meth:`run`.
"""

from __future__ import annotations

from typing import Any, Protocol

from duologue.protocol import methods as m

from ..rpc.client import AsyncClient, Disconnected
from ..rpc.session_events import Resumed, SessionEvents, Unfollowed


class Sink(Protocol):
    def session_event(self, event: Any) -> None:
        """A session event (stored ones once each, in seq order) or a Progress."""

    def connection_changed(self, up: bool) -> None:
        """The daemon connection dropped (False) or came back and was reattached (True).

        Called from the task that runs :meth:`SessionFeed.run`, so possibly outside the
        sink's own context."""

    def session_lost(self, reason: str) -> None:
        """The daemon refused to attach the followed session again (it was deleted,
        or its store rolled back): nothing more of it will come. Same context as
        :meth:`connection_changed`."""


class SessionFeed:
    def __init__(self, client: AsyncClient, sink: Sink):
        self.sink = sink
        self.events = SessionEvents(client)
        self.session_id = ""

    def follow(self, session_id: str, last_seq: int) -> None:
        """From now on pass on ``session_id``'s events after ``last_seq`` (the app
        attaches it from there itself), and no other session's."""
        if self.session_id and self.session_id != session_id:
            self.events.unfollow(self.session_id)
        self.session_id = session_id
        self.events.follow(session_id, last_seq)

    @property
    def last_seq(self) -> int:
        return self.events.last_seq(self.session_id)

    async def run(self) -> None:
        """Pass events on until cancelled. A session the daemon no longer has after a
        restart is not followed any more, and the sink is told so."""
        async for event in self.events.events():
            if isinstance(event, Disconnected):
                self.sink.connection_changed(False)
            elif isinstance(event, Resumed):
                self.sink.connection_changed(True)
            elif isinstance(event, Unfollowed):
                if event.session_id == self.session_id:
                    self.sink.session_lost(event.error.message)
            elif not isinstance(event, m.ClientDropped):
                self.sink.session_event(event)
