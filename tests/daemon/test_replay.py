"""A replay's frames, read from a real store: batches bounded by events and bytes,
every stored event up to the attach's last seq once, nothing after it."""

from __future__ import annotations

from pathlib import Path

from duologue.daemon.catalog import Catalog
from duologue.daemon.hub import Hub
from duologue.daemon.replay import MAX_BATCH_BYTES, PAGE_EVENTS, Replay, batch_bytes
from duologue.daemon.sessions import Sessions
from duologue.daemon.store import Store
from duologue.protocol import methods as m
from duologue.protocol.entities import Session
from duologue.protocol.jsonrpc import Incoming, decode_notification, parse_replies


def _renamed(tmp_path: Path, renames: int, title: str = "t") -> tuple[Store, Sessions, Session]:
    store = Store(tmp_path / "store")
    sessions = Sessions(store, Catalog(), Hub())
    session = sessions.create(m.CreateParams(title="replay"))
    for n in range(renames):
        session = sessions.rename(m.RenameParams(session_id=session.id, title=f"{title} {n}"))
    return store, sessions, session


def _drain(replay: Replay, max_bytes: int) -> list[bytes]:
    frames = []
    while (frame := replay.next_frame(max_bytes)) is not None:
        frames.append(frame)
    return frames


def _seqs(frames: list[bytes]) -> list[int]:
    out = []
    for frame in frames:
        for note in parse_replies(frame):
            assert isinstance(note, Incoming)
            out.append(decode_notification(note).seq)
    return out


def test_a_replay_comes_in_batches_of_at_most_a_page_holding_every_seq_once(tmp_path: Path):
    store, _, session = _renamed(tmp_path, 1000)
    try:
        frames = _drain(Replay(store, session.id, 0, session.last_seq), MAX_BATCH_BYTES)
    finally:
        store.close()
    assert _seqs(frames) == list(range(1, session.last_seq + 1))
    assert len(frames) == -(-session.last_seq // PAGE_EVENTS)
    assert all(frame.startswith(b"[") for frame in frames[:-1])


def test_a_batch_stops_at_its_byte_bound_but_always_holds_one_event(tmp_path: Path):
    store, _, session = _renamed(tmp_path, 50, title="x" * 150)
    try:
        small = _drain(Replay(store, session.id, 0, session.last_seq), 1000)
        single = _drain(Replay(store, session.id, 0, session.last_seq), 1)
    finally:
        store.close()
    assert _seqs(small) == _seqs(single) == list(range(1, session.last_seq + 1))
    assert all(len(frame) < 1000 for frame in small if frame.startswith(b"["))
    assert 1 < len(small) < session.last_seq
    assert len(single) == session.last_seq and not any(f.startswith(b"[") for f in single)


def test_a_replay_ends_at_the_attach_last_seq_and_later_events_stay_for_live_delivery(tmp_path: Path):
    store, sessions, session = _renamed(tmp_path, 10)
    try:
        replay = Replay(store, session.id, 3, session.last_seq)
        first = replay.next_frame(200)  # read while the session is still at last_seq
        for n in range(5):
            sessions.rename(m.RenameParams(session_id=session.id, title=f"later {n}"))
        frames = [first, *_drain(replay, MAX_BATCH_BYTES)]
    finally:
        store.close()
    assert _seqs(frames) == list(range(4, session.last_seq + 1))


def test_batches_leave_most_of_a_small_client_queue_to_live_events():
    assert batch_bytes(64 * 1024 * 1024, 64) == MAX_BATCH_BYTES
    assert batch_bytes(65536, 64) * 64 <= 65536 // 4
    assert batch_bytes(4096, 64) >= 1
