"""The LMDB store, used directly: round trips, indexes, paging, deletion, growth and
the schema-version guard. Real LMDB files in tmp_path; nothing is mocked."""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timedelta, timezone
from pathlib import Path

import lmdb
import msgspec
import pytest

from duologue.daemon.store import SCHEMA_VERSION, Change, Store, StoreVersionError, encode_cursor
from duologue.protocol.entities import Message, ModelSwitch, Session, Task, TaskList, TextBlock

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def session(sid: str, *, updated: float = 0, project: str | None = None, last_seq: int = 0,
            title: str = "t") -> Session:
    return Session(id=sid, title=title, created_at=T0, updated_at=at(updated), model="m",
                   current_model="m", project_id=project, last_seq=last_seq)


def message(sid: str, seq: int, text: str = "", role: str = "user") -> Message:
    return Message(id=f"{sid}-m{seq}", session_id=sid, seq=seq, role=role,  # type: ignore[arg-type]
                   content=[TextBlock(text=text or f"{sid} #{seq}")], created_at=at(seq))


def frame(sid: str, seq: int) -> bytes:
    return f'{{"session_id":"{sid}","seq":{seq}}}'.encode()


def create(store: Store, s: Session) -> Session:
    store.apply(Change(session=s, previous=None, events=[(s.last_seq, frame(s.id, s.last_seq))]
                       if s.last_seq else []))
    return s


def touch(store: Store, prev: Session, updated: float, **more) -> Session:
    """A change that only moves the session's updated_at (and adds what ``more`` says)."""
    new = msgspec.structs.replace(prev, updated_at=at(updated))
    store.apply(Change(session=new, previous=prev, **more))
    return new


def grow(store: Store, prev: Session, n_messages: int, *, updated: float | None = None) -> Session:
    """Append ``n_messages`` messages, each with its message/created event, in one change."""
    seqs = range(prev.last_seq + 1, prev.last_seq + 1 + n_messages)
    new = msgspec.structs.replace(prev, last_seq=prev.last_seq + n_messages,
                                  updated_at=at(updated) if updated is not None else prev.updated_at)
    store.apply(Change(session=new, previous=prev, events=[(q, frame(prev.id, q)) for q in seqs],
                       messages=[message(prev.id, q) for q in seqs]))
    return new


@pytest.fixture
def store(tmp_path: Path):
    s = Store(tmp_path / "store")
    yield s
    s.close()


def ids(sessions: list[Session]) -> list[str]:
    return [s.id for s in sessions]


# --- round trips ----------------------------------------------------------------------


def test_apply_then_get_returns_the_same_session(store: Store):
    s = session("S1", project="/p", title="hello")
    s = msgspec.structs.replace(s, system_prompt="be brief", metadata={"k": "v"})
    create(store, s)
    assert store.get_session("S1") == s
    assert store.get_session("nope") is None
    assert store.count_sessions() == 1


def test_apply_replaces_the_session_and_keeps_one_recency_entry(store: Store):
    s = create(store, session("S1", updated=1))
    s2 = touch(store, s, 5)
    s3 = touch(store, s2, 9)
    assert store.get_session("S1") == s3
    assert ids(store.list_sessions()) == ["S1"]
    assert ids(store.list_sessions(None, all_projects=False)) == ["S1"]


def test_messages_switches_and_tasks_round_trip(store: Store):
    s = create(store, session("S1"))
    s = grow(store, s, 3)
    switch = ModelSwitch(seq=4, from_model="a", to_model="b", at=at(4), message_index=3,
                         reason="because", kind="manual")
    tasks = TaskList(tasks=[Task(id="1", content="do it", status="in_progress", active_form="doing it")],
                     updated_by="client:x", updated_at=at(4))
    s4 = msgspec.structs.replace(s, last_seq=4)
    store.apply(Change(session=s4, previous=s, events=[(4, frame("S1", 4))], switches=[switch],
                       tasks=tasks))
    assert [m.seq for m in store.messages("S1")] == [1, 2, 3]
    assert store.messages("S1")[1] == message("S1", 2)
    assert store.message("S1-m2") == message("S1", 2)
    assert store.switches("S1") == [switch]
    assert store.tasks("S1") == tasks
    assert store.tasks("other") == TaskList()


# --- listing and paging ---------------------------------------------------------------


def test_list_is_newest_first_and_pages_by_cursor_without_repeats(store: Store):
    sessions = [create(store, session(f"S{i:02d}", updated=i)) for i in range(10)]
    newest_first = [s.id for s in reversed(sessions)]
    assert ids(store.list_sessions(limit=100)) == newest_first

    seen: list[str] = []
    cursor = None
    while True:
        page = store.list_sessions(limit=3, before=cursor)
        if not page:
            break
        seen += ids(page)
        cursor = encode_cursor(page[-1])
    assert seen == newest_first


def test_list_by_recency_follows_updates(store: Store):
    a = create(store, session("A", updated=1))
    create(store, session("B", updated=2))
    touch(store, a, 3)
    assert ids(store.list_sessions()) == ["A", "B"]


def test_list_sessions_with_equal_timestamps_pages_by_id(store: Store):
    for sid in ("X1", "X2", "X3", "X4"):
        create(store, session(sid, updated=7))
    first = store.list_sessions(limit=2)
    rest = store.list_sessions(limit=10, before=encode_cursor(first[-1]))
    assert ids(first) + ids(rest) == ["X4", "X3", "X2", "X1"]


def test_list_by_project_does_not_bleed_into_other_projects(store: Store):
    for i in range(4):
        create(store, session(f"P{i}", updated=i, project="/a"))
        create(store, session(f"Q{i}", updated=i + 0.5, project="/a/b"))
        create(store, session(f"N{i}", updated=i + 0.25, project=None))
    assert ids(store.list_sessions("/a", all_projects=False)) == ["P3", "P2", "P1", "P0"]
    assert ids(store.list_sessions("/a/b", all_projects=False)) == ["Q3", "Q2", "Q1", "Q0"]
    assert ids(store.list_sessions(None, all_projects=False)) == ["N3", "N2", "N1", "N0"]
    assert store.list_sessions("/nowhere", all_projects=False) == []
    page = store.list_sessions("/a", all_projects=False, limit=2)
    rest = store.list_sessions("/a", all_projects=False, limit=10, before=encode_cursor(page[-1]))
    assert ids(page) + ids(rest) == ["P3", "P2", "P1", "P0"]
    assert len(store.list_sessions(limit=100)) == 12


def test_list_by_project_stops_at_the_neighbouring_hash(store: Store):
    """The per-project index is keyed by a hash; the projects whose hashes sort right
    before and after ours must not appear on any page of ours."""
    projects = [f"/proj/{i}" for i in range(40)]
    for i, p in enumerate(projects):
        create(store, session(f"S{i:02d}", updated=i, project=p))
    by_hash = sorted(projects, key=lambda p: hashlib.blake2b(p.encode(), digest_size=16).digest())
    middle = by_hash[20]
    assert [s.project_id for s in store.list_sessions(middle, all_projects=False, limit=100)] == [middle]


def test_moving_a_session_between_projects_moves_its_index_entry(store: Store):
    s = create(store, session("S1", updated=1, project="/a"))
    new = msgspec.structs.replace(s, project_id="/b", updated_at=at(2))
    store.apply(Change(session=new, previous=s))
    assert store.list_sessions("/a", all_projects=False) == []
    assert ids(store.list_sessions("/b", all_projects=False)) == ["S1"]


def test_an_invalid_cursor_is_a_value_error(store: Store):
    with pytest.raises(ValueError, match="invalid cursor"):
        store.list_sessions(before="garbage")


# --- messages and events by (session, seq) --------------------------------------------


def test_messages_after_since_seq_with_limit_in_seq_order(store: Store):
    s = grow(store, create(store, session("S1")), 10)
    assert [m.seq for m in store.messages("S1", since_seq=4)] == [5, 6, 7, 8, 9, 10]
    assert [m.seq for m in store.messages("S1", since_seq=4, limit=2)] == [5, 6]
    assert [m.seq for m in store.messages("S1", limit=3)] == [1, 2, 3]
    assert store.messages("S1", since_seq=10) == []
    assert store.messages("S1", since_seq=99) == []
    assert s.last_seq == 10


def test_seq_keys_sort_numerically_past_255(store: Store):
    s = grow(store, create(store, session("S1")), 300)
    assert [m.seq for m in store.messages("S1", since_seq=250, limit=10)] == list(range(251, 261))
    assert len(store.events("S1", since_seq=0)) == s.last_seq == 300


def test_events_replay_exactly_those_after_since_seq(store: Store):
    grow(store, create(store, session("S1")), 6)
    assert store.events("S1", 0) == [frame("S1", q) for q in range(1, 7)]
    assert store.events("S1", 4) == [frame("S1", 5), frame("S1", 6)]
    assert store.events("S1", 6) == []


def test_sessions_sharing_an_id_prefix_keep_their_own_records(store: Store):
    """"AB" sorts right after "A"'s keys; a scan of "A" must not reach into "AB"."""
    a = grow(store, create(store, session("A", updated=1)), 3)
    ab = grow(store, create(store, session("AB", updated=2)), 5)
    assert [m.session_id for m in store.messages("A")] == ["A"] * 3
    assert [m.session_id for m in store.messages("AB")] == ["AB"] * 5
    assert store.events("A") == [frame("A", q) for q in (1, 2, 3)]
    assert a.last_seq == 3 and ab.last_seq == 5


# --- deletion ---------------------------------------------------------------------------


def test_delete_removes_everything_of_the_session_and_nothing_of_its_prefix_neighbour(store: Store):
    def populate(sid: str, updated: float) -> Session:
        s = grow(store, create(store, session(sid, updated=updated, project="/p")), 4)
        switch = ModelSwitch(seq=5, from_model="a", to_model="b", at=at(5), message_index=4,
                             reason="r")
        tasks = TaskList(tasks=[Task(id="1", content=f"task of {sid}")])
        new = msgspec.structs.replace(s, last_seq=5)
        store.apply(Change(session=new, previous=s, events=[(5, frame(sid, 5))], switches=[switch],
                           tasks=tasks))
        return new

    victim = populate("A", 1)
    neighbour = populate("AB", 2)
    lower = populate("0", 3)  # sorts before "A"

    store.delete_session(victim)

    assert store.get_session("A") is None
    assert store.messages("A") == []
    assert store.events("A") == []
    assert store.switches("A") == []
    assert store.tasks("A") == TaskList()
    assert store.message("A-m1") is None
    assert ids(store.list_sessions()) == ["0", "AB"]
    assert ids(store.list_sessions("/p", all_projects=False)) == ["0", "AB"]
    assert store.count_sessions() == 2

    for kept in (neighbour, lower):
        assert store.get_session(kept.id) == kept
        assert [m.seq for m in store.messages(kept.id)] == [1, 2, 3, 4]
        assert len(store.events(kept.id)) == 5
        assert len(store.switches(kept.id)) == 1
        assert store.tasks(kept.id).tasks[0].content == f"task of {kept.id}"
        assert store.message(f"{kept.id}-m1") is not None


def test_deleting_the_last_session_in_the_file_leaves_an_empty_store(store: Store):
    s = grow(store, create(store, session("ZZ")), 3)
    store.delete_session(s)
    assert store.count_sessions() == 0
    assert store.events("ZZ") == [] and store.messages("ZZ") == []


# --- growth ---------------------------------------------------------------------------


def test_the_map_grows_when_full_and_all_data_stays_readable(tmp_path: Path):
    path = tmp_path / "store"
    small = 256 * 1024
    store = Store(path, map_size=small)
    big = "x" * 20_000
    s = create(store, session("S1"))
    for _ in range(60):  # ~1.2 MB of messages into a 256 KiB map
        seq = s.last_seq + 1
        new = msgspec.structs.replace(s, last_seq=seq)
        store.apply(Change(session=new, previous=s, events=[(seq, frame("S1", seq))],
                           messages=[message("S1", seq, big)]))
        s = new
    assert store.info()["map_size"] > small
    assert len(store.messages("S1")) == 60
    store.close()

    reopened = Store(path, map_size=small)  # LMDB adopts the larger size of the file
    try:
        msgs = reopened.messages("S1")
        assert [m.seq for m in msgs] == list(range(1, 61))
        assert all(m.text == big for m in msgs)
        assert reopened.get_session("S1") == s
    finally:
        reopened.close()


# --- schema version ---------------------------------------------------------------------


def test_a_fresh_store_gets_the_current_schema_version(tmp_path: Path):
    store = Store(tmp_path / "store")
    try:
        assert store.schema_version() == SCHEMA_VERSION
    finally:
        store.close()
    reopened = Store(tmp_path / "store")
    try:
        assert reopened.schema_version() == SCHEMA_VERSION
    finally:
        reopened.close()


def _set_version(path: Path, version: int) -> None:
    env = lmdb.open(str(path), max_dbs=16)
    meta = env.open_db(b"meta")
    with env.begin(write=True, db=meta) as txn:
        txn.put(b"schema_version", str(version).encode())
    env.close()


def _read_version(path: Path) -> bytes | None:
    env = lmdb.open(str(path), max_dbs=16, readonly=True, lock=False)
    try:
        meta = env.open_db(b"meta", create=False)
        with env.begin(db=meta) as txn:
            return txn.get(b"schema_version")
    finally:
        env.close()


def test_a_newer_schema_version_is_refused_and_the_file_is_left_unchanged(tmp_path: Path):
    path = tmp_path / "store"
    store = Store(path)
    create(store, session("S1"))
    store.close()
    newer = SCHEMA_VERSION + 1
    _set_version(path, newer)
    data_before = (path / "data.mdb").read_bytes()

    with pytest.raises(StoreVersionError) as info:
        Store(path)

    message_ = str(info.value)
    assert str(newer) in message_ and str(SCHEMA_VERSION) in message_
    assert "upgrade" in message_
    assert (path / "data.mdb").read_bytes() == data_before
    assert _read_version(path) == str(newer).encode()


def test_ids_made_in_the_same_millisecond_sort_in_the_order_they_were_made():
    from duologue.daemon.ids import new_id

    made = [new_id(1_800_000_000_000) for _ in range(1_000)]
    assert sorted(made) == made and len(set(made)) == len(made)
    assert new_id(1_800_000_000_001) > made[-1]


class _SyncCounter:
    """The store's LMDB environment, counting the syncs asked of it."""

    def __init__(self, env: lmdb.Environment):
        self._env = env
        self.syncs = 0

    def sync(self, force: bool = False) -> None:
        self.syncs += 1
        self._env.sync(force)

    def __getattr__(self, name: str):
        return getattr(self._env, name)


class _SyncRefused(_SyncCounter):
    """An environment whose disk refuses the sync after a commit (an I/O error)."""

    def sync(self, force: bool = False) -> None:
        self.syncs += 1
        raise lmdb.Error("mdb_env_sync: Input/output error")


def test_a_sync_refused_after_the_commit_keeps_the_change_and_says_so_in_the_log(store: Store, caplog):
    s = create(store, session("s1"))
    store._env = _SyncRefused(store._env)  # type: ignore[assignment]
    s2 = msgspec.structs.replace(s, updated_at=at(1), last_seq=1)
    with caplog.at_level(logging.ERROR, logger="duologue.daemon.store.records"):
        store.apply(Change(session=s2, previous=s, events=[(1, frame("s1", 1))]))  # not raised: it is committed
    assert store._env.syncs == 1
    assert store.get_session("s1") == s2 and store.events("s1") == [frame("s1", 1)]
    assert "could not be synced" in caplog.text and "power loss" in caplog.text


def test_a_durable_change_is_synced_whole_and_a_checkpoint_leaves_its_metadata_for_later(store: Store):
    counter = _SyncCounter(store._env)
    store._env = counter  # type: ignore[assignment]
    s = create(store, session("s1"))
    assert counter.syncs == 1  # data pages synced by the commit, the metadata page after it
    s2 = msgspec.structs.replace(s, updated_at=at(1), last_seq=1)
    store.apply(Change(session=s2, previous=s, events=[(1, frame("s1", 1))], durable=False))
    assert counter.syncs == 1  # a checkpoint: the commit's data sync alone
    assert store.get_session("s1") == s2 and store.events("s1") == [frame("s1", 1)]
    touch(store, s2, 2)
    assert counter.syncs == 2
