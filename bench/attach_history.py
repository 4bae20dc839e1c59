"""Figure 6: attaching to a long session, and listing many sessions.

The store is generated in this process with the daemon's own ``Store`` and
``Sessions`` code before the daemon starts: one session of 10,000 messages (5,000
turns, each a user message and a completed reply with one delta: 20,000 events), and
10,000 more sessions. Commits are not synced during generation (``lmdb.open`` is
wrapped to pass ``sync=False`` while this process builds the store): generation is
setup, not the figure.

- Attach with ``since_seq=0``: from the async client's ``session/attach`` until every
  replayed event has been received and decoded. Floor: the same events read straight
  from the store in one process (``Store.events``) and decoded into the same typed
  notifications: the work no design can skip.
- Attach with ``since_seq`` 20 events before the end. Floor: ``daemon/status``.
- ``session/list`` over 10,001 sessions, first page (50) and everything (10,000).
  Floor: ``Store.list_sessions`` in one process.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from duologue.daemon.catalog import Catalog
from duologue.daemon.hub import Hub
from duologue.daemon.ids import new_id
from duologue.daemon.sessions import Sessions
from duologue.daemon.store import Store
from duologue.protocol import methods as m
from duologue.protocol.entities import Message, TextBlock, Usage
from duologue.protocol.jsonrpc import Incoming, decode_notification, parse_replies
from duologue.protocol.paths import locate

from .fixtures import Daemon, home_env, temp_home, unsynced_store
from .harness import Row, latency_row, progress, time_async_calls, time_calls


def generate(home: Path, messages: int, sessions: int) -> str:
    """Build the store; returns the long session's id."""
    paths = locate(home_env(home))
    with unsynced_store(Path(paths.store_dir)) as store:
        sess = Sessions(store, Catalog(), Hub())
        long = sess.create(m.CreateParams(title="ten thousand messages", model="sonnet"))
        question = "How do I keep a borrowed slice alive across an await point? " * 2
        answer = ("Move the data into an owned buffer before the await, or restructure so the "
                  "borrow ends first; here is why the checker refuses the original. ") * 3
        for turn in range(messages // 2):
            draft = sess.draft(long)
            turn_id = new_id()
            draft.add_message(lambda seq: Message(
                id=new_id(), session_id=long.id, seq=seq, role="user", content=[TextBlock(text=question)],
                created_at=draft.now, turn_id=turn_id))
            reply = draft.add_message(lambda seq: Message(
                id=new_id(), session_id=long.id, seq=seq, role="assistant", content=[],
                created_at=draft.now, model="claude-sonnet-5-5", status="streaming", turn_id=turn_id))
            draft.emit(m.MessageDelta, message_id=reply.id, text=answer)
            done = Message(id=reply.id, session_id=long.id, seq=reply.seq, role="assistant",
                           content=[TextBlock(text=answer)], created_at=draft.now, model="claude-sonnet-5-5",
                           turn_id=turn_id, usage=Usage(input_tokens=40 * turn + 30, output_tokens=60),
                           latency_ms=900.0, ttft_ms=300.0, stop_reason="end_turn")
            draft.messages[-1] = done
            draft.emit(m.MessageCompleted, message=done)
            long = sess.commit(draft)
            if (turn + 1) % 1000 == 0:
                progress(f"generating: {2 * (turn + 1)}/{messages} messages")
        for i in range(sessions):
            sess.create(m.CreateParams(title=f"session {i}", project_id=f"/src/project{i % 20}"))
            if (i + 1) % 2500 == 0:
                progress(f"generating: {i + 1}/{sessions} sessions")
        progress(f"store: {long.last_seq} events in the long session, {store.count_sessions()} sessions")
        return long.id


async def _receive(c, count: int) -> None:  # noqa: ANN001 - AsyncClient
    """Take ``count`` events the way followers do (``async for`` over ``events()``)."""
    if count == 0:
        return
    seen = 0
    async for _ in c.events():
        seen += 1
        if seen == count:
            return


async def _replay_all(c, sid: str) -> None:  # noqa: ANN001 - AsyncClient
    result = await c.attach(sid, since_seq=0)
    await asyncio.wait_for(_receive(c, result.replayed), 60)
    await c.detach(sid)


async def _measure(d: Daemon, sid: str, full_n: int, tail_n: int, list_n: int, all_n: int,
                   total: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    async with d.client("bench-attach", timeout=120) as c:
        session = (await c.get_session(sid, limit=1)).session
        out["full"] = await time_async_calls(lambda: _replay_all(c, sid), full_n, warmup=1,
                                             label="ours: attach since_seq=0", every=1)
        since = session.last_seq - 20

        async def tail() -> None:
            result = await c.attach(sid, since_seq=since)
            await _receive(c, result.replayed)
            await c.detach(sid)

        out["tail"] = await time_async_calls(tail, tail_n, warmup=5, label="ours: attach near the end")
        out["status"] = await time_async_calls(c.status, tail_n, warmup=5, label="floor: daemon/status")

        async def page() -> None:
            assert len((await c.list_sessions(limit=50)).sessions) == 50

        async def everything() -> None:
            assert len((await c.list_sessions(limit=10_000)).sessions) == min(total, 10_000)

        out["page"] = await time_async_calls(page, list_n, warmup=5, label="ours: session/list limit 50")
        out["all"] = await time_async_calls(everything, all_n, warmup=1, label="ours: session/list limit 10000",
                                            every=1)
    return out


def _floors(home: Path, sid: str, full_n: int, list_n: int, all_n: int) -> dict[str, list[float]]:
    store = Store(Path(locate(home_env(home)).store_dir))
    try:
        def read_all() -> None:
            for frame in store.events(sid, 0):
                (note,) = parse_replies(frame)
                assert isinstance(note, Incoming)
                decode_notification(note)

        return {
            "full": time_calls(read_all, full_n, warmup=1, label="floor: Store.events + decode", every=1),
            "page": time_calls(lambda: store.list_sessions(limit=51), list_n, warmup=5,
                               label="floor: Store.list_sessions 50"),
            "all": time_calls(lambda: store.list_sessions(limit=10_001), all_n, warmup=1,
                              label="floor: Store.list_sessions 10000", every=1),
        }
    finally:
        store.close()


def run(quick: bool) -> list[Row]:
    messages, sessions = (1_000, 1_000) if quick else (10_000, 10_000)
    full_n, tail_n, list_n, all_n = (2, 20, 20, 2) if quick else (10, 300, 300, 10)
    with temp_home() as tmp:
        home = tmp / "home"
        sid = generate(home, messages, sessions)
        with Daemon(home, builtin_emulator=True) as d:
            ours = asyncio.run(_measure(d, sid, full_n, tail_n, list_n, all_n, sessions + 1))
        floor = _floors(home, sid, full_n, list_n, all_n)
    events = 1 + 4 * (messages // 2)
    return [
        latency_row(f"attach since_seq=0, {messages:,} messages ({events:,} events) all received", ours["full"],
                    "Store.events + decode, in process", floor["full"],
                    note="time until the async client has received and decoded every replayed event, "
                         "taken with `async for` over `events()` as followers do; one ZeroMQ frame per event"),
        latency_row(f"attach since_seq = last-20, {messages:,}-message session", ours["tail"],
                    "daemon/status round trip", ours["status"]),
        latency_row(f"session/list first page (50) over {sessions + 1:,} sessions", ours["page"],
                    "Store.list_sessions, in process", floor["page"]),
        latency_row(f"session/list all {min(sessions + 1, 10_000):,} of {sessions + 1:,} sessions", ours["all"],
                    "Store.list_sessions, in process", floor["all"]),
    ]
