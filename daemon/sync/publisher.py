"""Publishing the outbox: each change the store took, in order, appended to its
session's subject under JetStream's optimistic concurrency.

An entry leaves the outbox only once JetStream acknowledged it, so a kill, an
outage or a refusal loses nothing; a republish reuses its ``Nats-Msg-Id`` and is
deduplicated. Before the first append to a session since (re)connecting, the
subject's last message says where it stands: the change it ended with is this
one (already appended before a kill: dropped), the one this change follows
(appended next), or another device's (the session diverged: held, see
``positions``). A session that predates sync is published whole first.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import msgspec

from ..store import Store
from . import wire
from .link import Link, Refused
from .positions import Position, Positions

Diverged = Callable[[str, int], None]
"""Told a session and the last seq this store shares with the stream (``fork``)."""

log = logging.getLogger(__name__)


class Publisher:
    def __init__(self, store: Store, positions: Positions, device: str, diverged: Diverged):
        self.store = store
        self._diverged = diverged
        self.forks = 0
        """Divergences handled so far: each may rewrite the outbox."""
        self.positions = positions
        self.device = device
        self.wake = asyncio.Event()
        """Set by the outbox encoder at every change: there is something to send."""

    def diverged(self, sid: str, after: int) -> None:
        self.forks += 1
        self._diverged(sid, after)

    async def run(self, link: Link) -> None:
        while True:
            self.wake.clear()
            await self.drain(link)
            await self.wake.wait()

    async def drain(self, link: Link) -> None:
        """Append every outbox entry of a session that is not held; returns when none
        is left to send."""
        after = 0
        while True:
            batch = self.store.sync.pending(after)
            if not batch:
                return
            sent: list[int] = []
            for key, data in batch:
                after = key
                replica = wire.decode(data)
                sid = replica.session.id
                if sid in self.positions.held:
                    continue
                if not wire.replicable(sid):
                    log.warning("session %s cannot be replicated (its id is not a subject token)", sid)
                else:
                    forks = self.forks
                    appended = await self._append(link, key, data, replica)
                    if self.forks != forks:  # a divergence rewrote the outbox (fork): read it again
                        after = 0
                        break
                    if not appended:
                        continue
                sent.append(key)
            if sent:
                self.store.sync.published(sent)

    async def _append(self, link: Link, key: int, data: bytes, replica: wire.Replica) -> bool:
        """Append one change; False when its session is held (diverged)."""
        sid = replica.session.id
        subject = wire.subject(sid)
        forks = self.forks
        for _ in range(3):  # a refusal re-reads the subject once, then it is a divergence
            expected = await self._expected(link, replica)
            if self.forks != forks:  # the follower forked meanwhile: this change is gone
                return False
            if expected is None:
                return sid not in self.positions.held
            try:
                stream_seq = await link.append(subject, data, wire.msg_id(replica, key), expected)
            except Refused:
                self.positions.known.pop(sid, None)
                if self.forks != forks:
                    return False
                continue
            self.positions.known[sid] = Position(stream_seq, replica.session.last_seq)
            return True
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
