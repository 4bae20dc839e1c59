"""What the store keeps of a streamed reply's events, and that a replay gives back
exactly what was published.

A reply is written through the real write path (``Sessions`` on a real LMDB store,
its frames published through a real ``Hub`` to a recording channel): opened, two
deltas, completed, then pinned and unpinned. The store keeps the deltas as their
text and the completion as a reference to its message record (a few bytes), yet
``Store.events`` returns every frame byte for byte as it went out, the completion
still saying ``pinned: false`` after the pin. A delta's frame is rebuilt from a
template rather than encoded again, so deltas of two replies interleaved in one
page, thinking deltas, and text that JSON must escape (quotes, backslashes, control
characters) or may leave raw (non-ASCII) replay byte for byte too. A completion kept
by schema version 3 (its frame without the content) still replays whole, and
deltas kept by schema version 4 (their text raw, not escaped) replay and fold into
their reply's text as before.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import lmdb
import msgspec

from duologue.daemon.catalog import Catalog
from duologue.daemon.hub import Hub
from duologue.daemon.sessions import Sessions
from duologue.daemon.store import Change, Store
from duologue.daemon.store.keys import seq_key
from duologue.daemon.store.streams import COMPLETION, RAW_TEXT, RAW_THINKING
from duologue.protocol import methods as m
from duologue.protocol.entities import Message, TextBlock
from duologue.protocol.jsonrpc import encode_event


class Recorder:
    def broadcast(self, subs: list[Follower], frames: list[bytes]) -> None:
        for sub in subs:
            sub.got.extend(frames)


@dataclass
class Follower:
    key: bytes = b"follower"
    got: list[bytes] = field(default_factory=list)
    channel: Recorder = field(default_factory=Recorder)


def _stored(path: Path, sid: str, seq: int) -> bytes:
    env = lmdb.open(str(path), readonly=True, max_dbs=32, lock=False)
    try:
        with env.begin(db=env.open_db(b"events", create=False)) as txn:
            return bytes(txn.get(seq_key(sid, seq)))
    finally:
        env.close()


def _reply(sessions: Sessions, sid: str, text: list[str]) -> Message:
    """Open a reply, stream ``text`` as deltas, complete it: three commits."""
    session = sessions.require(sid)
    draft = sessions.draft(session)
    reply = draft.add_message(lambda seq: Message(id=f"r{seq}", session_id=sid, seq=seq, role="assistant",
                                                  content=[], created_at=draft.now, model="claude-sonnet-5-5",
                                                  status="streaming", turn_id="t1"))
    draft.emit_delta(reply, text[0])
    session = sessions.commit(draft)
    draft = sessions.draft(session)
    draft.emit_delta(reply, text[1])
    final = msgspec.structs.replace(reply, content=[TextBlock(text="".join(text))], status="complete",
                                    stop_reason="end_turn")
    draft.messages.append(final)
    draft.emit(m.MessageCompleted, message=final)
    sessions.commit(draft)
    return final


def test_a_replay_gives_back_every_published_frame_though_the_completion_is_kept_as_a_reference(tmp_path: Path):
    store, hub, follower = Store(tmp_path / "db"), Hub(), Follower()
    sessions = Sessions(store, Catalog(), hub)
    try:
        sid = sessions.create(m.CreateParams(title="kept", model="sonnet")).id
        hub.attach(sid, follower)
        final = _reply(sessions, sid, ["Hello, ", "world"])
        sessions.pin(sid, final.id, True)
        sessions.pin(sid, final.id, False)
        sessions.pin(sid, final.id, True)
        published = follower.got
        assert store.events(sid, since_seq=1) == published
        completed = next(f for f in map(msgspec.json.decode, published) if f["method"] == "message/completed")
        assert completed["params"]["message"].get("pinned", False) is False  # as it went out, before the pin
        assert store.get_session(sid) is not None
        completion_seq = completed["params"]["seq"]
    finally:
        store.close()
    assert len(_stored(tmp_path / "db", sid, completion_seq)) < 8  # its record says the rest


def test_deltas_rebuilt_from_their_template_are_the_frames_published(tmp_path: Path):
    store, hub, follower = Store(tmp_path / "db"), Hub(), Follower()
    sessions = Sessions(store, Catalog(), hub)
    try:
        session = sessions.create(m.CreateParams(title="templated", model="sonnet"))
        hub.attach(session.id, follower)
        draft = sessions.draft(session)

        def opened(seq: int) -> Message:
            return Message(id=f"r\"{seq}", session_id=session.id, seq=seq, role="assistant", content=[],
                           created_at=draft.now, model="claude-sonnet-5-5", status="streaming", turn_id="t1")

        first, second = draft.add_message(opened), draft.add_message(opened)
        draft.emit_delta(first, "", thinking="Weighing \"both\" options\n")
        draft.emit_delta(second, "plain words; ")
        draft.emit_delta(first, "a \\ backslash, a tab\t, a bell\x07 and \x1f")
        draft.emit_delta(second, "caf\u00e9 \u2028 \U0001f980 \x7f")
        draft.emit_delta(first, "")
        last = sessions.commit(draft).last_seq
        assert store.events(session.id, since_seq=session.last_seq) == follower.got
        assert len(follower.got) == 7
        assert store.frame_page(session.id, session.last_seq, last, 256) == (follower.got, last)
        assert store.frame_page(session.id, session.last_seq, last - 2, 3) == (follower.got[:3], last - 4)
        assert store.frame_page(session.id, session.last_seq, last - 2, 256) == (follower.got[:5], last - 2)
    finally:
        store.close()


def test_a_completion_kept_by_schema_version_3_still_replays_whole(tmp_path: Path):
    store = Store(tmp_path / "db")
    sessions = Sessions(store, Catalog(), Hub())
    try:
        session = sessions.create(m.CreateParams(title="v3", model="sonnet"))
        final = Message(id="r", session_id=session.id, seq=session.last_seq + 1, role="assistant",
                        content=[TextBlock(text="kept in the record")], created_at=session.created_at,
                        model="claude-sonnet-5-5", status="complete")
        event = m.MessageCompleted(session_id=session.id, seq=session.last_seq + 2, message=final)
        bare = msgspec.structs.replace(event, message=msgspec.structs.replace(final, content=[]))
        after = msgspec.structs.replace(session, last_seq=event.seq)
        store.apply(Change(session=after, previous=session, messages=[final],
                           events=[(event.seq, COMPLETION + encode_event(bare))]))
        assert store.events(session.id, since_seq=event.seq - 1) == [encode_event(event)]
    finally:
        store.close()


def test_deltas_kept_raw_by_schema_version_4_still_replay_and_fold_into_their_reply(tmp_path: Path):
    store = Store(tmp_path / "db")
    sessions = Sessions(store, Catalog(), Hub())
    try:
        session = sessions.create(m.CreateParams(title="v4", model="sonnet"))
        n = session.last_seq
        opening = Message(id="r", session_id=session.id, seq=n + 1, role="assistant", content=[],
                          created_at=session.created_at, model="claude-sonnet-5-5", status="streaming",
                          turn_id="t1")
        created = m.MessageCreated(session_id=session.id, seq=n + 1, message=opening)
        thought = m.MessageDelta(session_id=session.id, seq=n + 2, message_id="r", text="",
                                 thinking='weighing "this"\n')
        said = m.MessageDelta(session_id=session.id, seq=n + 3, message_id="r", text="caf\u00e9 \\ done")
        events = [(created.seq, encode_event(created)),
                  (thought.seq, RAW_THINKING + struct.pack(">I", 1) + thought.thinking.encode()),
                  (said.seq, RAW_TEXT + struct.pack(">I", 2) + said.text.encode())]
        after = msgspec.structs.replace(session, last_seq=said.seq, message_count=session.message_count + 1)
        store.apply(Change(session=after, previous=session, messages=[opening], events=events))
        assert store.events(session.id, since_seq=n) == [encode_event(e) for e in (created, thought, said)]
        assert store.frame_page(session.id, n, said.seq, 256) == (
            [encode_event(e) for e in (created, thought, said)], said.seq)
        folded = store.message("r")
        assert folded is not None
        assert [(type(b).__name__, b.text) for b in folded.content] == [
            ("ThinkingBlock", 'weighing "this"\n'), ("TextBlock", "caf\u00e9 \\ done")]
    finally:
        store.close()
