"""Figure 7: one durable append, ours against SQLite.

Ours: ``Store.apply`` of a change that appends one user message to an existing
session (the session record and its two recency index entries, the
``message/created`` event frame, the message and its id index), committed with
sync on, exactly what ``session/send`` does before it answers.

Floor: SQLite in WAL mode with ``synchronous=FULL`` doing the same logical writes in
one transaction: update the session row, insert the event frame, insert the message
(with its id indexed). Both stores live in the same temporary directory, on the
same disk, and write the same encoded bytes.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import msgspec

from duologue.daemon.store import Change, Store
from duologue.protocol import methods as m
from duologue.protocol.entities import Message, Session, TextBlock
from duologue.protocol.jsonrpc import encode_event

from .fixtures import temp_home
from .harness import Row, latency_row, progress, time_calls

TEXT = "Why does this borrow outlive the function? " * 4


def _first_session() -> Session:
    t0 = datetime.now(timezone.utc)
    return Session(id="01JBENCHSESSION0000000000", title="bench", created_at=t0, updated_at=t0,
                   model="claude-sonnet-5-5", current_model="claude-sonnet-5-5", last_seq=0)


def _append_to(prev: Session) -> tuple[Session, Message, bytes]:
    """The session after one more user message, that message, and its event frame:
    the same bytes for both stores."""
    seq = prev.last_seq + 1
    at = prev.updated_at + timedelta(milliseconds=1)
    msg = Message(id=f"msg-{seq:08d}", session_id=prev.id, seq=seq, role="user",
                  content=[TextBlock(text=TEXT)], created_at=at)
    frame = encode_event(m.MessageCreated(session_id=prev.id, seq=seq, message=msg))
    new = msgspec.structs.replace(prev, last_seq=seq, updated_at=at, message_count=prev.message_count + 1)
    return new, msg, frame


class Appender:
    """One store of its own, one session in it; each call appends one user message
    as ``session/send`` does (durable) or as a reply's checkpoint commits (not
    durable: its data synced, the metadata page left to the next durable write)."""

    def __init__(self, path: Path):
        self._store = Store(path)
        self._session = _first_session()
        self._store.apply(Change(session=self._session, previous=None))

    def __call__(self, durable: bool = True) -> None:
        prev = self._session
        new, msg, frame = _append_to(prev)
        self._store.apply(Change(session=new, previous=prev, events=[(new.last_seq, frame)], messages=[msg],
                                 durable=durable))
        self._session = new

    def close(self) -> None:
        self._store.close()


def _ours(path: Path, n: int, warmup: int) -> list[float]:
    append = Appender(path)
    try:
        return time_calls(append, n, warmup=warmup, label="ours: Store.apply")
    finally:
        append.close()


def _sqlite(path: Path, n: int, warmup: int) -> list[float]:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.executescript("""
        CREATE TABLE sessions (id TEXT PRIMARY KEY, updated_ms INTEGER, body BLOB);
        CREATE INDEX sessions_recency ON sessions (updated_ms);
        CREATE TABLE events (session_id TEXT, seq INTEGER, frame BLOB, PRIMARY KEY (session_id, seq));
        CREATE TABLE messages (id TEXT UNIQUE, session_id TEXT, seq INTEGER, body BLOB,
                               PRIMARY KEY (session_id, seq));
    """)
    enc = msgspec.msgpack.Encoder()
    session = _first_session()
    db.execute("INSERT INTO sessions VALUES (?, ?, ?)", (session.id, 0, enc.encode(session)))
    state = {"session": session}

    def append() -> None:
        new, msg, frame = _append_to(state["session"])
        seq, at = new.last_seq, new.updated_at
        body, raw = enc.encode(new), enc.encode(msg)
        db.execute("BEGIN")
        db.execute("UPDATE sessions SET updated_ms = ?, body = ? WHERE id = ?",
                   (int(at.timestamp() * 1000), body, new.id))
        db.execute("INSERT INTO events VALUES (?, ?, ?)", (new.id, seq, frame))
        db.execute("INSERT INTO messages VALUES (?, ?, ?, ?)", (msg.id, new.id, seq, raw))
        db.execute("COMMIT")
        state["session"] = new

    try:
        return time_calls(append, n, warmup=warmup, label="floor: sqlite WAL FULL")
    finally:
        db.close()


def run(quick: bool) -> list[Row]:
    n, warmup = (50, 5) if quick else (2000, 50)
    with temp_home("dlg-bench-store-") as tmp:
        progress(f"{n} appends each, in {tmp}")
        ours = _ours(tmp / "lmdb", n, warmup)
        floor = _sqlite(tmp / "sqlite.db", n, warmup)
    return [latency_row("durable append of one message (sync on)", ours,
                        "sqlite3 WAL, synchronous=FULL, same writes", floor,
                        note="LMDB sync commit = two fsyncs (data, then meta page); "
                             "SQLite WAL = one fsync of the log")]
