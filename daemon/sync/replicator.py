"""The replicator: one connection to NATS at a time, and the publisher and follower
running on it, for as long as the daemon runs.

It never stands in the way of local work: the daemon serves whether NATS is there
or not, and every change waits in the store's outbox meanwhile. A connection that
fails or breaks is tried again after a pause growing to ``RETRY_MAX_S``; the last
failure is kept, as said, for ``duologue sync status`` and logged once per change
of wording.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from duologue.protocol import methods as m

from ..sessions import Sessions
from ..settings import SyncSettings
from . import wire
from .follower import Follower
from .fork import fork_divergent
from .link import Link, LinkError
from .positions import Positions
from .publisher import Publisher

log = logging.getLogger(__name__)

RETRY_FIRST_S = 0.5
RETRY_MAX_S = 5.0


class Replicator:
    def __init__(self, settings: SyncSettings, sessions: Sessions,
                 forget: Callable[[str], Awaitable[None]] | None = None):
        self.settings = settings
        self.sessions = sessions
        self.positions = Positions()
        self.publisher = Publisher(sessions.store, self.positions, settings.device_name, self._diverged)
        self.follower = Follower(sessions, self.positions, settings.device_name, self.publisher.diverged,
                                 forget)
        self.connected = False
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
        async with asyncio.TaskGroup() as group:
            publishing = group.create_task(self.publisher.run(link), name="sync publisher")
            following = group.create_task(self.follower.run(link), name="sync follower")
            await link.lost.wait()
            publishing.cancel()
            following.cancel()
        raise LinkError(f"lost the connection to {self.settings.server}; reconnecting")

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
        unsent: Counter[str] = Counter()
        after = 0
        while batch := self.sessions.store.sync.pending(after):
            for key, data in batch:
                unsent[wire.session_of_entry(data)] += 1
                after = key
        held, gaps = self.positions.held, self.follower.gaps
        rows = [m.SyncSessionStatus(session_id=sid, unpublished=unsent.get(sid, 0),
                                    diverged_after_seq=held.get(sid), missing_after_seq=gaps.get(sid))
                for sid in sorted({*unsent, *held, *gaps})]
        return m.SyncStatusResult(
            configured=True, connected=self.connected, server=self.settings.server,
            device_name=self.settings.device_name, error=self.error, follow_lag=self.follower.lag,
            sessions=rows, leases=[])
