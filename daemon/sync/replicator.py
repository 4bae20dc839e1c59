"""The replicator: one connection to NATS at a time, and the publisher, follower,
writer leases (``lease``) and hand-offs (``handoff``) running on it, for as long as
the daemon runs. A send goes through :meth:`Replicator.send`: written here under
the session's lease, handed to the holder, or written here at once when NATS is
away (the partition fork settles what collides).

It never stands in the way of local work: the daemon serves whether NATS is there
or not, and every change waits in the store's outbox meanwhile. A connection that
fails or breaks is tried again after a pause growing to ``RETRY_MAX_S``; the last
failure is kept, as said, for ``duologue sync status`` and logged once per change
of wording.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, defaultdict
from typing import Any

from duologue.protocol import methods as m
from duologue.protocol.errors import ErrorCode, RpcError

from ..sessions import Sessions
from ..settings import SyncSettings
from ..turns import Turns
from . import wire
from .bucket import Holder
from .follower import Follower
from .fork import fork_divergent
from .handoff import Handoff, Moved
from .lease import Leases
from .link import Link, LinkError
from .positions import Positions
from .publisher import Publisher

log = logging.getLogger(__name__)

RETRY_FIRST_S = 0.5
RETRY_MAX_S = 5.0
CATCH_UP_S = 10.0
"""How long a new lease holder waits to follow the session's stream to its end."""
STOP_FLUSH_S = 3.0
"""At a clean stop, how long the publisher gets to send what the stop wrote."""


class Replicator:
    def __init__(self, settings: SyncSettings, sessions: Sessions, turns: Turns, instance_id: str):
        self.settings = settings
        self.sessions = sessions
        self.turns = turns
        self.positions = Positions()
        self.publisher = Publisher(sessions.store, self.positions, settings.device_name, self._diverged)
        self.follower = Follower(sessions, self.positions, settings.device_name, self.publisher.diverged,
                                 turns.forget_session)
        self.leases = Leases(Holder(settings.device_name, instance_id), settings.lease_ttl_s, sessions,
                             busy=turns.busy, published=self._published, lost=turns.interrupt)
        self.handoff = Handoff(settings.device_name, turns.submit, self.leases.take, sessions.announce)
        turns.on_progress = self.handoff.progress
        self.connected = False
        self.link: Link | None = None
        """The connection, once the bucket and this device's subjects are ready."""
        self._order: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self.error: str | None = None
        encode = wire.encoder(settings.device_name)

        def queue(change: Any) -> bytes:
            self.publisher.wake.set()  # the publisher runs after this commit returns
            return encode(change)

        def queue_deleted(session: Any) -> bytes:
            self.publisher.wake.set()
            return wire.tombstone(settings.device_name, session)

        sessions.store.outbox = queue
        sessions.store.outbox_deleted = queue_deleted

    async def run(self) -> None:
        """Connect, replicate, reconnect, until cancelled (the daemon's stop)."""
        pause = RETRY_FIRST_S
        while True:
            try:
                link = await Link.connect(self.settings)
            except LinkError as exc:
                self._failed(str(exc))
                await asyncio.sleep(pause)
                pause = min(pause * 2, RETRY_MAX_S)
                continue
            pause = RETRY_FIRST_S
            self.connected, self.error = True, None
            log.info("sync: connected to %s as %s", self.settings.server, self.settings.device_name)
            try:
                await self._replicate(link)
            except LinkError as exc:
                self._failed(str(exc))
            except (OSError, TimeoutError, asyncio.TimeoutError) as exc:
                self._failed(f"the connection to {self.settings.server} broke ({type(exc).__name__})")
            except Exception as exc:  # a nats-py error mid-stream: reconnect rather than stop syncing
                log.exception("sync: replication stopped")
                self._failed(f"replication stopped ({type(exc).__name__}); retrying")
            finally:
                self.connected = False
                self.positions.forget()
                await link.close()

    async def _replicate(self, link: Link) -> None:
        await self.leases.open(link)
        await self.handoff.start(link)
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(self.publisher.run(link), name="sync publisher"),
                         group.create_task(self.follower.run(link), name="sync follower"),
                         group.create_task(self.leases.run(self._followed), name="sync leases"),
                         group.create_task(self.handoff.run(link), name="sync progress relay")]
                self.link = link
                await link.lost.wait()
                for task in tasks:
                    task.cancel()
        finally:
            self.link = None
            self.leases.bucket = None
        raise LinkError(f"lost the connection to {self.settings.server}; reconnecting")

    # --- sends --------------------------------------------------------------------------

    async def send(self, p: m.SendParams) -> m.SendResult:
        """``session/send`` with sync on: the user message is written under the
        session's lease, here or by the holder. Sends to one session from this
        daemon keep their order; the wait is this request's task, never the loop."""
        self.sessions.require(p.session_id)
        async with self._order[p.session_id]:
            deadline = time.monotonic() + self.settings.lease_ttl_s * 1.5 + 5
            while True:
                if self.link is None:  # NATS away: written here, the partition fork settles it
                    return self.turns.submit(p)
                try:
                    holder = await self.leases.take(p.session_id)
                except LinkError as exc:
                    log.warning("sync: no lease for session %s (%s); the send is written here", p.session_id, exc)
                    return self.turns.submit(p)
                if holder is None:
                    await self._caught_up(p.session_id)
                    return self.turns.submit(p)
                try:
                    return await self.handoff.hand(holder, p)
                except Moved:
                    pass
                except LinkError as exc:  # the connection ended before the request left
                    log.warning("sync: session %s: %s; the send is written here", p.session_id, exc)
                    return self.turns.submit(p)
                if time.monotonic() > deadline:
                    raise RpcError(ErrorCode.SESSION_HELD,
                                   f"session {p.session_id} is held by {holder.device}, which does not answer, "
                                   "and its lease did not expire; nothing was written: send again later",
                                   {"holder": holder.device})
                await asyncio.sleep(0.5)  # the holder died: its lease expires within a TTL

    async def _followed(self, sid: str) -> bool:
        """Whether this store holds the stream's last change of ``sid`` now (the lease
        ticks ask, and ask again at the next tick: a renewal never waits on it)."""
        return await self._caught_up(sid, 0.0)

    async def _caught_up(self, sid: str, wait_s: float = CATCH_UP_S) -> bool:
        """Wait until this store holds the stream's last change of ``sid``, so a new
        holder writes after it rather than beside it (a fork)."""
        deadline = time.monotonic() + wait_s
        while True:
            link = self.link
            if link is None:
                return False
            last = await link.last(wire.subject(sid))
            local = self.sessions.store.get_session(sid)
            there = wire.decode(last.data).session.last_seq if last is not None else 0
            if local is not None and local.last_seq >= there:
                return True
            if time.monotonic() >= deadline:
                if wait_s:
                    log.warning("sync: session %s: the stream holds seqs up to %d, this store %d after %g s",
                                sid, there, local.last_seq if local else 0, wait_s)
                return False
            await asyncio.sleep(0.05)

    def _published(self, sid: str) -> bool:
        known = self.positions.known.get(sid)
        session = self.sessions.store.get_session(sid)
        if session is None:  # deleted: published once its tombstone left the outbox
            return sid not in self._unsent()
        return (known is not None and known.last_seq == session.last_seq
                and sid not in self.positions.held)

    def _unsent(self) -> Counter[str]:
        """Outbox entries per session: changes JetStream has not acknowledged yet."""
        unsent: Counter[str] = Counter()
        after = 0
        while batch := self.sessions.store.sync.pending(after):
            for key, data in batch:
                unsent[wire.session_of_entry(data)] += 1
                after = key
        return unsent

    async def close(self) -> None:
        """At a clean stop, after the turns stopped: give the publisher a moment to
        send what the stop wrote, then release the leases of published sessions."""
        if self.link is None:
            return
        deadline = time.monotonic() + STOP_FLUSH_S
        while time.monotonic() < deadline and not all(self._published(sid) for sid in self.leases.held):
            await asyncio.sleep(0.05)
        try:
            await asyncio.wait_for(self.leases.release_all(), STOP_FLUSH_S)
        except (LinkError, TimeoutError, asyncio.TimeoutError) as exc:
            log.warning("sync: leases not released at stop (%s); they expire within %g s", exc,
                        self.settings.lease_ttl_s)

    def _diverged(self, sid: str, after: int) -> None:
        """This device's writes after ``after`` lost to another's: fork them away. A
        fork that fails leaves the session held (reported by status), never half-made."""
        self.positions.known.pop(sid, None)
        try:
            fork_divergent(self.sessions, sid, after)
        except Exception:
            log.exception("sync: session %s diverged after seq %d and could not be forked; held", sid, after)
            self.positions.hold(sid, after)

    def _failed(self, message: str) -> None:
        self.connected = False
        if message != self.error:
            log.warning("sync: %s", message)
        self.error = message

    def status(self) -> m.SyncStatusResult:
        """What ``sync/status`` reports: only the sessions not in sync are listed."""
        unsent = self._unsent()
        held, gaps, lost = self.positions.held, self.follower.gaps, self.leases.lost
        rows = [m.SyncSessionStatus(session_id=sid, unpublished=unsent.get(sid, 0),
                                    diverged_after_seq=held.get(sid), missing_after_seq=gaps.get(sid),
                                    lease_lost=lost.get(sid))
                for sid in sorted({*unsent, *held, *gaps, *lost})]
        return m.SyncStatusResult(
            configured=True, connected=self.connected, server=self.settings.server,
            device_name=self.settings.device_name, error=self.error or self.follower.stopped,
            follow_lag=self.follower.lag,
            sessions=rows, leases=sorted(self.leases.held))
