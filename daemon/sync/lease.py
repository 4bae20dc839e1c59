"""Writer leases: one daemon writes a session at a time.

A daemon holds a session's lease (an entry of the bucket, ``bucket``) while it
writes there: it takes it with a create before writing a user message, renews it
every third of ``lease_ttl_s`` with an update checked against the revision it
wrote last, and releases it (a delete checked the same way) once the session has
been idle for a TTL with all of it published, or at a clean stop. A renewal that
is refused means another daemon took the lease after this one failed to renew in
time: the lease is lost, the running turn is stopped (interrupted) and status says
so. A holder that died stops renewing, and its entry ages out within one TTL.

A turn another device left open (a reply streaming, a prompt not answered) is
watched: once its session's lease is gone, this daemon takes it, follows the
stream to its end and closes the open turns as interrupted (``turns.recovery``);
the close replicates, so every machine shows it. Whoever takes the lease first
closes; the others see the close arrive.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from duologue.protocol.entities import Message, Session

from ..sessions import Sessions
from ..store import opens_turn
from ..turns.recovery import close_open_tail
from .bucket import Holder, LeaseBucket, Lost, Taken
from .link import Link, LinkError

log = logging.getLogger(__name__)

CaughtUp = Callable[[str], Awaitable[bool]]
"""Waits until this store holds everything the stream has of a session."""


class Leases:
    def __init__(self, me: Holder, ttl_s: float, sessions: Sessions, *, busy: Callable[[str], bool],
                 published: Callable[[str], bool], lost: Callable[[str], None]):
        """``busy``: a turn runs or waits here; ``published``: JetStream holds every
        change of the session; ``lost``: the lease was taken from this daemon."""
        self.me = me
        self.published = published
        self.ttl_s = ttl_s
        self.sessions = sessions
        self._busy = busy
        self._on_lost = lost
        self.held: dict[str, int] = {}
        """Sessions whose lease this daemon holds -> the revision it wrote last."""
        self.lost: dict[str, str] = {}
        """Sessions whose lease was taken from this daemon -> by whom, for status."""
        self._idle_since: dict[str, float] = {}
        self.orphans: set[str] = set()
        """Sessions last seen with an open turn this daemon does not run."""
        self.bucket: LeaseBucket | None = None
        sessions.watch(self._committed)

    def _committed(self, previous: Session, session: Session, messages: list[Message]) -> None:
        if any(opens_turn(msg) for msg in messages):
            self.orphans.add(session.id)

    async def open(self, link: Link) -> None:
        self.bucket = await LeaseBucket.open(link, self.ttl_s)

    async def run(self, caught_up: CaughtUp) -> None:
        """Renew, release and watch every third of a TTL until cancelled."""
        while True:
            await asyncio.sleep(self.ttl_s / 3)
            try:
                await self.tick(caught_up)
            except LinkError as exc:  # NATS slow or going: the next tick tries again
                log.info("sync: lease renewal: %s", exc)

    async def take(self, sid: str) -> Holder | None:
        """Take the session's lease if no live daemon holds it: None when this daemon
        holds it now, else the holder. Raises LinkError when NATS cannot say."""
        if sid in self.held:
            self._idle_since.pop(sid, None)
            return None
        bucket = self.bucket
        if bucket is None:
            raise LinkError("not connected to NATS")
        for _ in range(3):
            try:
                revision = await bucket.create(sid, self.me)
            except Taken as taken:
                if taken.holder is None:
                    continue  # released or expired between the create and the read
                if taken.holder.device != self.me.device:
                    return taken.holder
                if taken.holder != self.me:  # this device's previous run, which is gone
                    try:
                        revision = await bucket.update(sid, self.me, taken.revision)
                    except Lost:
                        continue
                else:
                    revision = taken.revision
            self.held[sid] = revision
            self.lost.pop(sid, None)
            self._idle_since.pop(sid, None)
            log.info("sync: took the lease of session %s", sid)
            return None
        raise LinkError(f"the lease of session {sid} changed hands three times while being taken")

    async def tick(self, caught_up: CaughtUp) -> None:
        """Renew or release every held lease, then close what dead holders left open."""
        for sid, revision in list(self.held.items()):
            if self._idle(sid):
                await self.release(sid)
            else:
                await self._renew(sid, revision)
        for sid in list(self.orphans):
            await self._adopt(sid, caught_up)

    def _idle(self, sid: str) -> bool:
        """Idle for a TTL: no turn here, every change published (``published``)."""
        if self._busy(sid) or not self.published(sid):
            self._idle_since.pop(sid, None)
            return False
        since = self._idle_since.setdefault(sid, time.monotonic())
        return time.monotonic() - since >= self.ttl_s

    async def _renew(self, sid: str, revision: int) -> None:
        bucket = self.bucket
        if bucket is None:
            return
        try:
            self.held[sid] = await bucket.update(sid, self.me, revision)
            return
        except Lost:
            pass
        got = await bucket.get(sid)
        if got is None:  # it aged out (NATS was away) and nobody took it: take it again
            self.held.pop(sid)
            if await self.take(sid) is None:
                return
            got = await bucket.get(sid)
        self.held.pop(sid, None)
        who = got[0].device if got is not None else "another device"
        self.lost[sid] = f"taken by {who}: this daemon did not renew it within {self.ttl_s:g} s"
        log.warning("sync: the lease of session %s was %s; its running turn is stopped", sid, self.lost[sid])
        self._on_lost(sid)

    async def release(self, sid: str) -> None:
        revision = self.held.pop(sid, None)
        self._idle_since.pop(sid, None)
        if revision is not None and self.bucket is not None:
            await self.bucket.delete(sid, revision)
            log.info("sync: released the lease of session %s", sid)

    async def release_all(self) -> None:
        """At a clean stop: every lease whose session is published goes; one with
        changes still unpublished is left to expire, so no one writes after them."""
        for sid in list(self.held):
            if self.published(sid):
                await self.release(sid)

    async def _adopt(self, sid: str, caught_up: CaughtUp) -> None:
        """Close the turns a vanished writer left open in ``sid``, once its lease is gone."""
        if self._busy(sid):
            return
        if close_candidates(self.sessions, sid) == 0:
            self.orphans.discard(sid)
            return
        if sid not in self.held:
            bucket = self.bucket
            if bucket is None or await bucket.get(sid) is not None:
                return  # its writer lives (it renews), or NATS cannot say now
            if await self.take(sid) is not None:
                return  # another daemon took it first: it closes them
        if not await caught_up(sid):
            return  # the stream holds more of it; try again at the next tick
        closed = close_open_tail(self.sessions, sid)
        self.orphans.discard(sid)
        if closed:
            log.warning("sync: session %s: closed %d turn(s) its last writer left open when its lease "
                        "expired", sid, closed)


def close_candidates(sessions: Sessions, sid: str) -> int:
    """How many messages at the session's end still open a turn (0: nothing to close)."""
    session = sessions.store.get_session(sid)
    if session is None:
        return 0
    last, _ = sessions.store.message_page(sid, 0, session.last_seq + 1, 1, 1 << 30)
    return sum(1 for msg in last if opens_turn(msg))
