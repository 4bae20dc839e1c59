"""Publishing many sessions at once: each session's changes still reach the other
machine in order (one chain per session), changes sent as one message store what
they stored one by one, and the outbox never gives a key twice (a publisher that
read up to a key must see every later change)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from pathlib import Path

import msgspec
from support import DaemonProcess
from sync_support import converged, history, quiet, wait_for

from duologue.daemon.store import Change, Store
from duologue.daemon.sync import wire
from duologue.protocol.entities import Message, Session, TextBlock

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def _session(last_seq: int) -> Session:
    return Session(id="01SESSION", title="t", created_at=T0, updated_at=T0, model="m", current_model="m",
                   last_seq=last_seq, message_count=1 if last_seq > 1 else 0)


def _reply(status: str, text: str) -> Message:
    return Message(id="01REPLY", session_id="01SESSION", seq=2, role="assistant",  # type: ignore[arg-type]
                   content=[TextBlock(text=text)], created_at=T0, status=status)  # type: ignore[arg-type]


def _changes() -> list[Change]:
    """A session made, a reply streamed, then completed: three changes in a row."""
    s1, s2, s3 = _session(1), _session(2), _session(3)
    return [Change(session=s1, previous=None, events=[(1, b'{"seq":1}')]),
            Change(session=s2, previous=s1, events=[(2, b'{"seq":2}')], messages=[_reply("streaming", "Hel")]),
            Change(session=s3, previous=s2, events=[(3, b'{"seq":3}')], messages=[_reply("complete", "Hello")])]


def _held(store: Store) -> tuple[object, ...]:
    sid = "01SESSION"
    return (msgspec.to_builtins(store.get_session(sid)), [msgspec.to_builtins(m) for m in store.messages(sid)],
            store.event_page(sid, 0, None))


def _outbox(store: Store) -> list[tuple[int, bytes]]:
    return store.sync.pending(0)


def test_changes_sent_as_one_message_store_what_they_stored_one_by_one(tmp_path: Path):
    writer = Store(tmp_path / "writer")
    writer.outbox = wire.encoder("laptop")
    for change in _changes():
        writer.apply(change)
    replicas = [wire.decode(data) for _, data in _outbox(writer)]
    one_by_one, merged = Store(tmp_path / "one_by_one"), Store(tmp_path / "merged")
    previous = None
    for stream_seq, replica in enumerate(replicas, 1):
        one_by_one.apply_replica(replica.change(previous), stream_seq)
        previous = one_by_one.get_session("01SESSION")
    together = wire.merged(replicas)
    assert together.after == 0 and len(together.messages) == 1
    merged.apply_replica(together.change(None), 3)
    assert _held(merged) == _held(one_by_one) == _held(writer)
    assert merged.messages("01SESSION")[0].status == "complete"


def test_the_outbox_never_gives_a_key_twice_even_once_emptied(tmp_path: Path):
    store = Store(tmp_path / "store")
    store.outbox = wire.encoder("laptop")
    first, second, third = _changes()
    store.apply(first)
    [(key, _)] = _outbox(store)
    store.sync.published([key])
    assert _outbox(store) == []
    store.apply(second)
    [(later, _)] = _outbox(store)
    assert later > key
    store.close()
    reopened = Store(tmp_path / "store")
    reopened.outbox = wire.encoder("laptop")
    reopened.sync.published([later])
    reopened.apply(third)
    assert [k for k, _ in _outbox(reopened)] == [later + 1]


async def _answered(client, sid: str) -> bool:
    got = await history(client, sid)
    return got is not None and any(msg["role"] == "assistant" and msg.get("status") != "streaming"
                                   for msg in got[1])


async def test_many_sessions_written_at_once_reach_the_other_machine_each_in_order(
        laptop: DaemonProcess, desktop: DaemonProcess):
    async with laptop.client("laptop") as a, desktop.client("desktop") as b:
        sids = [(await a.create_session(title=f"busy {i}")).id for i in range(20)]
        await asyncio.gather(*(a.send(sid, f"prompt for session {i}") for i, sid in enumerate(sids)))
        for sid in sids:
            await wait_for(lambda sid=sid: _answered(a, sid), timeout=90, what="the laptop's reply")
        for sid in sids:
            await wait_for(lambda sid=sid: converged(a, b, sid), timeout=60, what="the desktop holds the session")
            messages = (await history(b, sid))[1]
            assert [msg["role"] for msg in messages] == ["user", "assistant"]
        status = await a.sync_status()
        assert status.connected and status.sessions == []
    assert quiet(laptop) and quiet(desktop)
