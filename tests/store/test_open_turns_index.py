"""Recovery reads only the open turns, through an index, so one damaged page in an old
session cannot stop the daemon from starting (today's recovery scanned every message).

- ``open_turns`` answers what a scan of every message answers (the turn's latest
  message decides), after creates, replies, pins of earlier messages, cuts and
  deletions, while decoding only the open turns' messages.
- A store last written by code that does not keep the index is reindexed once.
- A daemon starts on a store with a zeroed page among an old session's messages, and
  marks the open turn of another session interrupted.
"""

from __future__ import annotations

import struct
from datetime import datetime, timedelta, timezone
from pathlib import Path

import lmdb
import msgspec

from duologue.clients.rpc.sync_client import Client
from duologue.daemon.store import Change, Store
from duologue.protocol.entities import TOOL_ROUNDS_USED_UP, Message, Session, TextBlock, ToolResultBlock
from support import DaemonProcess

T0 = datetime(2026, 1, 2, tzinfo=timezone.utc)


def _scan(store: Store) -> set[str]:
    """The reference: the last message of every turn, from every message."""
    last: dict[str, Message] = {}
    for sid in [s.id for s in store.list_sessions(limit=10_000)]:
        for msg in store.messages(sid):
            if msg.turn_id:
                last[msg.turn_id] = msg
    return {msg.turn_id for msg in last.values()
            if msg.status == "streaming"
            or (msg.role == "user" and msg.stop_reason != TOOL_ROUNDS_USED_UP)}


class _Writer:
    def __init__(self, store: Store, sid: str):
        self.store = store
        self.session = Session(id=sid, title=sid, created_at=T0, updated_at=T0, model="m", current_model="m")
        self.store.apply(Change(session=self.session, previous=None))

    def add(self, *messages: Message) -> None:
        prev = self.session
        last = max([prev.last_seq, *(x.seq for x in messages)])
        self.session = msgspec.structs.replace(prev, last_seq=last, updated_at=prev.updated_at + timedelta(seconds=1),
                                               message_count=prev.message_count + len(messages))
        self.store.apply(Change(session=self.session, previous=prev, messages=list(messages)))

    def msg(self, seq: int, role: str, turn: str, status: str = "complete", text: str = "x") -> Message:
        return Message(id=f"{self.session.id}-{seq}", session_id=self.session.id, seq=seq, role=role,
                       content=[TextBlock(text=text)], created_at=T0, status=status, turn_id=turn)


class _Counting:
    def __init__(self, inner: msgspec.msgpack.Decoder):
        self.inner, self.calls = inner, 0

    def decode(self, raw: bytes) -> Message:
        self.calls += 1
        return self.inner.decode(raw)


def test_the_index_answers_what_a_scan_answers_and_decodes_only_open_turns(tmp_path: Path):
    store = Store(tmp_path / "store")
    try:
        old = _Writer(store, "OLD")
        for i in range(0, 600, 2):  # 300 answered turns
            old.add(old.msg(i + 1, "user", f"t{i}"), old.msg(i + 2, "assistant", f"t{i}"))
        w = _Writer(store, "NEW")
        w.add(w.msg(1, "user", "answered"), w.msg(2, "assistant", "answered"))
        w.add(msgspec.structs.replace(w.msg(1, "user", "answered"), pinned=True))  # a pin rewrites the prompt
        w.add(w.msg(3, "user", "streaming"), w.msg(4, "assistant", "streaming", status="streaming"))
        w.add(w.msg(5, "user", "queued"))
        results = [ToolResultBlock(call_id="c", name="n", content="r")]
        w.add(w.msg(6, "user", "tools"), w.msg(7, "assistant", "tools"),  # used up its rounds: ended
              msgspec.structs.replace(w.msg(8, "user", "tools"), content=results, stop_reason=TOOL_ROUNDS_USED_UP))
        w.add(w.msg(9, "user", "between"), w.msg(10, "assistant", "between"),  # stopped between two rounds
              msgspec.structs.replace(w.msg(11, "user", "between"), content=results))
        expected = {"streaming", "queued", "between"}
        assert _scan(store) == expected
        counting = _Counting(store._message_dec)
        store._message_dec = counting
        assert {m.turn_id for m in store.open_turns()} == expected
        assert counting.calls == len(expected), "recovery read messages outside the open turns"
        store._message_dec = counting.inner

        before = w.session
        w.add(w.msg(12, "user", "cut"), w.msg(13, "assistant", "cut"))
        store.truncate_session(msgspec.structs.replace(before), w.session)  # the cut turn is gone
        w.session = before
        assert {m.turn_id for m in store.open_turns()} == _scan(store) == expected
        store.delete_session(w.session)
        assert store.open_turns() == [] and _scan(store) == set()
    finally:
        store.close()


def test_a_store_written_without_the_index_is_reindexed_once(tmp_path: Path):
    path = tmp_path / "store"
    store = Store(path)
    w = _Writer(store, "S")
    w.add(w.msg(1, "user", "open"))
    store.close()
    env = lmdb.open(str(path), max_dbs=32)  # as an older duologue would: no index, no mark
    with env.begin(write=True) as txn:
        txn.drop(env.open_db(b"open_turns", txn=txn), delete=False)
        txn.delete(b"open_turns_as_of_txn", db=env.open_db(b"meta", txn=txn))
    env.close()
    store = Store(path)
    try:
        assert [m.turn_id for m in store.open_turns()] == ["open"]
    finally:
        store.close()


def _overflow_page_holding(data_file: Path, needle: bytes) -> int:
    """The live overflow page (LMDB page flag 0x04, its own number in its header) whose
    value holds ``needle``: pages reused for other data keep stale bytes, so the first
    match in the file may be garbage in a page that now holds something else."""
    data = data_file.read_bytes()
    start = data.find(needle)
    while start != -1:
        page = start // 4096
        pgno, _pad, flags = struct.unpack_from("=QHH", data, page * 4096)
        if pgno == page and flags & 0x04:
            return page
        start = data.find(needle, start + 1)
    raise AssertionError(f"no overflow page holds {needle!r}")


def test_the_daemon_starts_despite_a_damaged_page_in_an_old_session(home: Path):
    path = home / "data" / "store"
    store = Store(path)
    old = _Writer(store, "01OLD0000000000000000000AA")
    for i in range(0, 40, 2):
        old.add(old.msg(i + 1, "user", f"o{i}", text=f"OLD-{i + 1}-" + "z" * 3000),
                old.msg(i + 2, "assistant", f"o{i}", text=f"OLD-{i + 2}-" + "z" * 3000))
    new = _Writer(store, "01NEW0000000000000000000AA")
    new.add(new.msg(1, "user", "unanswered", text="still waiting"))
    store.close()
    page = _overflow_page_holding(path / "data.mdb", b"OLD-7-zzz")
    with open(path / "data.mdb", "r+b") as f:  # the page holding an old message, zeroed
        f.seek(page * 4096)
        f.write(b"\0" * 4096)
    d = DaemonProcess(home).start()
    try:
        with Client(d.paths, autostart=False) as c:
            got = c.get_session(new.session.id)
            assert [m.status for m in got.messages] == ["complete", "interrupted"]
    finally:
        d.stop()
