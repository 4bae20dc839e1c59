"""The wiring between the client's event stream and the chat screen.

:class:`SessionFeed` follows one session at a time: it drops events of other
sessions (a detach can race the next attach) and stored events it has already
passed on, and when the daemon connection drops it reattaches with the last seq it
saw as soon as the daemon answers again, so the screen receives every event
exactly once and in seq order.
It knows nothing of Textual: the app hands it a :class:`Sink` and runs :meth:`run`.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from duologue.protocol import methods as m
from duologue.protocol.errors import RpcError

from ..connection import AsyncClient, DaemonUnavailable, Disconnected


class Sink(Protocol):
    def session_event(self, event: Any) -> None:
        """A session event (stored ones once each, in seq order) or a Progress."""

    def connection_changed(self, up: bool) -> None:
        """The daemon connection dropped (False) or came back and was reattached (True).

        Called from a task :meth:`run` starts, so possibly outside the sink's context."""


class SessionFeed:
    RETRY_S = 0.2

    def __init__(self, client: AsyncClient, sink: Sink):
        self.client = client
        self.sink = sink
        self.session_id = ""
        self.last_seq = 0
        self._recovery: asyncio.Task[None] | None = None

    def follow(self, session_id: str, last_seq: int) -> None:
        """From now on pass on ``session_id``'s events after ``last_seq``."""
        self.session_id = session_id
        self.last_seq = last_seq

    async def _recover(self) -> None:
        """Reattach once the daemon answers again (a request sent while the socket is
        down waits in ZeroMQ's queue, or fails and is retried)."""
        while True:
            try:
                if self.session_id:
                    await self.client.attach(self.session_id, since_seq=self.last_seq)
                else:
                    await self.client.status()
            except (DaemonUnavailable, TimeoutError):
                await asyncio.sleep(self.RETRY_S)
                continue
            except RpcError:
                pass  # the daemon answers but lost the session: the next event will say so
            self.sink.connection_changed(True)
            return

    def accept(self, event: Any) -> bool:
        """Whether ``event`` is new for the followed session (and note its seq)."""
        if isinstance(event, m.ClientDropped):
            return False
        if getattr(event, "session_id", None) != self.session_id:
            return False
        if isinstance(event, m.Event) and not isinstance(event, m.SessionDeleted):
            if event.seq <= self.last_seq:
                return False
            self.last_seq = event.seq
        return True

    async def run(self) -> None:
        """Pass events on until cancelled; the recovery task it starts ends with it."""
        try:
            async for event in self.client.events():
                if isinstance(event, Disconnected):
                    self.sink.connection_changed(False)
                    if self._recovery is None or self._recovery.done():
                        self._recovery = asyncio.create_task(self._recover())
                elif isinstance(event, m.ClientDropped):
                    if self.session_id in event.session_ids:
                        await self.client.attach(self.session_id, since_seq=self.last_seq)
                elif self.accept(event):
                    self.sink.session_event(event)
        finally:
            if self._recovery is not None:
                self._recovery.cancel()
