"""The events of the sessions a client follows: each stored event once, in seq order,
across drop notices, gaps, reconnects and daemon restarts.

:class:`SessionEvents` pairs one :class:`~.client.AsyncClient` with the protocol's
sequence rules (:class:`~duologue.protocol.subscriptions.Subscriptions`): it tells the
rules what it attaches and what arrives, and carries out what they decide. Reattaching
happens in the task that reads the events, after the socket monitor has only signalled,
so a request is never awaited inside the monitor. ``duologue attach``, ``send`` and
``ask``, both terminal chats and the language server read their events through it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from duologue.protocol import methods as m
from duologue.protocol.errors import RpcError
from duologue.protocol.jsonrpc import Incoming
from duologue.protocol.subscriptions import Deliver, Reattach, Skip, Subscriptions

from .client import AsyncClient
from .connection import HELLO_TIMEOUT_S, ConnectionLost, Disconnected, Reconnected
from .launcher import DaemonUnavailable


QUIET_CHECK_S = 5.0
"""After this long without a notification, while sessions are followed on a connection
that is up, ask the daemon who it is. A new ``instance_id`` means it restarted behind a
connection that never dropped (a relay or a tunnel kept it up), so every subscription
is gone although no reconnect was seen."""

BURST = 256
"""Events taken from the client in a row before the loop's other tasks get a turn (a
screen redrawing, a request's answer): what the client holds is taken without
waiting, so a long replay would otherwise hold the loop."""


@dataclass(frozen=True)
class Resumed:
    """The connection came back, or the daemon turned out to be a new one, and every
    followed session is attached again; the replay of what was missed follows.
    ``restarted``: it is a new daemon, so the turns the old one ran have ended."""

    restarted: bool


@dataclass(frozen=True)
class Unfollowed:
    """The daemon refused to attach a followed session again (deleted meanwhile, or
    its store was rolled back): nothing more of it will come."""

    session_id: str
    error: RpcError
    """The daemon's refusal."""


class SessionEvents:
    """The sessions one client follows, and their events as the rules let them through.

    :meth:`events` yields the notifications to act on, and also :class:`Disconnected`
    (the daemon went away), :class:`Resumed`, :class:`Unfollowed`, the
    ``client/dropped`` notice once what it dropped is attached again (what was stored
    is replayed; live-only progress is not), and ``session/forked`` once the session is
    attached again from its ``after_seq`` (the kept events at seqs already passed on
    follow it). A notification this client cannot read
    is skipped, unless ``relay_unknown`` (the language server passes it on to an editor
    that may read it). Whoever iterates :meth:`events` does the reattaching, so it is
    the one task that reads this client's notifications."""

    def __init__(self, client: AsyncClient, *, relay_unknown: bool = False,
                 quiet_check_s: float = QUIET_CHECK_S):
        self.client = client
        self.relay_unknown = relay_unknown
        self.quiet_check_s = quiet_check_s
        self.rules = Subscriptions()
        self._down = False
        """The connection dropped and has not come back: no quiet check then."""
        if client.hello_result is not None:
            self.rules.daemon_seen(client.hello_result.instance_id)

    def follow(self, session_id: str, since_seq: int) -> None:
        """Follow a session the caller attaches itself, from ``since_seq``."""
        self.rules.follow(session_id, since_seq)
        self.rules.attached(session_id, since_seq)

    def unfollow(self, session_id: str) -> None:
        """Stop following a session the caller detaches itself."""
        self.rules.unfollow(session_id)

    def follows(self, session_id: str) -> bool:
        return self.rules.follows(session_id)

    def last_seq(self, session_id: str) -> int:
        """The newest stored seq passed on (or attached from); 0 when none is known."""
        return self.rules.last_seq(session_id) or 0

    @property
    def sessions(self) -> list[str]:
        return self.rules.sessions

    async def attach(self, session_id: str, since_seq: int | None = None) -> m.AttachResult:
        """Attach and follow; a session the daemon refuses is not followed."""
        self.rules.follow(session_id, since_seq)
        try:
            result = await self.client.attach(session_id, since_seq=since_seq)
        except RpcError:
            self.rules.unfollow(session_id)
            raise
        self.rules.attached(session_id, result.last_seq)
        return result

    async def detach(self, session_id: str) -> None:
        self.rules.unfollow(session_id)
        await self.client.detach(session_id)

    async def events(self) -> AsyncIterator[Any]:
        take = self.client.take_event
        burst = 0
        while True:
            item = take()
            if item is None:
                burst = 0
                try:
                    await self.client.wait_event(None if self._down else self.quiet_check_s)
                except asyncio.TimeoutError:
                    if self.rules.sessions:
                        async for out in self._check_daemon():
                            yield out
                continue
            burst += 1
            if burst == BURST:  # a long replay still lets the loop's other tasks run
                burst = 0
                await asyncio.sleep(0)
            if isinstance(item, (Disconnected, Reconnected)):
                decision = None
            else:
                decision = self.rules.receive(item)
                if type(decision) is Deliver:  # nearly every event: no generator for it
                    yield item
                    continue
            async for out in self._handle(item, decision):
                yield out

    async def _handle(self, item: Any, decision: Any) -> AsyncIterator[Any]:
        """A connection marker (``decision`` None), or what the rules decided of a
        notification other than delivering it."""
        if isinstance(item, Disconnected):
            self._down = True
            yield item
        elif isinstance(item, Reconnected):
            self._down = False
            hello = await self._greet(patient=True)
            if hello is not None:
                async for out in self._resumed(self.rules.reconnected(hello.instance_id)):
                    yield out
        elif isinstance(decision, Deliver):
            yield item
        elif isinstance(decision, Reattach):
            lost = await self._reattach(decision)
            for out in lost or ():
                yield out
            if lost is not None and isinstance(item, (m.ClientDropped, m.SessionForked)):
                yield item  # once reattached, so what the reader does next sees the replay
        elif decision == Skip("unknown") and self.relay_unknown and isinstance(item, Incoming):
            yield item

    async def _check_daemon(self) -> AsyncIterator[Any]:
        """After a quiet spell: is it still the daemon the subscriptions were made on?"""
        hello = await self._greet(patient=False)
        decision = None if hello is None else self.rules.daemon_seen(hello.instance_id)
        if decision is not None:
            async for out in self._resumed(decision):
                yield out

    async def _resumed(self, decision: Reattach) -> AsyncIterator[Any]:
        """Attach every followed session again, then say so, unless the connection
        dropped again meanwhile (its own reconnect resumes)."""
        lost = await self._reattach(decision)
        if lost is not None:
            for out in lost:
                yield out
            yield Resumed(restarted=decision.cause == "restarted")

    async def _greet(self, *, patient: bool) -> m.HelloResult | None:
        """``daemon/hello`` on the current connection; None when it dropped meanwhile,
        or (not ``patient``) when no answer came in time."""
        while True:
            try:
                return await asyncio.wait_for(self.client.hello(), HELLO_TIMEOUT_S)
            except ConnectionLost:
                return None
            except asyncio.TimeoutError:
                if not patient:
                    return None  # connected, but the daemon does not answer yet
            except RpcError as exc:
                raise DaemonUnavailable(f"the daemon that came back refused this client: {exc.message}") from None

    async def _reattach(self, decision: Reattach) -> list[Unfollowed] | None:
        """Send the attaches the rules asked for; the sessions refused are unfollowed
        and returned. None when the connection dropped meanwhile. A timeout is no
        answer, so that attach is sent again."""
        lost = []
        try:
            for resume in decision.sessions:
                sid = resume.session_id
                while self.rules.follows(sid):
                    try:
                        result = await self.client.attach(sid, since_seq=resume.since_seq)
                    except asyncio.TimeoutError:
                        continue
                    except RpcError as exc:
                        self.rules.unfollow(sid)
                        lost.append(Unfollowed(sid, exc))
                    else:
                        self.rules.attached(sid, result.last_seq)
                    break
        except ConnectionLost:
            return None
        return lost
