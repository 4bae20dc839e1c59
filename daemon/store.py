"""The store: every byte duologue keeps, in one LMDB environment.

All store access goes through this module, which offers intent-named operations.
Each write is one short transaction, committed with sync on, so a commit that
returned survives kill -9. Values are msgpack-encoded Structs (encoded before the
transaction opens); keys sort bytewise with big-endian integers and a NUL between
parts, so a prefix scan never bleeds into a neighbour.

Databases:
  meta        b"schema_version" -> ascii int
  sessions    sid -> Session
  recency     updated_ms(8) sid -> b""             (all sessions, by recency)
  by_project  project_hash(16) updated_ms(8) sid   (per project, by recency)
  events      sid NUL seq(8) -> notification frame (JSON, ready to send)
  messages    sid NUL seq(8) -> Message            (seq of its message/created)
  message_ids message id -> sid NUL seq(8)
  switches    sid NUL seq(8) -> ModelSwitch
  tasks       sid -> TaskList
  summaries   sid NUL seq(8) -> ContextSummary
"""

from __future__ import annotations

import hashlib
import logging
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, TypeVar

import lmdb
import msgspec

from duologue.protocol.entities import ContextSummary, Message, ModelSwitch, Session, TaskList

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
_U64 = struct.Struct(">Q")
_T = TypeVar("_T")


class StoreError(Exception):
    """The store cannot be used as it is; the message says why and what to do."""


class StoreVersionError(StoreError):
    pass


@dataclass
class Change:
    """Everything one operation writes about one session, applied atomically.

    ``session`` is the new record; ``previous`` the one it replaces (None on create),
    used to move the recency index entries. ``events`` are encoded notification
    frames keyed by their seq.
    """

    session: Session
    previous: Session | None
    events: list[tuple[int, bytes]] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    switches: list[ModelSwitch] = field(default_factory=list)
    tasks: TaskList | None = None
    summaries: list[ContextSummary] = field(default_factory=list)


def _u64(n: int) -> bytes:
    return _U64.pack(n)


def _ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def _seq_key(sid: str, seq: int) -> bytes:
    return sid.encode() + b"\0" + _u64(seq)


def _project_hash(project_id: str | None) -> bytes:
    return hashlib.blake2b((project_id or "").encode(), digest_size=16).digest()


def encode_cursor(session: Session) -> str:
    return f"{_ms(session.updated_at)}.{session.id}"


def _decode_cursor(cursor: str) -> bytes:
    try:
        ms, sid = cursor.split(".", 1)
        return _u64(int(ms)) + sid.encode()
    except ValueError:
        raise ValueError(f"invalid cursor {cursor!r}") from None


class Store:
    """One LMDB environment. Not thread-safe by design: the daemon's event loop
    thread is its only user, so a write never waits on another writer."""

    INITIAL_MAP = 64 * 1024 * 1024

    def __init__(self, path: Path, *, map_size: int | None = None):
        path.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._env = lmdb.open(
            str(path),
            map_size=map_size or self.INITIAL_MAP,
            max_dbs=16,
            sync=True,
            metasync=True,
            subdir=True,
            lock=True,
        )
        names = ["meta", "sessions", "recency", "by_project", "events", "messages",
                 "message_ids", "switches", "tasks", "summaries"]
        self._db = {n: self._env.open_db(n.encode()) for n in names}
        self._enc = msgspec.msgpack.Encoder()
        self._session_dec = msgspec.msgpack.Decoder(Session)
        self._message_dec = msgspec.msgpack.Decoder(Message)
        self._switch_dec = msgspec.msgpack.Decoder(ModelSwitch)
        self._tasks_dec = msgspec.msgpack.Decoder(TaskList)
        self._summary_dec = msgspec.msgpack.Decoder(ContextSummary)
        self._check_version()

    def close(self) -> None:
        self._env.close()

    # --- schema version ----------------------------------------------------------------

    def schema_version(self) -> int | None:
        with self._env.begin(db=self._db["meta"]) as txn:
            raw = txn.get(b"schema_version")
        return None if raw is None else int(raw)

    def _check_version(self) -> None:
        found = self.schema_version()
        if found is None:
            self._write(lambda txn: txn.put(b"schema_version", str(SCHEMA_VERSION).encode(),
                                            db=self._db["meta"]))
        elif found > SCHEMA_VERSION:
            self._env.close()
            raise StoreVersionError(
                f"the store at {self.path} has schema version {found}, but this duologue "
                f"knows versions up to {SCHEMA_VERSION}; upgrade duologue to open it "
                f"(the store was left unchanged)"
            )

    # --- the write path -----------------------------------------------------------------

    def _write(self, fn: Callable[[lmdb.Transaction], _T]) -> _T:
        """Run ``fn`` in a write transaction, growing the map when it is full."""
        while True:
            try:
                with self._env.begin(write=True) as txn:
                    return fn(txn)
            except lmdb.MapFullError:
                new_size = self._env.info()["map_size"] * 2
                log.info("store map full; growing to %d MiB", new_size // 2**20)
                self._env.set_mapsize(new_size)
            except lmdb.MapResizedError:
                self._env.set_mapsize(0)

    def apply(self, change: Change) -> None:
        """Write one session change atomically (session, indexes, events, records)."""
        s, prev = change.session, change.previous
        session_bytes = self._enc.encode(s)
        messages = [(m, self._enc.encode(m)) for m in change.messages]
        switches = [(w, self._enc.encode(w)) for w in change.switches]
        tasks = None if change.tasks is None else self._enc.encode(change.tasks)
        summaries = [(x, self._enc.encode(x)) for x in change.summaries]
        sid = s.id.encode()

        def write(txn: lmdb.Transaction) -> None:
            if prev is not None:
                txn.delete(_u64(_ms(prev.updated_at)) + sid, db=self._db["recency"])
                txn.delete(_project_hash(prev.project_id) + _u64(_ms(prev.updated_at)) + sid,
                           db=self._db["by_project"])
            txn.put(sid, session_bytes, db=self._db["sessions"])
            txn.put(_u64(_ms(s.updated_at)) + sid, b"", db=self._db["recency"])
            txn.put(_project_hash(s.project_id) + _u64(_ms(s.updated_at)) + sid, b"",
                    db=self._db["by_project"])
            for seq, frame in change.events:
                txn.put(_seq_key(s.id, seq), frame, db=self._db["events"])
            for m, raw in messages:
                key = _seq_key(s.id, m.seq)
                txn.put(key, raw, db=self._db["messages"])
                txn.put(m.id.encode(), key, db=self._db["message_ids"])
            for w, raw in switches:
                txn.put(_seq_key(s.id, w.seq), raw, db=self._db["switches"])
            if tasks is not None:
                txn.put(sid, tasks, db=self._db["tasks"])
            for x, raw in summaries:
                txn.put(_seq_key(s.id, x.seq), raw, db=self._db["summaries"])

        self._write(write)

    def delete_session(self, session: Session) -> None:
        """Remove the session and everything keyed under it, in one transaction."""
        sid = session.id.encode()
        prefix = sid + b"\0"

        def write(txn: lmdb.Transaction) -> None:
            txn.delete(sid, db=self._db["sessions"])
            txn.delete(sid, db=self._db["tasks"])
            txn.delete(_u64(_ms(session.updated_at)) + sid, db=self._db["recency"])
            txn.delete(_project_hash(session.project_id) + _u64(_ms(session.updated_at)) + sid,
                       db=self._db["by_project"])
            for name in ("events", "switches", "summaries", "messages"):
                cur = txn.cursor(db=self._db[name])
                if not cur.set_range(prefix):
                    continue
                while cur.key().startswith(prefix):
                    if name == "messages":
                        msg = self._message_dec.decode(cur.value())
                        txn.delete(msg.id.encode(), db=self._db["message_ids"])
                    if not cur.delete():
                        break

        self._write(write)

    # --- reads --------------------------------------------------------------------------

    def get_session(self, session_id: str) -> Session | None:
        with self._env.begin(db=self._db["sessions"]) as txn:
            raw = txn.get(session_id.encode())
        return None if raw is None else self._session_dec.decode(raw)

    def count_sessions(self) -> int:
        with self._env.begin() as txn:
            return txn.stat(self._db["sessions"])["entries"]

    def list_sessions(self, project_id: str | None = None, *, all_projects: bool = True,
                      limit: int = 50, before: str | None = None) -> list[Session]:
        """Sessions, newest first, read from the recency index (no message is read).

        With ``all_projects`` false, only sessions whose project_id equals
        ``project_id`` (None meaning sessions without a project).
        """
        if all_projects:
            db, prefix = self._db["recency"], b""
        else:
            db, prefix = self._db["by_project"], _project_hash(project_id)
        start = prefix + (_decode_cursor(before) if before else b"\xff" * 9)
        out: list[Session] = []
        with self._env.begin() as txn:
            cur = txn.cursor(db=db)
            positioned = cur.set_range(start)
            if not positioned:
                positioned = cur.last()
            elif cur.key() >= start:
                positioned = cur.prev()
            while positioned and len(out) < limit:
                key = cur.key()
                if not key.startswith(prefix):
                    break
                raw = txn.get(key[len(prefix) + 8:], db=self._db["sessions"])
                if raw is not None:
                    out.append(self._session_dec.decode(raw))
                positioned = cur.prev()
        return out

    def _scan(self, db: str, sid: str, since_seq: int, limit: int | None,
              decode: Callable[[bytes], _T]) -> Iterator[_T]:
        prefix = sid.encode() + b"\0"
        with self._env.begin(db=self._db[db], buffers=True) as txn:
            cur = txn.cursor()
            if not cur.set_range(_seq_key(sid, since_seq + 1)):
                return
            n = 0
            for key, value in cur:
                if not bytes(key[: len(prefix)]) == prefix or (limit is not None and n >= limit):
                    return
                yield decode(bytes(value))
                n += 1

    def messages(self, sid: str, since_seq: int = 0, limit: int | None = None) -> list[Message]:
        return list(self._scan("messages", sid, since_seq, limit, self._message_dec.decode))

    def switches(self, sid: str) -> list[ModelSwitch]:
        return list(self._scan("switches", sid, 0, None, self._switch_dec.decode))

    def summaries(self, sid: str) -> list[ContextSummary]:
        return list(self._scan("summaries", sid, 0, None, self._summary_dec.decode))

    def events(self, sid: str, since_seq: int = 0) -> list[bytes]:
        """The stored notification frames after ``since_seq``, in seq order."""
        return list(self._scan("events", sid, since_seq, None, bytes))

    def message(self, message_id: str) -> Message | None:
        with self._env.begin() as txn:
            key = txn.get(message_id.encode(), db=self._db["message_ids"])
            raw = None if key is None else txn.get(key, db=self._db["messages"])
        return None if raw is None else self._message_dec.decode(raw)

    def tasks(self, sid: str) -> TaskList:
        with self._env.begin(db=self._db["tasks"]) as txn:
            raw = txn.get(sid.encode())
        return TaskList() if raw is None else self._tasks_dec.decode(raw)

    def unfinished_messages(self) -> list[Message]:
        """Assistant messages still marked streaming: turns a crash interrupted."""
        out = []
        with self._env.begin(db=self._db["messages"]) as txn:
            for _, raw in txn.cursor():
                msg = self._message_dec.decode(raw)
                if msg.status == "streaming":
                    out.append(msg)
        return out

    def info(self) -> dict[str, Any]:
        info = self._env.info()
        return {"map_size": info["map_size"], "last_txnid": info["last_txnid"]}
