"""Following the stream into the store: every other device's changes, in stream
order, written with their seqs and records verbatim and published to the clients
attached here through the normal hub path (``Sessions.commit_replica``).

A change is applied when it follows what this store holds of its session (its
``after`` is the local last seq); one the store already holds (its own, echoed, or
one read again after a restart) is passed over; one that starts past the local
history is a gap, logged and left; one that starts before the local end while the
store wrote something else there is a divergence: the local side is moved to a
fork (``fork``) and the stream's change applied after it. A tombstone deletes the
session here, as ``session/delete`` would (its running turn stopped first), after
moving to a fork what this device wrote that the deleting one never saw.

How far the stream was followed is kept in the store with each applied change, so
a restart resumes right after it; passed-over messages move that mark now and then.

A change written by a newer duologue (its store schema header above this store's
version) stops the following right before it: its records may mean what this
version would misread, and passing it over would lose it for good. The mark stays
before it, so once this device runs that version too, following resumes there;
until then ``sync/status`` says so (``stopped``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import msgspec

from ..sessions import Sessions
from ..store import SCHEMA_VERSION
from . import wire
from .fork import unpublished
from .link import Link, Stored
from .positions import Position, Positions

log = logging.getLogger(__name__)

MARK_EVERY = 256
"""Passed-over messages between two writes of the followed mark (and when caught up)."""


class Follower:
    def __init__(self, sessions: Sessions, positions: Positions, device: str,
                 diverged: Callable[[str, int], None], forget: Callable[[str], Awaitable[None]]):
        self.sessions = sessions
        self.forget = forget
        """Stops a session's turns before a tombstone deletes it (the daemon's queue)."""
        self.diverged = diverged
        self.positions = positions
        self.device = device
        self.lag = 0
        """Messages the server had not delivered yet, as of the last one taken."""
        self.gaps: dict[str, int] = {}
        """Sessions whose stream history starts past what this store holds -> the seq."""
        self._marked = 0
        self.stopped: str | None = None
        """Why following stopped before a change this version cannot read, if it did."""

    async def run(self, link: Link) -> None:
        self._marked = self.sessions.store.sync.followed()
        async for stored in link.follow(self._marked):
            if stored.schema > SCHEMA_VERSION:
                self._stop_before(stored)
                return
            try:
                replica = wire.decode(stored.data)
            except msgspec.DecodeError:
                log.error("stream message %d on %s cannot be read; passed over", stored.stream_seq, stored.subject)
                self.lag = stored.pending
                self._pass(stored)
                continue
            if self._deletes_here(replica):
                await self.forget(replica.session.id)  # a turn left running would write the session back
            self.take(stored, replica)

    def _stop_before(self, stored: Stored) -> None:
        why = (f"stream message {stored.stream_seq} ({stored.subject}) was written by a newer duologue "
               f"(store schema {stored.schema}; this one reads up to {SCHEMA_VERSION}): following stopped "
               "before it; upgrade duologue on this device to follow again")
        if why != self.stopped:
            log.error("sync: %s", why)
        self.stopped = why
        self.lag = stored.pending + 1

    def _deletes_here(self, replica: wire.Replica) -> bool:
        """Whether ``replica`` is another device's tombstone of a session held here."""
        return (replica.deleted and replica.device != self.device
                and self.sessions.store.get_session(replica.session.id) is not None)

    def take(self, stored: Stored, replica: wire.Replica) -> None:
        """Apply, pass over or fork for one stream message (``replica``, its decoding)."""
        self.lag = stored.pending
        store = self.sessions.store
        sid = replica.session.id
        if replica.deleted:
            return self._delete(replica, stored)
        if sid in self.positions.held:
            return self._pass(stored)
        local = store.get_session(sid)
        if local is None and replica.device == self.device and replica.after > 0:
            # this device's own change, followed back after it deleted the session here
            # (the lease went with the session, so ``held`` no longer passes it over)
            return self._pass(stored)
        local_last = local.last_seq if local is not None else 0
        last = replica.session.last_seq
        if last <= local_last and self._holds(sid, replica):
            if last == local_last:
                self.positions.known[sid] = Position(stored.stream_seq, last)
            return self._pass(stored)
        if replica.after == local_last:
            self.sessions.commit_replica(replica.change(local), stored.stream_seq)
            self._marked = stored.stream_seq
            self.positions.known[sid] = Position(stored.stream_seq, last)
            self.gaps.pop(sid, None)
            return None
        if replica.after > local_last:
            if sid not in self.gaps:
                log.warning("session %s: the stream continues at seq %d but this store ends at %d; "
                            "its earlier history was never published", sid, replica.after + 1, local_last)
            self.gaps[sid] = replica.after
            return self._pass(stored)
        log.warning("session %s diverged: %s wrote seqs %d-%d, this store holds up to %d",
                    sid, replica.device, replica.after + 1, last, local_last)
        self.diverged(sid, replica.after)
        if sid not in self.positions.held:  # forked: the stream's change follows now
            return self.take(stored, replica)
        return self._pass(stored)

    def _delete(self, replica: wire.Replica, stored: Stored) -> None:
        """Apply another device's deletion: the session goes, with everything the
        stream holds of it; this device's own writes after what the deleter saw
        (unpublished, so nowhere else) move to a fork first."""
        sid = replica.session.id
        store = self.sessions.store
        local = store.get_session(sid)
        self.gaps.pop(sid, None)  # changes of it this store could not apply are moot now
        if local is None or replica.device == self.device:
            return self._pass(stored)
        if local.last_seq > replica.after and unpublished(store, sid):
            log.warning("session %s deleted by %s while this device wrote to it; those writes go to a fork",
                        sid, replica.device)
            self.diverged(sid, replica.after)
        self.positions.held.pop(sid, None)
        self.positions.known.pop(sid, None)
        store.sync.published(unpublished(store, sid))
        self.sessions.delete(sid, followed=stored.stream_seq)
        self._marked = stored.stream_seq
        log.info("session %s deleted by %s", sid, replica.device)

    def _holds(self, sid: str, replica: wire.Replica) -> bool:
        """Whether this store already holds ``replica`` (not something else at its seqs)."""
        if replica.device == self.device or not replica.events:
            return True
        seq, stored = replica.events[-1]
        return self.sessions.store.stored_event(sid, seq) == stored

    def _pass(self, stored: Stored) -> None:
        if stored.pending == 0 or stored.stream_seq - self._marked >= MARK_EVERY:
            self.sessions.store.sync.skip_to(stored.stream_seq)
            self._marked = stored.stream_seq
