"""A session of 100,000 messages works through every read path.

- An attach with ``since_seq=0`` replays it whole through the real client (and its
  sequence rules): every seq once, in order, while the daemon's memory grows by a
  bounded amount, far less than the replay's bytes (the replay is read from the
  store as the client's pipe takes it, in batch frames).
- A turn that runs while the replay is still going arrives after it, once.
- ``session/get`` pages cover the session forwards and backwards with no gap and no
  overlap, and ``session/export`` comes a page at a time, every frame under the
  frame limit.
- Bad page params are refused with the field named.

The store is written before the daemon starts with the daemon's own ``Sessions``
code, a thousand messages per commit: setup, not 100,000 turns.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path

import msgspec
import pytest

from duologue.clients.rpc.client import AsyncClient
from duologue.clients.rpc.session_events import SessionEvents
from duologue.daemon.catalog import Catalog
from duologue.daemon.hub import Hub
from duologue.daemon.ids import new_id
from duologue.daemon.sessions import Sessions
from duologue.daemon.store import Store
from duologue.protocol import methods as m
from duologue.protocol.entities import Message, TextBlock
from duologue.protocol.errors import RpcError
from support import DaemonProcess

MESSAGES = 100_000
PER_COMMIT = 1_000
TEXT = "a line of a long conversation, long enough to look like one " * 5  # ~300 bytes
BIG_TEXT = "x" * 300_000
LIVE_MESSAGES = 10_000


def _write(sessions: Sessions, title: str, count: int, text: str) -> str:
    session = sessions.create(m.CreateParams(title=title, model="sonnet"))
    for start in range(0, count, PER_COMMIT):
        draft = sessions.draft(session)
        for i in range(start, min(start + PER_COMMIT, count)):
            draft.add_message(lambda seq, i=i: Message(
                id=new_id(), session_id=session.id, seq=seq, role="user" if i % 2 == 0 else "assistant",
                content=[TextBlock(text=f"{i} {text}")], created_at=draft.now,
                model=None if i % 2 == 0 else "claude-sonnet-5-5"))
        session = sessions.commit(draft)
    return session.id


@pytest.fixture(scope="module")
def long_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DaemonProcess, str, str, str]]:
    """A daemon over a store holding a 100,000-message session, a session of 30
    messages of 300 KB each and one of 10,000 short messages (a turn's history that
    fits a model's window); yields it with the three ids."""
    home = tmp_path_factory.mktemp("long") / "home"
    home.mkdir()
    d = DaemonProcess(home)
    store = Store(Path(d.paths.store_dir))
    try:
        sessions = Sessions(store, Catalog(), Hub())
        long_sid = _write(sessions, "long", MESSAGES, TEXT)
        big_sid = _write(sessions, "big", 30, BIG_TEXT)
        live_sid = _write(sessions, "live", LIVE_MESSAGES, "ok")
    finally:
        store.close()
    d.start()
    try:
        yield d, long_sid, big_sid, live_sid
    finally:
        d.stop()


def _client(d: DaemonProcess, name: str) -> AsyncClient:
    return AsyncClient(d.paths, autostart=False, client_name=name, timeout=120)


def _anon_rss(pid: int) -> int:
    """The daemon's anonymous memory (not the store's memory map)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no RssAnon")


async def _stored_seqs(events: SessionEvents, sid: str, until: int,
                       sample: Callable[[], None] = lambda: None) -> list[int]:
    """The seqs of ``sid``'s stored events the client's rules deliver, up to
    ``until``; ``sample`` is called every thousand."""
    seqs: list[int] = []
    async for event in events.events():
        if getattr(event, "session_id", None) == sid and not isinstance(event, m.Progress):
            seqs.append(event.seq)
            if len(seqs) % 1000 == 0:
                sample()
            if event.seq >= until:
                return seqs


async def test_a_100k_message_session_replays_every_seq_once_with_bounded_daemon_memory(long_daemon):
    d, sid, _, _ = long_daemon
    async with _client(d, "replayer") as c:
        await c.status()
        before = _anon_rss(d.pid)
        seen = [before]
        events = SessionEvents(c)
        result = await events.attach(sid, since_seq=0)
        seqs = await asyncio.wait_for(
            _stored_seqs(events, sid, result.last_seq, lambda: seen.append(_anon_rss(d.pid))), 300)
    assert result.replayed == result.last_seq == MESSAGES + 1
    assert seqs == list(range(1, result.last_seq + 1))
    grew = max(seen) - before
    assert grew < 16 * 1024 * 1024 < MESSAGES * len(TEXT), f"the daemon grew {grew / 2**20:.1f} MiB"


def test_the_blocking_client_replays_the_whole_session_too(long_daemon):
    from duologue.clients.rpc.sync_client import Client

    d, sid, _, _ = long_daemon
    with Client(d.paths, autostart=False, timeout=120) as c:
        result = c.attach(sid, since_seq=0)
        seqs = [c.next_event(timeout=60).seq for _ in range(result.replayed)]
    assert seqs == list(range(1, result.last_seq + 1))


async def test_a_turn_during_a_replay_arrives_after_it_once(long_daemon):
    d, _, _, sid = long_daemon
    async with _client(d, "replayer") as c, _client(d, "writer") as writer:
        events = SessionEvents(c)
        result = await events.attach(sid, since_seq=0)
        sent = await writer.send(sid, "one more, while the replay runs")
        seqs: list[int] = []
        completed: list[int] = []
        async with asyncio.timeout(300):
            async for event in events.events():
                if getattr(event, "session_id", None) != sid or isinstance(event, m.Progress):
                    continue
                seqs.append(event.seq)
                if isinstance(event, m.MessageCompleted) and event.message.turn_id == sent.turn_id:
                    completed.append(event.seq)
                    break
        last = (await writer.get_session(sid, limit=1)).session.last_seq
    assert seqs == list(range(1, last + 1)), "a gap or a repeat"
    assert len(completed) == 1 and completed[0] > result.last_seq
    assert sent.message.seq == result.last_seq + 1, "the turn was written after the attach"


async def test_session_get_pages_cover_the_session_both_ways_without_gap_or_overlap(long_daemon):
    d, sid, big_sid, _ = long_daemon
    async with _client(d, "reader") as c:
        forward: list[int] = []
        got = await c.get_session(sid, limit=m.MAX_PAGE_MESSAGES)
        forward += [msg.seq for msg in got.messages]
        while got.next is not None:
            got = await c.get_session(sid, since_seq=got.next.since_seq, limit=m.MAX_PAGE_MESSAGES)
            forward += [msg.seq for msg in got.messages]
        backward: list[list[int]] = []
        got = await c.get_session(sid, before_seq=m.MAX_SEQ, limit=m.MAX_PAGE_MESSAGES)
        backward.insert(0, [msg.seq for msg in got.messages])
        while got.next is not None:
            got = await c.get_session(sid, since_seq=got.next.since_seq, before_seq=got.next.before_seq,
                                      limit=m.MAX_PAGE_MESSAGES)
            backward.insert(0, [msg.seq for msg in got.messages])
        default = await c.get_session(sid)
        whole = await c.whole_session(sid)
        big = await c.get_session(big_sid, limit=m.MAX_PAGE_MESSAGES)
        big_all = await c.whole_session(big_sid)
    every = list(range(2, MESSAGES + 2))  # seq 1 is session/created
    assert forward == every
    assert [seq for page in backward for seq in page] == every
    assert len(default.messages) == m.PAGE_MESSAGES and default.has_more
    assert default.next == m.PageStart(since_seq=default.messages[-1].seq)
    assert [msg.seq for msg in whole.messages] == every and whole.next is None
    assert 1 <= len(big.messages) < 30 and big.has_more, "a page of large messages ends by its size"
    assert len(msgspec.json.encode(big)) < m.MAX_FRAME_BYTES
    assert [msg.text for msg in big_all.messages] == [f"{i} {BIG_TEXT}" for i in range(30)]


async def test_session_export_comes_in_pages_each_under_the_frame_limit(long_daemon):
    d, sid, _, _ = long_daemon
    async with _client(d, "exporter") as c:
        page = await c.call("session/export", m.ExportParams(session_id=sid, limit=m.MAX_PAGE_MESSAGES))
        sizes = [len(msgspec.json.encode(page))]
        while page.next is not None:
            page = await c.call("session/export", m.ExportParams(
                session_id=sid, since_seq=page.next.since_seq, limit=m.MAX_PAGE_MESSAGES))
            sizes.append(len(msgspec.json.encode(page)))
        doc = await c.export_session(sid)
    assert len(sizes) == MESSAGES // m.MAX_PAGE_MESSAGES
    assert max(sizes) < m.MAX_FRAME_BYTES
    assert len(doc.messages) == MESSAGES and doc.next is None
    assert [msg.seq for msg in doc.messages] == list(range(2, MESSAGES + 2))


@pytest.mark.parametrize(("params", "path", "says"), [
    ({"limit": 0}, "$.limit", ">= 1"),
    ({"limit": m.MAX_PAGE_MESSAGES + 1}, "$.limit", f"<= {m.MAX_PAGE_MESSAGES}"),
    ({"before_seq": -1}, "$.before_seq", ">= 0"),
    ({"since_seq": 5, "before_seq": 5}, "$.before_seq", "must be greater than since_seq 5"),
    ({"next": {"since_seq": 3}}, "$.next", "unknown field"),
])
async def test_bad_page_params_are_refused_with_the_field_named(client, params, path, says):
    s = await client.create_session(title="pages")
    for n in range(6):
        await client.rename_session(s.id, f"pages {n}")
    with pytest.raises(RpcError) as err:
        await client.call("session/get", {"session_id": s.id, **params})
    assert err.value.code == -32602
    assert err.value.data == {"path": path}
    assert says in err.value.message
