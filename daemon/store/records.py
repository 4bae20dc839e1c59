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
  events      sid NUL seq(8) -> notification frame (JSON, ready to send), except a
                                 reply's deltas (their text) and completion (its
                                 frame without the content), which reads rebuild
                                 from the reply's record: streams.py
  messages    sid NUL seq(8) -> Message            (seq of its message/created; a reply
                                                    that streams is written when it opens
                                                    and when it ends: its text meanwhile
                                                    is its delta events, see streams.py)
  message_ids message id -> sid NUL seq(8)
  switches    sid NUL seq(8) -> ModelSwitch
  tasks       sid -> TaskList
  summaries   sid NUL seq(8) -> ContextSummary
  import_ids, import_sessions, import_batches: import bookkeeping (store/imports.py)
  open_turns       sid NUL turn_id -> sid NUL seq(8) of the turn's latest message, then
                   1 (the turn is open: recovery reads it) or 0; kept by every write.
                   meta "open_turns_as_of_txn" names the last transaction that kept it,
                   so a store written since by code that does not is reindexed once
  sync_outbox, sync_state: replication's outbox and how far the stream was followed
                   (store/sync_log.py; empty unless [sync] is configured)
  model_lists      provider -> the provider's models endpoint listing with the time it
                   was fetched (bytes the discovery module encodes; a cache, opened on
                   first use, never migrated: a listing that fails to decode is refetched)

The key layout is in store/keys.py.
The schema version is upgraded by the steps in ``migrations`` when the store opens.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

import lmdb
import msgspec

from duologue.protocol.entities import TOOL_ROUNDS_USED_UP, ContextSummary, Message, ModelSwitch, Session, TaskList

from .check import damaged_message, glance
from .environment import open_environment
from .errors import (
    StoreDamaged,
    StoreError,
    StoreVersionError,
    StoreWriteError,
)
from .imports import ImportMarks, ImportRecords
from .keys import U64, decode_cursor, ms, project_hash, seq_key, u64
from .migrations import MIGRATIONS, Migration, MigrationContext, upgrade
from .streams import Frames, streamed
from .sync_log import SyncLog

log = logging.getLogger(__name__)

SCHEMA_VERSION = 5
"""The version this code writes; ``migrations.MIGRATIONS`` upgrades older stores to it."""
DISK_FULL_BELOW = 8 * 2**20
"""Free bytes under which a failed commit is reported as a full disk: LMDB reports a
short write as an I/O error, so the free space is what tells the two apart."""
LIVE_SESSIONS = 4096
"""Session records kept decoded (see ``Store._live``)."""
_T = TypeVar("_T")


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
    import_marks: ImportMarks | None = None
    durable: bool = True
    """Whether the change must survive a crash of the machine once applied. A
    reply's checkpoint need not: losing its last deltas to a power cut is losing text
    the provider sent a moment ago, which the restart marks interrupted, and skipping
    the metadata sync takes one of a commit's two syncs off the path of every delta
    (``Store._write``). Whatever the user wrote is durable."""


_INDEX_MARK = b"open_turns_as_of_txn"
_OPEN, _CLOSED = b"\1", b"\0"


def _turn_key(msg: Message) -> bytes:
    return msg.session_id.encode() + b"\0" + (msg.turn_id or "").encode()


def opens_turn(msg: Message) -> bool:
    """Whether a turn whose last message is ``msg`` is still open: a reply still
    streaming, or a prompt or tool results the model has not answered yet. Tool
    results are last for good only when the turn used up its tool rounds, and then
    say so; otherwise a stop came between two rounds."""
    return msg.status == "streaming" or (msg.role == "user" and msg.stop_reason != TOOL_ROUNDS_USED_UP)


class Store:
    """One LMDB environment. Not thread-safe by design: the daemon's event loop
    thread is its only user, so a write never waits on another writer."""

    INITIAL_MAP = 64 * 1024 * 1024

    def __init__(self, path: Path, *, map_size: int | None = None,
                 migrations: Sequence[Migration] | None = None, target_version: int = SCHEMA_VERSION,
                 backups_dir: Path | None = None):
        """``migrations`` (default: ``migrations.MIGRATIONS``) upgrade an older store to
        ``target_version`` when it opens, each step after a compacted copy of the store
        in ``backups_dir`` (default: ``backups`` beside the store)."""
        path.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.backups_dir = backups_dir or path.parent / "backups"
        self.target_version = target_version
        self._migrations = MIGRATIONS if migrations is None else list(migrations)
        problem = glance(path)  # before LMDB maps it: a cut file would be a SIGBUS later
        if problem is not None:
            raise StoreDamaged(damaged_message(path, self.backups_dir, problem))
        try:
            # metasync off: a commit syncs its data pages, and _write syncs the metadata
            # page too unless the change may wait (LMDB keeps its integrity either way;
            # a machine crash may only undo the last such commit)
            self._env = open_environment(path, map_size=map_size or self.INITIAL_MAP, sync=True, metasync=False)
        except (lmdb.InvalidError, lmdb.CorruptedError, lmdb.VersionMismatchError) as exc:
            raise StoreDamaged(damaged_message(path, self.backups_dir, str(exc))) from None
        self._syncs = self._env.flags()["sync"]
        """Whether a durable write syncs the metadata page: not in an environment a
        caller opened without syncs at all (a benchmark's setup)."""
        names = ["meta", "sessions", "recency", "by_project", "events", "messages",
                 "message_ids", "switches", "tasks", "summaries",
                 "import_ids", "import_sessions", "import_batches", "open_turns",
                 "sync_outbox", "sync_state"]
        try:
            self._db = {n: self._env.open_db(n.encode()) for n in names}
        except (lmdb.CorruptedError, lmdb.PageNotFoundError, lmdb.InvalidError) as exc:
            self._env.close()
            raise StoreDamaged(damaged_message(path, self.backups_dir, f"its list of databases cannot be "
                                                                       f"read ({exc})")) from None
        self._enc = msgspec.msgpack.Encoder()
        self._session_dec = msgspec.msgpack.Decoder(Session)
        self._message_dec = msgspec.msgpack.Decoder(Message)
        self._switch_dec = msgspec.msgpack.Decoder(ModelSwitch)
        self._tasks_dec = msgspec.msgpack.Decoder(TaskList)
        self._summary_dec = msgspec.msgpack.Decoder(ContextSummary)
        self.imports = ImportRecords(self._env, self._db, self._write)
        self.sync = SyncLog(self._env, self._db, self._write)
        self.outbox: Callable[[Change], bytes] | None = None
        """Set when [sync] is configured: how a change is encoded for the outbox,
        queued in the change's own transaction (store/sync_log.py)."""
        self.outbox_deleted: Callable[[Session], bytes] | None = None
        """Likewise for a deletion: the tombstone that deletes the session elsewhere."""
        self._live: dict[str, Session] = {}
        """Session records as last written or read: a running turn reads its session
        at every checkpoint, and decoding it each time is work for nothing. Every
        write of a session record goes through this class and keeps it current."""
        self._counted: int | None = None
        """How many sessions the store holds, as of the last write (count_sessions)."""
        with self._env.begin() as txn:
            has_messages = txn.stat(self._db["messages"])["entries"] > 0
        self._index_stale = has_messages and self._index_mark() != self._env.info()["last_txnid"]
        """True when a writer that does not keep ``open_turns`` (an older duologue, a
        restored backup) wrote last: the index is rebuilt before it is read."""
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
        target = self.target_version
        if found is None:
            self._write(lambda txn: txn.put(b"schema_version", str(target).encode(),
                                            db=self._db["meta"]))
        elif found > target:
            self._env.close()
            raise StoreVersionError(
                f"the store at {self.path} has schema version {found}, but this duologue "
                f"knows versions up to {target}; upgrade duologue to open it "
                f"(the store was left unchanged)"
            )
        elif found < target:
            try:
                upgrade(self, found, target, self._migrations)
            except StoreError:
                self._env.close()
                raise

    def run_migration_step(self, step: Migration) -> None:
        """Run one step and record its version in the same write transaction: either
        both happen or neither does (a failure or a kill leaves the old version).

        A database the step opens is kept only once the transaction commits: a handle
        opened in an aborted attempt (the map was full, ``_write`` retries) is invalid."""
        def write(txn: lmdb.Transaction) -> dict[str, Any]:
            dbs = dict(self._db)
            step.apply(MigrationContext(txn, self._env, dbs))
            txn.put(b"schema_version", str(step.version).encode(), db=self._db["meta"])
            return dbs

        self._db = self._write(write)
        self._live.clear()

    def copy_to(self, directory: Path) -> None:
        """A compacted copy of the whole environment (LMDB's consistent hot copy)."""
        self._env.copy(str(directory), compact=True)

    # --- the write path -----------------------------------------------------------------

    def _write(self, fn: Callable[[lmdb.Transaction], _T], *, durable: bool = True) -> _T:
        """Run ``fn`` in a write transaction, growing the map when it is full. A
        durable write returns once the metadata page naming it is synced as well."""
        while True:
            try:
                with self._env.begin(write=True) as txn:
                    result = fn(txn)
                    # this code keeps open_turns current: say so, as of this transaction
                    txn.put(_INDEX_MARK, str(txn.id()).encode(), db=self._db["meta"])
                self._counted = None  # committed: it may have added or removed sessions
                if durable and self._syncs:
                    self._sync_committed()
                return result
            except lmdb.MapFullError:
                new_size = self._env.info()["map_size"] * 2
                log.info("store map full; growing to %d MiB", new_size // 2**20)
                self._env.set_mapsize(new_size)
            except lmdb.MapResizedError:
                self._env.set_mapsize(0)
            except lmdb.Error as exc:
                raise self._write_failed(exc) from exc

    def _sync_committed(self) -> None:
        """Sync the metadata page of a transaction already committed. A failure is
        logged, not raised: the change is in the file and every reader sees it, so
        "nothing was written" would be false, and a caller told so would write it
        again (a second prompt) while clients never heard of the first; only its
        survival of a power loss is in doubt, which the log says."""
        try:
            self._env.sync(True)
        except lmdb.Error as exc:
            log.error("store: a committed change could not be synced (%s); it is stored, but a power loss "
                      "before the next sync may undo it", exc)

    def _write_failed(self, exc: lmdb.Error) -> StoreWriteError:
        try:
            stat = os.statvfs(self.path)
            free = stat.f_bavail * stat.f_frsize
        except OSError:
            free = None
        if free is not None and free < DISK_FULL_BELOW or "No space" in str(exc):
            log.error("store write failed, the disk is full: %s", exc)
            return StoreWriteError(
                f"the disk holding the store ({self.path}) is full: nothing was written. Free some "
                "space there, then send again; replies that were streaming ended failed", disk_full=True)
        log.error("store write failed: %s", exc)
        return StoreWriteError(
            f"the store ({self.path}) could not be written ({exc}): nothing was written; "
            "`duologue db check` tells whether it is damaged", disk_full=False)

    def apply(self, change: Change) -> None:
        """Write one session change atomically (session, indexes, events, records),
        queued for replication in the same transaction when sync is on."""
        write = self._change_writer(change, index_turns=True)
        queued = None if self.outbox is None else self.outbox(change)

        def write_and_queue(txn: lmdb.Transaction) -> None:
            write(txn)
            if queued is not None:
                self.sync.queue(txn, queued)

        self._write(write_and_queue, durable=change.durable)
        self._remember(change.session)

    def apply_replica(self, change: Change, stream_seq: int) -> None:
        """Write a change another device made, followed from the stream at
        ``stream_seq``: never queued back, and its turns are not this daemon's to
        recover (the writer's lease says who closes them)."""
        write = self._change_writer(change, index_turns=False)

        def write_and_mark(txn: lmdb.Transaction) -> None:
            write(txn)
            self.sync.mark_followed(txn, stream_seq)

        self._write(write_and_mark)
        self._remember(change.session)

    def _change_writer(self, change: Change, *, index_turns: bool) -> Callable[[lmdb.Transaction], None]:
        """The transaction body that writes ``change`` (encoded before it opens)."""
        s, prev = change.session, change.previous
        session_bytes = self._enc.encode(s)
        messages = [(m, self._enc.encode(m)) for m in change.messages]
        switches = [(w, self._enc.encode(w)) for w in change.switches]
        tasks = None if change.tasks is None else self._enc.encode(change.tasks)
        summaries = [(x, self._enc.encode(x)) for x in change.summaries]
        sid = s.id.encode()

        def write(txn: lmdb.Transaction) -> None:
            if prev is not None:
                txn.delete(u64(ms(prev.updated_at)) + sid, db=self._db["recency"])
                txn.delete(project_hash(prev.project_id) + u64(ms(prev.updated_at)) + sid,
                           db=self._db["by_project"])
            txn.put(sid, session_bytes, db=self._db["sessions"])
            txn.put(u64(ms(s.updated_at)) + sid, b"", db=self._db["recency"])
            txn.put(project_hash(s.project_id) + u64(ms(s.updated_at)) + sid, b"",
                    db=self._db["by_project"])
            for seq, frame in change.events:
                txn.put(seq_key(s.id, seq), frame, db=self._db["events"])
            for m, raw in messages:
                key = seq_key(s.id, m.seq)
                txn.put(key, raw, db=self._db["messages"])
                txn.put(m.id.encode(), key, db=self._db["message_ids"])
            if index_turns:
                self._index_turns(txn, change.messages)
            for w, raw in switches:
                txn.put(seq_key(s.id, w.seq), raw, db=self._db["switches"])
            if tasks is not None:
                txn.put(sid, tasks, db=self._db["tasks"])
            for x, raw in summaries:
                txn.put(seq_key(s.id, x.seq), raw, db=self._db["summaries"])
            if marks is not None:
                self.imports.write_marks(txn, s.id, marks)

        marks = change.import_marks
        return write

    def delete_session(self, session: Session, followed: int | None = None) -> None:
        """Remove the session and everything keyed under it, in one transaction: a
        local deletion queued for replication with it, or one another device made,
        ``followed`` from the stream at that sequence (never queued back)."""
        sid = session.id.encode()
        prefix = sid + b"\0"
        queued = None if followed is not None or self.outbox_deleted is None else self.outbox_deleted(session)

        def write(txn: lmdb.Transaction) -> None:
            txn.delete(sid, db=self._db["sessions"])
            txn.delete(sid, db=self._db["tasks"])
            txn.delete(u64(ms(session.updated_at)) + sid, db=self._db["recency"])
            txn.delete(project_hash(session.project_id) + u64(ms(session.updated_at)) + sid,
                       db=self._db["by_project"])
            for name in ("events", "switches", "summaries", "messages", "open_turns"):
                cur = txn.cursor(db=self._db[name])
                if not cur.set_range(prefix):
                    continue
                while cur.key().startswith(prefix):
                    if name == "messages":
                        msg = self._message_dec.decode(cur.value())
                        txn.delete(msg.id.encode(), db=self._db["message_ids"])
                    if not cur.delete():
                        break
            if queued is not None:
                self.sync.queue(txn, queued)
            if followed is not None:
                self.sync.mark_followed(txn, followed)

        self._live.pop(session.id, None)
        self._write(write)

    # --- reads --------------------------------------------------------------------------

    def get_session(self, session_id: str) -> Session | None:
        live = self._live.get(session_id)
        if live is not None:
            return live
        with self._env.begin(db=self._db["sessions"]) as txn:
            raw = txn.get(session_id.encode())
        if raw is None:
            return None
        session = self._session_dec.decode(raw)
        self._remember(session)
        return session

    def _remember(self, session: Session) -> None:
        if len(self._live) >= LIVE_SESSIONS:
            self._live.clear()  # a scan of many sessions: start over rather than keep them all
        self._live[session.id] = session

    def count_sessions(self) -> int:
        """Read once after each write (this store is the only writer), so a status
        call between writes opens no transaction."""
        if self._counted is None:
            with self._env.begin() as txn:
                self._counted = txn.stat(self._db["sessions"])["entries"]
        return self._counted

    def list_sessions(self, project_id: str | None = None, *, all_projects: bool = True,
                      limit: int = 50, before: str | None = None) -> list[Session]:
        """Sessions, newest first, read from the recency index (no message is read).

        With ``all_projects`` false, only sessions whose project_id equals
        ``project_id`` (None meaning sessions without a project).
        """
        if all_projects:
            db, prefix = self._db["recency"], b""
        else:
            db, prefix = self._db["by_project"], project_hash(project_id)
        start = prefix + (decode_cursor(before) if before else b"\xff" * 9)
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
            if not cur.set_range(seq_key(sid, since_seq + 1)):
                return
            n = 0
            for key, value in cur:
                if not bytes(key[: len(prefix)]) == prefix or (limit is not None and n >= limit):
                    return
                yield decode(bytes(value))
                n += 1

    def messages(self, sid: str, since_seq: int = 0, limit: int | None = None) -> list[Message]:
        """The session's messages after ``since_seq``; a reply still streaming comes
        with the text its deltas hold so far."""
        found = list(self._scan("messages", sid, since_seq, limit, self._message_dec.decode))
        return [self._with_streamed_text(msg) for msg in found]

    def message_page(self, sid: str, after: int, before: int | None, limit: int,
                     max_bytes: int) -> tuple[list[Message], bool]:
        """Up to ``limit`` messages with ``after < seq < before`` (no upper bound when
        ``before`` is None), in seq order, and whether more lie beyond them. With
        ``before`` the page is the one nearest to it (read backwards), else the one
        nearest to ``after``. It stops before passing ``max_bytes`` as stored (one
        message at least), so a page of large messages still fits a frame."""
        prefix = sid.encode() + b"\0"
        raws: list[bytes] = []
        size, more = 0, False
        with self._env.begin(db=self._db["messages"], buffers=True) as txn:
            cur = txn.cursor()
            if before is None:
                positioned, step = cur.set_range(seq_key(sid, after + 1)), cur.next
            else:
                positioned = cur.prev() if cur.set_range(seq_key(sid, before)) else cur.last()
                step = cur.prev
            while positioned:
                key = bytes(cur.key())
                if not key.startswith(prefix) or U64.unpack(key[len(prefix):])[0] <= after:
                    break
                value = cur.value()
                if raws and (len(raws) >= limit or size + len(value) > max_bytes):
                    more = True
                    break
                raws.append(bytes(value))
                size += len(value)
                positioned = step()
        if before is not None:
            raws.reverse()
        return [self._with_streamed_text(self._message_dec.decode(raw)) for raw in raws], more

    def _with_streamed_text(self, msg: Message) -> Message:
        if msg.status != "streaming":
            return msg
        return streamed(msg, self._stored_events(msg.session_id, msg.seq))

    def _stored_events(self, sid: str, since_seq: int) -> Iterator[tuple[int, bytes]]:
        """The session's events after ``since_seq`` as stored, with their seqs."""
        prefix = sid.encode() + b"\0"
        with self._env.begin(db=self._db["events"], buffers=True) as txn:
            cur = txn.cursor()
            if not cur.set_range(seq_key(sid, since_seq + 1)):
                return
            for key, value in cur:
                key = bytes(key)
                if not key.startswith(prefix):
                    return
                yield U64.unpack(key[len(prefix):])[0], bytes(value)

    def stored_event(self, sid: str, seq: int) -> bytes | None:
        """One event as the store keeps it (not rebuilt into its frame)."""
        with self._env.begin(db=self._db["events"]) as txn:
            raw = txn.get(seq_key(sid, seq))
        return None if raw is None else bytes(raw)

    def whole(self, sid: str) -> Change | None:
        """The session as one change that creates it: every event as stored and every
        record verbatim (how sync publishes a session that predates it)."""
        session = self.get_session(sid)
        if session is None:
            return None
        return Change(session=session, previous=None, events=list(self._stored_events(sid, 0)),
                      messages=list(self._scan("messages", sid, 0, None, self._message_dec.decode)),
                      switches=self.switches(sid), tasks=self.tasks(sid), summaries=self.summaries(sid))

    def switches(self, sid: str) -> list[ModelSwitch]:
        return list(self._scan("switches", sid, 0, None, self._switch_dec.decode))

    def summaries(self, sid: str) -> list[ContextSummary]:
        return list(self._scan("summaries", sid, 0, None, self._summary_dec.decode))

    def events(self, sid: str, since_seq: int = 0) -> list[bytes]:
        """The notification frames after ``since_seq``, in seq order, as published."""
        return [frame for _, frame in self.event_page(sid, since_seq, None)]

    def event_page(self, sid: str, since_seq: int, limit: int | None) -> list[tuple[int, bytes]]:
        """At most ``limit`` frames after ``since_seq`` (all: None), with their seqs,
        as they were published."""
        end = sid.encode() + b"\1"  # just past the session's keys
        out: list[tuple[int, bytes]] = []
        with self._env.begin(db=self._db["events"]) as txn:
            cur = txn.cursor()
            if not cur.set_range(seq_key(sid, since_seq + 1)):
                return out
            frame = Frames(sid, self._record_reader(txn, sid)).frame
            for key, value in itertools.islice(cur.iternext(), limit):
                if key >= end:
                    break
                seq = U64.unpack_from(key, len(end))[0]
                out.append((seq, frame(seq, value)))
        return out

    def frame_page(self, sid: str, since_seq: int, upto: int, limit: int) -> tuple[list[bytes], int]:
        """At most ``limit`` frames after ``since_seq`` and up to ``upto``, as they
        were published, and the seq of the last (``since_seq`` when there are none):
        a replay's page, with nothing built per event beyond its frame."""
        with self._env.begin(db=self._db["events"]) as txn:
            cur = txn.cursor()
            if not cur.set_range(seq_key(sid, since_seq + 1)):
                return [], since_seq
            frames, last = Frames(sid, self._record_reader(txn, sid)).page(
                itertools.islice(cur.iternext(), limit), seq_key(sid, upto + 1), len(sid.encode()) + 1)
        return frames, last if frames else since_seq

    def _record_reader(self, txn: lmdb.Transaction, sid: str) -> Callable[[int], bytes | None]:
        """The msgpack bytes of ``sid``'s message record at a seq, read in ``txn``."""
        messages = self._db["messages"]
        return lambda seq: txn.get(seq_key(sid, seq), db=messages)

    def message(self, message_id: str) -> Message | None:
        with self._env.begin() as txn:
            key = txn.get(message_id.encode(), db=self._db["message_ids"])
            raw = None if key is None else txn.get(key, db=self._db["messages"])
        return None if raw is None else self._with_streamed_text(self._message_dec.decode(raw))

    def tasks(self, sid: str) -> TaskList:
        with self._env.begin(db=self._db["tasks"]) as txn:
            raw = txn.get(sid.encode())
        return TaskList() if raw is None else self._tasks_dec.decode(raw)

    def open_turns(self) -> list[Message]:
        """The turns a stop left open, each by its last message: a reply still
        streaming, or a prompt nothing answered (the turn was queued or about to
        call the provider), or tool results a stop left between two rounds.

        Read from the ``open_turns`` index, not by scanning every message: a damaged
        page in an old session cannot stop the daemon from starting. A record that
        cannot be read is logged and skipped."""
        if self._index_stale:
            self._rebuild_open_turns()
        out = []
        with self._env.begin() as txn:
            for index_key, value in list(txn.cursor(db=self._db["open_turns"])):
                if bytes(value[-1:]) != _OPEN:
                    continue
                try:
                    raw = txn.get(bytes(value[:-1]), db=self._db["messages"])
                    msg = None if raw is None else self._message_dec.decode(raw)
                except (lmdb.Error, msgspec.DecodeError) as exc:
                    log.error("open turn %r cannot be read (%s); left as it is", bytes(index_key), exc)
                    continue
                if msg is not None and opens_turn(msg):
                    out.append(msg)
        return [self._with_streamed_text(msg) for msg in out]

    def _rebuild_open_turns(self) -> None:
        """The index from every message, once, after a writer that did not keep it."""
        log.info("indexing open turns (the store was last written without the index)")
        entries: dict[bytes, bytes] = {}
        try:
            with self._env.begin(db=self._db["messages"]) as txn:
                for key, raw in txn.cursor():  # (session, seq) order: a turn's later messages win
                    msg = self._message_dec.decode(raw)
                    if msg.turn_id:
                        entries[_turn_key(msg)] = bytes(key) + (_OPEN if opens_turn(msg) else _CLOSED)
        except (lmdb.Error, msgspec.DecodeError) as exc:
            log.error("indexing open turns stopped at a record that cannot be read (%s); "
                      "`duologue db check` finds the damage", exc)

        def write(txn: lmdb.Transaction) -> None:
            txn.drop(self._db["open_turns"], delete=False)
            for turn, value in entries.items():
                txn.put(turn, value, db=self._db["open_turns"])

        self._write(write)
        self._index_stale = False

    def _index_mark(self) -> int | None:
        with self._env.begin(db=self._db["meta"]) as txn:
            raw = txn.get(_INDEX_MARK)
        return None if raw is None else int(raw)

    def _index_turns(self, txn: lmdb.Transaction, messages: Sequence[Message]) -> None:
        """Keep ``open_turns`` for these messages: a turn's entry follows its latest
        message (a rewrite of an earlier one, such as a pin, changes nothing)."""
        db = self._db["open_turns"]
        for msg in messages:
            if not msg.turn_id:
                continue
            key = seq_key(msg.session_id, msg.seq)
            current = txn.get(_turn_key(msg), db=db)
            if current is not None and bytes(current[:-1]) > key:
                continue
            txn.put(_turn_key(msg), key + (_OPEN if opens_turn(msg) else _CLOSED), db=db)

    def _reindex_session(self, txn: lmdb.Transaction, sid: str) -> None:
        """A session's ``open_turns`` entries from its messages (after a cut)."""
        prefix = sid.encode() + b"\0"
        cur = txn.cursor(db=self._db["open_turns"])
        if cur.set_range(prefix):
            while cur.key().startswith(prefix):
                if not cur.delete():
                    break
        msgs = txn.cursor(db=self._db["messages"])
        if msgs.set_range(prefix):
            batch = []
            for key, raw in msgs:
                if not bytes(key).startswith(prefix):
                    break
                batch.append(self._message_dec.decode(raw))
            self._index_turns(txn, batch)

    def truncate_session(self, before: Session, current: Session) -> int:
        """Cut a session back to ``before``: every event and record with a later seq
        goes, and the session record is restored. Returns the messages removed."""
        sid = current.id.encode()
        start = seq_key(current.id, before.last_seq + 1)
        prefix = sid + b"\0"

        def write(txn: lmdb.Transaction) -> int:
            count = 0
            for name in ("events", "switches", "summaries", "messages"):
                cur = txn.cursor(db=self._db[name])
                if not cur.set_range(start):
                    continue
                while cur.key().startswith(prefix):
                    if name == "messages":
                        msg = self._message_dec.decode(cur.value())
                        txn.delete(msg.id.encode(), db=self._db["message_ids"])
                        count += 1
                    if not cur.delete():
                        break
            txn.delete(u64(ms(current.updated_at)) + sid, db=self._db["recency"])
            txn.delete(project_hash(current.project_id) + u64(ms(current.updated_at)) + sid,
                       db=self._db["by_project"])
            txn.put(sid, self._enc.encode(before), db=self._db["sessions"])
            txn.put(u64(ms(before.updated_at)) + sid, b"", db=self._db["recency"])
            txn.put(project_hash(before.project_id) + u64(ms(before.updated_at)) + sid, b"",
                    db=self._db["by_project"])
            self._reindex_session(txn, current.id)
            return count

        self._live.pop(current.id, None)
        return self._write(write)

    def info(self) -> dict[str, Any]:
        info = self._env.info()
        return {"map_size": info["map_size"], "last_txnid": info["last_txnid"]}

    # --- model discovery's cache ----------------------------------------------------------

    def _model_lists(self) -> Any:
        db = self._db.get("model_lists")
        if db is None:
            db = self._db["model_lists"] = self._env.open_db(b"model_lists")
        return db

    def put_model_list(self, provider: str, listing: bytes) -> None:
        """Keep a provider's model listing (replacing the one before)."""
        db = self._model_lists()
        self._write(lambda txn: txn.put(provider.encode(), listing, db=db))

    def model_list(self, provider: str) -> bytes | None:
        """The provider's last kept model listing, or None."""
        db = self._model_lists()
        with self._env.begin(db=db) as txn:
            raw = txn.get(provider.encode())
        return None if raw is None else bytes(raw)
