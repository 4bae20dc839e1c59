"""What replication keeps in the store: the outbox of changes not yet in JetStream,
and how far this store has followed the stream.

A change to publish is queued in the same transaction as the change itself
(``Store.apply``), so a kill between the two cannot lose one or publish one the
store did not keep; it leaves the outbox only once JetStream acknowledged it. A
change followed from the stream is written with the stream sequence it came at
(``Store.apply_replica``), so a restart resumes right after the last one kept.
The outbox entries are bytes daemon/sync/wire.py encodes; this module only keeps,
lists and drops them.

Databases:
  sync_outbox  u64(n) -> an encoded change, in the order the store took them
  sync_state   b"followed" -> u64(the last stream sequence applied)
               b"queued"   -> u64(the last outbox key given): keys are never
                              reused, so a publisher that has read up to a key
                              sees every later change, even once the outbox was
                              empty in between
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lmdb

from .keys import U64, u64

DATABASES = ("sync_outbox", "sync_state")
_FOLLOWED = b"followed"
_QUEUED = b"queued"


class SyncLog:
    """The sync databases of one store environment, written through the store's own
    write path (``write``: one synced transaction, map growth handled)."""

    def __init__(self, env: lmdb.Environment, dbs: dict[str, Any],
                 write: Callable[[Callable[[lmdb.Transaction], Any]], Any]) -> None:
        self._env = env
        self._outbox, self._state = (dbs[name] for name in DATABASES)
        self._write = write

    def queue(self, txn: lmdb.Transaction, change: bytes) -> None:
        """Add ``change`` at the end of the outbox (inside the change's transaction)."""
        cur = txn.cursor(db=self._outbox)
        last = U64.unpack(cur.key())[0] if cur.last() else 0
        given = txn.get(_QUEUED, db=self._state)
        n = max(last, 0 if given is None else U64.unpack(given)[0]) + 1
        txn.put(u64(n), change, db=self._outbox)
        txn.put(_QUEUED, u64(n), db=self._state)

    def pending(self, after: int = 0, limit: int = 256) -> list[tuple[int, bytes]]:
        """The oldest ``limit`` changes not yet acknowledged whose outbox key is past
        ``after``, with their keys."""
        out: list[tuple[int, bytes]] = []
        with self._env.begin(db=self._outbox) as txn:
            cur = txn.cursor()
            if not cur.set_range(u64(after + 1)):
                return out
            for key, value in cur:
                if len(out) >= limit:
                    break
                out.append((U64.unpack(key)[0], bytes(value)))
        return out

    def present(self, keys: list[int]) -> set[int]:
        """Which of ``keys`` are still in the outbox (a fork drops a session's)."""
        with self._env.begin(db=self._outbox) as txn:
            return {key for key in keys if txn.get(u64(key)) is not None}

    def backlog(self) -> int:
        with self._env.begin() as txn:
            return txn.stat(self._outbox)["entries"]

    def published(self, keys: list[int]) -> None:
        """Drop these outbox entries: JetStream holds them."""
        def write(txn: lmdb.Transaction) -> None:
            for key in keys:
                txn.delete(u64(key), db=self._outbox)

        self._write(write)

    def followed(self) -> int:
        """The stream sequence of the last change applied from the stream (0: none)."""
        with self._env.begin(db=self._state) as txn:
            raw = txn.get(_FOLLOWED)
        return 0 if raw is None else U64.unpack(raw)[0]

    def mark_followed(self, txn: lmdb.Transaction, stream_seq: int) -> None:
        txn.put(_FOLLOWED, u64(stream_seq), db=self._state)

    def skip_to(self, stream_seq: int) -> None:
        """Remember ``stream_seq`` as followed without a change (one of ours, or one
        already held), so a restart does not read it again."""
        self._write(lambda txn: self.mark_followed(txn, stream_seq))
