"""Import bookkeeping: which external ids an import took, and its batches for undo.

An import writes its marks in the same transaction as the session it creates or
extends (``Store.apply`` calls :meth:`ImportRecords.write_marks`), so a kill between
the two cannot leave a session without its marks or marks without their session.
The batch header and per-session entries are bytes daemon/imports.py encodes; this
module only keeps, finds and drops them.

Databases (keys in daemon/store/keys.py):
  import_ids       import_key(external id) -> sid NUL batch   (an imported message)
  import_sessions  import_key(external id) -> sid NUL batch   (an imported session)
  import_batches   batch -> header; batch NUL sid -> that session's entry
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import lmdb

from .keys import import_key

_T = TypeVar("_T")

DATABASES = ("import_ids", "import_sessions", "import_batches")


@dataclass
class ImportMarks:
    """What an import writes beside the session, in the same transaction: the batch's
    header and this session's entry in it, and the external ids now taken."""

    batch_id: str
    header: bytes
    entry: bytes
    session_key: str | None
    """Set when this batch created the session: its external id now names it."""
    message_keys: list[str] = field(default_factory=list)


class ImportRecords:
    """The import databases of one store environment, read and written through the
    store's own write path (``write``: one synced transaction, map growth handled)."""

    def __init__(self, env: lmdb.Environment, dbs: dict[str, Any],
                 write: Callable[[Callable[[lmdb.Transaction], Any]], Any]) -> None:
        self._env = env
        self._ids, self._sessions, self._batches = (dbs[name] for name in DATABASES)
        self._write = write

    def write_marks(self, txn: lmdb.Transaction, sid: str, marks: ImportMarks) -> None:
        value = sid.encode() + b"\0" + marks.batch_id.encode()
        batch = marks.batch_id.encode()
        txn.put(batch, marks.header, db=self._batches)
        txn.put(batch + b"\0" + sid.encode(), marks.entry, db=self._batches)
        if marks.session_key is not None:
            txn.put(import_key(marks.session_key), value, db=self._sessions)
        for key in marks.message_keys:
            txn.put(import_key(key), value, db=self._ids)

    def session(self, external_id: str) -> str | None:
        """The id of the session an import created for this external id, if any."""
        with self._env.begin(db=self._sessions) as txn:
            raw = txn.get(import_key(external_id))
        return None if raw is None else raw.split(b"\0", 1)[0].decode()

    def messages(self, external_ids: list[str]) -> dict[str, str]:
        """External message id -> session id, for the ids imported before."""
        out = {}
        with self._env.begin(db=self._ids) as txn:
            for ext in external_ids:
                raw = txn.get(import_key(ext))
                if raw is not None:
                    out[ext] = raw.split(b"\0", 1)[0].decode()
        return out

    def batch(self, batch_id: str) -> tuple[bytes, list[bytes]] | None:
        """A batch's header and its per-session entries, or None."""
        batch = batch_id.encode()
        with self._env.begin(db=self._batches) as txn:
            header = txn.get(batch)
            if header is None:
                return None
            entries = []
            cur = txn.cursor()
            prefix = batch + b"\0"
            if cur.set_range(prefix):
                for key, value in cur:
                    if not key.startswith(prefix):
                        break
                    entries.append(bytes(value))
        return bytes(header), entries

    def batch_entry(self, batch_id: str, sid: str) -> bytes | None:
        with self._env.begin(db=self._batches) as txn:
            return txn.get(batch_id.encode() + b"\0" + sid.encode())

    def batches(self) -> list[bytes]:
        """Every batch header, in batch id order (ids sort by creation time)."""
        with self._env.begin(db=self._batches) as txn:
            return [bytes(v) for k, v in txn.cursor() if b"\0" not in k]

    def put_batch_header(self, batch_id: str, header: bytes) -> None:
        """Rewrite a batch's header (to mark it closed), alone in its transaction."""
        self._write(lambda txn: txn.put(batch_id.encode(), header, db=self._batches))

    def forget_batch(self, batch_id: str) -> None:
        """Drop the batch record and every external id it took, in one transaction."""
        batch = batch_id.encode()
        suffix = b"\0" + batch

        def write(txn: lmdb.Transaction) -> None:
            for db in (self._ids, self._sessions):
                doomed = [bytes(k) for k, v in txn.cursor(db=db) if v.endswith(suffix)]
                for key in doomed:
                    txn.delete(key, db=db)
            cur = txn.cursor(db=self._batches)
            txn.delete(batch, db=self._batches)
            prefix = batch + b"\0"
            if cur.set_range(prefix):
                while cur.key().startswith(prefix):
                    if not cur.delete():
                        break

        self._write(write)
