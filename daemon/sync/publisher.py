"""Publishing the outbox: each change the store took appended to its session's
subject under JetStream's optimistic concurrency, many sessions at once.

A session's changes must reach its subject in order (each append names the stream
sequence it follows), so each session with something to send has one *chain*, a
task appending its changes one after another; chains of different sessions run
side by side, at most ``IN_FLIGHT`` appends awaiting JetStream's acknowledgement
at a time. Changes a session wrote while its last append was in flight go as one
message (``wire.merged``): fewer appends for the writer, fewer writes for every
follower. Acknowledged entries leave the outbox in one store write per burst.

An entry leaves the outbox only once JetStream acknowledged it, so a kill, an
outage or a refusal loses nothing; a republish reuses its ``Nats-Msg-Id`` and is
deduplicated. Before the first append to a session since (re)connecting, the
subject's last message says where it stands: the change it ended with is this
one (already appended before a kill: dropped), the one this change follows
(appended next), or another device's (the session diverged: forked, see
``fork``, or held, see ``positions``). A session that predates sync is published
whole first.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import Counter, deque
from collections.abc import Callable

import msgspec

from ..store import Store
from . import wire
from .link import Link, Refused
from .positions import Position, Positions

Diverged = Callable[[str, int], None]
"""Told a session and the last seq this store shares with the stream (``fork``)."""

IN_FLIGHT = 64
"""Appends awaiting their acknowledgement at once, over all sessions."""

log = logging.getLogger(__name__)

Entry = tuple[int, bytes, wire.Replica]
"""An outbox entry to send: its key, its bytes, and what they decode to."""


class Publisher:
    def __init__(self, store: Store, positions: Positions, device: str, diverged: Diverged):
        self.store = store
        self._diverged = diverged
        self.forks: Counter[str] = Counter()
        """Divergences handled so far, per session: each rewrites that session's outbox."""
        self.positions = positions
        self.device = device
        self.wake = asyncio.Event()
        """Set by the outbox encoder at every change: there is something to send."""
        self._queues: dict[str, deque[Entry]] = {}
        self._chains: dict[str, asyncio.Task[None]] = {}
        self._seen = 0
        """The last outbox key handed to a chain (or passed over) since connecting."""
        self._acked: list[int] = []
        self._failure: BaseException | None = None
        self._slots = asyncio.Semaphore(IN_FLIGHT)

    def diverged(self, sid: str, after: int) -> None:
        self.forks[sid] += 1
        self._diverged(sid, after)

    async def run(self, link: Link) -> None:
        """Send every entry as it comes, until cancelled or an append fails (raised)."""
        self._seen, self._failure = 0, None
        try:
            while True:
                self.wake.clear()
                if self._failure is not None:
                    raise self._failure
                self._dispatch(link)
                await self.wake.wait()
        finally:
            chains = list(self._chains.values())
            for chain in chains:
                chain.cancel()
            await asyncio.gather(*chains, return_exceptions=True)
            self._queues.clear()
            self._flush()

    def _dispatch(self, link: Link) -> None:
        """Hand the outbox entries not seen yet to their sessions' chains."""
        while batch := self.store.sync.pending(self._seen):
            for key, data in batch:
                self._seen = key
                replica = wire.decode(data)
                sid = replica.session.id
                if sid in self.positions.held:
                    continue
                if not wire.replicable(sid):
                    log.warning("session %s cannot be replicated (its id is not a subject token)", sid)
                    self._ack(key)
                    continue
                self._queues.setdefault(sid, deque()).append((key, data, replica))
                if sid not in self._chains:
                    self._chains[sid] = asyncio.create_task(self._chain(link, sid), name=f"sync chain {sid}")

    async def _chain(self, link: Link, sid: str) -> None:
        """Append the session's queued entries in order; ends when none is left."""
        queue = self._queues[sid]
        try:
            while queue:
                taken = self._next(queue, link.max_payload // 2, self.positions.known.get(sid))
                key, data, replica = taken[-1]
                if len(taken) > 1:
                    replica = wire.merged([entry[2] for entry in taken])
                    data = wire.encode(replica)
                forks = self.forks[sid]
                async with self._slots:
                    appended = await self._append(link, key, data, replica)
                if self.forks[sid] != forks:  # the fork took its entries out of the outbox
                    present = self.store.sync.present([entry[0] for entry in queue])
                    kept = [entry for entry in queue if entry[0] in present]  # written after the fork
                    queue.clear()
                    queue.extend(kept)
                    continue
                if not appended:
                    break  # held: its entries wait in the outbox
                for entry in taken:
                    queue.popleft()
                    self._ack(entry[0])
        except Exception as exc:  # the link failed: run() raises it and the replicator reconnects
            if self._failure is None:
                self._failure = exc
            self.wake.set()
        finally:
            del self._chains[sid]
            del self._queues[sid]

    @staticmethod
    def _next(queue: deque[Entry], most: int, known: Position | None) -> list[Entry]:
        """The entries at the head of a session's queue to send as one message: the
        changes written while the last append awaited its acknowledgement, when they
        follow one another (a turn writes several in a row), up to ``most`` bytes.
        Only where the subject is known to end: after a reconnect its last message
        may be part of what is queued (sent before a lost acknowledgement), and the
        entries are then sent one by one, the ones already there passed over."""
        taken = [queue[0]]
        if known is None or known.last_seq != queue[0][2].after:
            return taken
        size = len(queue[0][1])
        for entry in itertools.islice(queue, 1, None):
            size += len(entry[1])
            if (entry[2].after != taken[-1][2].session.last_seq or size > most
                    or entry[2].deleted or taken[-1][2].deleted):
                break
            taken.append(entry)
        return taken

    def _ack(self, key: int) -> None:
        """``key`` is in JetStream: drop it from the outbox with the others of this burst."""
        if not self._acked:
            asyncio.get_running_loop().call_soon(self._flush)
        self._acked.append(key)

    def _flush(self) -> None:
        keys, self._acked = self._acked, []
        if keys:
            self.store.sync.published(keys)

    async def _append(self, link: Link, key: int, data: bytes, replica: wire.Replica) -> bool:
        """Append one change; False when its session is held (diverged)."""
        sid = replica.session.id
        if not replica.deleted and self.store.get_session(sid) is None:
            return True  # deleted here since: its tombstone follows, and deletes it everywhere
        subject = wire.subject(sid)
        forks = self.forks[sid]
        for _ in range(3):  # a refusal re-reads the subject once, then it is a divergence
            expected = await self._expected(link, replica)
            if self.forks[sid] != forks:  # the follower forked meanwhile: this change is gone
                return False
            if expected is None:
                return sid not in self.positions.held
            try:
                stream_seq = await link.append(subject, data, wire.msg_id(replica, key), expected)
            except Refused:
                self.positions.known.pop(sid, None)
                if self.forks[sid] != forks:
                    return False
                continue
            self.positions.known[sid] = Position(stream_seq, replica.session.last_seq)
            if replica.deleted:
                await link.keep_only_last(subject)
            return True
        if not replica.deleted:  # a deletion diverges from nothing: it waits for the next connection
            self.diverged(sid, replica.after)
        return False

    async def _expected(self, link: Link, replica: wire.Replica) -> int | None:
        """The stream sequence this change must follow; None when it needs no append
        (already there) or must not be appended (held)."""
        sid = replica.session.id
        known = self.positions.known.get(sid)
        if known is not None and known.last_seq == replica.after:
            return known.stream_seq
        last = await link.last(wire.subject(sid))
        if last is None:
            if replica.after == 0:
                return 0
            return await self._publish_whole(link, replica)
        try:
            there = wire.decode(last.data)
        except msgspec.DecodeError:
            log.error("the last message of %s cannot be read; session held", sid)
            self.positions.hold(sid, replica.after)
            return None
        self.positions.known[sid] = Position(last.stream_seq, there.session.last_seq)
        if there.deleted:  # already deleted; if elsewhere, the follower forks what this device wrote since
            if not replica.deleted and self.store.get_session(sid) is not None:
                self.positions.hold(sid, there.after)
            return None
        if replica.deleted:  # a deletion follows whatever the stream holds (docs/sync.md)
            return last.stream_seq
        if there.device == self.device and replica.session.last_seq <= there.session.last_seq:
            return None  # appended before a kill or a lost acknowledgement, or published whole
        if there.session.last_seq == replica.after:
            return last.stream_seq
        self.diverged(sid, min(replica.after, there.session.last_seq))
        return None

    async def _publish_whole(self, link: Link, replica: wire.Replica) -> int | None:
        """Publish the whole session (it has history from before sync); the outbox
        entries it covers are then already there (None), later ones follow it."""
        sid = replica.session.id
        whole = self.store.whole(sid)
        if whole is None:
            return None
        data = wire.encoder(self.device)(whole)
        stream_seq = await link.append(wire.subject(sid), data, f"{sid}:{whole.session.last_seq}", 0)
        self.positions.known[sid] = Position(stream_seq, whole.session.last_seq)
        log.info("session %s published whole (%d events from before sync)", sid, len(whole.events))
        if replica.session.last_seq <= whole.session.last_seq:
            return None
        return stream_seq
