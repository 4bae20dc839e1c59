"""Figure 6: attaching to a long session, and listing many sessions.

The stores are generated in this process with the daemon's own ``Store`` and
``Sessions`` code before the daemon starts, fifty turns a commit, commits not synced
(``unsynced_store``): generation is setup, not the figure. A turn is realistic: a
user message, then a reply opened empty, streamed in ``DELTAS`` deltas and
completed, so 10,000 messages are 5,000 turns and 115,001 events.

- Attach with ``since_seq=0`` to 10,000 messages, until every replayed event has
  arrived. Bare: a plain pyzmq DEALER sends the attach and counts the notifications
  in the frames it receives (nothing decoded); floor, interleaved call by call: the
  same DEALER attaching to a plain pyzmq ROUTER in its own process
  (``bench.zmq_floor --replay``) that reads the same session's records from the same
  store with an LMDB cursor, a page at a time as the daemon does, and sends the very
  frames the daemon sent: what any daemon pays to read that store and send those
  bytes, with nothing rebuilt. The note gives, also interleaved, the daemon's own
  read of the pages in this process (``Store.frame_page``). Through
  ``AsyncClient``: until ``async for`` over ``events()`` has yielded every event,
  typed, as followers take them; floor, interleaved: the frames the bare client
  received, already in memory, decoded into the same typed notifications, the work
  the client cannot skip. Targets: < 100 ms bare, < 150 ms through the client.
- Attach with ``since_seq=0`` to 100,000 messages (1,150,001 events) through
  ``AsyncClient``: it completes, and the daemon's anonymous RSS sampled during it
  stays where it was (the replay is read as the pipe takes it). Floor: the store
  read, as for the bare row.
- The daemon's memory once that session answers a turn (its whole history then kept
  for the next rounds, ``turns/history.py``): the anonymous RSS it gained, against
  the bytes of the session's message records in the store. Target: at most 4x them
  (each message as Python objects, its token count and one model's encoding of it).
- ``daemon/status`` from a second client while the bare DEALER replays the whole
  session, as fast as it reads. Floor: as many status calls after each replay, none
  running. Target: p99 under 50 ms (as during an import: a replay never holds other
  clients up for more than a slice of its work; before, one flush sent it all and a
  status call waited 150-210 ms).
- Attach with ``since_seq`` 20 events before the end. Floor: ``daemon/status``.
- ``session/list`` over 10,001 sessions, first page (50) and everything (10,000).
  Floor: ``Store.list_sessions`` in one process.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path

import msgspec
import zmq

from duologue.daemon.catalog import Catalog
from duologue.daemon.hub import Hub
from duologue.daemon.ids import new_id
from duologue.daemon.replay import PAGE_EVENTS
from duologue.daemon.sessions import Draft, Sessions
from duologue.daemon.store import Store
from duologue.protocol import methods as m
from duologue.protocol.entities import Message, Session, TextBlock, Usage
from duologue.protocol.jsonrpc import Incoming, decode_notification, encode_request, parse_replies
from duologue.protocol.paths import locate

from .fixtures import Daemon, home_env, temp_home, unsynced_store
from .harness import (
    Row,
    latency_row,
    ms,
    now_ns,
    p50,
    p99,
    progress,
    time_async_pairs,
    time_interleaved,
    value_row,
)
from .rpc_roundtrip import echo

DELTAS = 20
"""Deltas a reply streams in (the issue's realistic figure)."""
TURNS_PER_COMMIT = 50
QUESTION = "How do I keep a borrowed slice alive across an await point? " * 2
CHUNK = "Move the data into an owned buffer before the await; "


def _turn(draft: Draft, session: Session, n: int) -> None:
    turn_id = new_id()
    draft.add_message(lambda seq: Message(
        id=new_id(), session_id=session.id, seq=seq, role="user", content=[TextBlock(text=QUESTION)],
        created_at=draft.now, turn_id=turn_id))
    reply = draft.add_message(lambda seq: Message(
        id=new_id(), session_id=session.id, seq=seq, role="assistant", content=[],
        created_at=draft.now, model="claude-sonnet-5-5", status="streaming", turn_id=turn_id))
    for _ in range(DELTAS):
        draft.emit_delta(reply, CHUNK)
    done = Message(id=reply.id, session_id=session.id, seq=reply.seq, role="assistant",
                   content=[TextBlock(text=CHUNK * DELTAS)], created_at=draft.now, model="claude-sonnet-5-5",
                   turn_id=turn_id, usage=Usage(input_tokens=40 * n + 30, output_tokens=60),
                   latency_ms=900.0, ttft_ms=300.0, stop_reason="end_turn")
    draft.messages[-1] = done
    draft.emit(m.MessageCompleted, message=done)


def generate(home: Path, messages: int, sessions: int) -> str:
    """Build the store; returns the long session's id."""
    with unsynced_store(Path(locate(home_env(home)).store_dir)) as store:
        sess = Sessions(store, Catalog(), Hub())
        long = sess.create(m.CreateParams(title=f"{messages:,} messages", model="sonnet"))
        turns = messages // 2
        for start in range(0, turns, TURNS_PER_COMMIT):
            draft = sess.draft(long)
            for n in range(start, min(start + TURNS_PER_COMMIT, turns)):
                _turn(draft, long, n)
            long = sess.commit(draft)
            if (start // TURNS_PER_COMMIT + 1) % 100 == 0:
                progress(f"generating: {2 * min(start + TURNS_PER_COMMIT, turns):,}/{messages:,} messages")
        for i in range(sessions):
            sess.create(m.CreateParams(title=f"session {i}", project_id=f"/src/project{i % 20}"))
        progress(f"store: {long.last_seq:,} events in the long session, {store.count_sessions():,} sessions")
        return long.id


def _read_from_store(store: Store, sid: str) -> Callable[[], None]:
    """The session's events read and rebuilt as the daemon's replay reads them."""
    last = store.get_session(sid).last_seq

    def read() -> None:
        seq = 0
        while True:
            frames, seq = store.frame_page(sid, seq, last, PAGE_EVENTS)
            if not frames:
                return
    return read


def _write_frames(path: Path, frames: list[bytes]) -> Path:
    """The frames as ``bench.zmq_floor --replay`` reads them: each behind its length."""
    path.write_bytes(b"".join(len(f).to_bytes(4, "big") + f for f in frames))
    return path


def _decode(frames: list[bytes]) -> Callable[[], None]:
    """The client's floor: the same frames, already in memory, decoded into the
    typed notifications a client yields."""
    def decode() -> None:
        for frame in frames:
            for note in parse_replies(frame):
                assert isinstance(note, Incoming)
                decode_notification(note)
    return decode


class _Bare:
    """A plain pyzmq DEALER replaying the session: attach, then count the
    notifications in what arrives until all are in (nothing decoded)."""

    def __init__(self, endpoint: str, sid: str, events: int):
        self.sock = zmq.Context.instance().socket(zmq.DEALER)
        self.sock.connect(endpoint)
        self.sid, self.events = sid, events
        self.frames: list[bytes] = []
        """What the last replay came as."""

    def replay(self) -> None:
        self.sock.send(encode_request(1, "session/attach", {"session_id": self.sid, "since_seq": 0}))
        self.sock.recv()  # the response comes first
        seen, frames = 0, []
        while seen < self.events:
            frames.append(self.sock.recv())
            seen += frames[-1].count(b'"jsonrpc"')
        self.frames = frames
        self.sock.send(encode_request(2, "session/detach", {"session_id": self.sid}))
        self.sock.recv()

    def close(self) -> None:
        self.sock.close(linger=0)


async def _receive(c, count: int) -> None:  # noqa: ANN001 - AsyncClient
    """Take ``count`` events the way followers do (``async for`` over ``events()``)."""
    if count == 0:
        return
    seen = 0
    async for _ in c.events():
        seen += 1
        if seen == count:
            return


async def _replay_all(c, sid: str) -> int:  # noqa: ANN001 - AsyncClient
    result = await c.attach(sid, since_seq=0)
    await asyncio.wait_for(_receive(c, result.replayed), 600)
    await c.detach(sid)
    return result.replayed


def _anon_mb(pid: int) -> float:
    """A process's anonymous resident memory, MiB: what its queues hold (VmRSS also
    counts the store's memory map, which a replay reads through)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no RssAnon for pid {pid}")


class _PeakRss:
    """The daemon's highest anonymous RSS seen while the block runs, in MiB."""

    def __init__(self, pid: int):
        self.pid, self.peak, self._done = pid, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._done.wait(0.02):
            self.peak = max(self.peak, _anon_mb(self.pid))

    def __enter__(self) -> _PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()


def _status_during_replays(d: Daemon, bare: _Bare, rounds: int) -> tuple[list[float], list[float]]:
    """``daemon/status`` round trips from a second DEALER while ``bare`` replays the
    whole session in a thread, and as many with no replay running, round by round."""
    status = zmq.Context.instance().socket(zmq.DEALER)
    status.connect(d.paths.endpoint)
    request = encode_request(1, "daemon/status", {})

    def call() -> float:
        t0 = now_ns()
        status.send(request)
        status.recv()
        return ms(now_ns() - t0)

    during: list[float] = []
    idle: list[float] = []
    try:
        for _ in range(rounds):
            replaying = threading.Thread(target=bare.replay)
            replaying.start()
            first = len(during)
            while replaying.is_alive():
                during.append(call())
            replaying.join()
            idle += [call() for _ in range(len(during) - first)]
    finally:
        status.close(linger=0)
    return during, idle


def _bare_rows(d: Daemon, store: Store, sid: str, events: int, n: int,
               tmp: Path) -> tuple[tuple[list[float], ...], list[bytes]]:
    """Ours, the floor process and the daemon's own read in this process, interleaved,
    then status calls during replays and without; and the frames the replay came as."""
    bare = _Bare(d.paths.endpoint, sid, events)
    try:
        bare.replay()  # the frames the floor sends
        frames_file = _write_frames(tmp / "replay.frames", bare.frames)
        with echo(tmp, frames_file, mode="replay", args=(str(d.paths.store_dir), sid, str(PAGE_EVENTS))) as floor_at:
            floor = _Bare(floor_at, sid, events)
            try:
                got = time_interleaved(bare.replay, floor.replay, _read_from_store(store, sid), n=n, warmup=1,
                                       label="bare DEALER attach since_seq=0 | floor | Store.frame_page", every=1)
            finally:
                floor.close()
        got = (*got, *_status_during_replays(d, bare, n))
    finally:
        bare.close()
    progress(f"bare replay: {events:,} events in {len(bare.frames):,} frames")
    return got, bare.frames


async def _measure(d: Daemon, store: Store, sid: str, events: int, full_n: int, tail_n: int,
                   list_n: int, all_n: int, total: int, tmp: Path) -> dict[str, tuple[list[float], ...]]:
    out: dict[str, tuple[list[float], ...]] = {}
    out["bare"], frames = _bare_rows(d, store, sid, events, full_n, tmp)
    async with d.client("bench-attach", timeout=600) as c:
        session = (await c.get_session(sid, limit=1)).session
        out["full"] = await time_async_pairs(lambda: _replay_all(c, sid), _decode(frames),
                                             full_n, warmup=1, label="AsyncClient attach since_seq=0 | floor",
                                             every=1)
        since = session.last_seq - 20

        async def tail() -> None:
            result = await c.attach(sid, since_seq=since)
            await _receive(c, result.replayed)
            await c.detach(sid)

        out["tail"] = await _pairs_of_calls(tail, c.status, tail_n, "attach near the end | daemon/status")

        async def page() -> None:
            assert len((await c.list_sessions(limit=50)).sessions) == 50

        async def everything() -> None:
            assert len((await c.list_sessions(limit=10_000)).sessions) == min(total, 10_000)

        out["page"] = await time_async_pairs(page, lambda: store.list_sessions(limit=51), list_n, warmup=5,
                                             label="session/list limit 50 | floor")
        out["all"] = await time_async_pairs(everything, lambda: store.list_sessions(limit=10_001), all_n,
                                            warmup=1, label="session/list limit 10000 | floor", every=1)
    return out


async def _pairs_of_calls(ours: Callable, floor: Callable, n: int, label: str) -> tuple[list[float], list[float]]:
    """Two coroutine functions timed in turn, call by call."""
    a: list[float] = []
    b: list[float] = []
    for _ in range(5):
        await ours()
        await floor()
    for i in range(n):
        t0 = now_ns()
        await ours()
        t1 = now_ns()
        await floor()
        a.append(ms(t1 - t0))
        b.append(ms(now_ns() - t1))
        if (i + 1) % max(1, n // 4) == 0:
            progress(f"{label}: {i + 1}/{n}")
    return a, b


def _attach_rows(quick: bool) -> list[Row]:
    messages, sessions = (1_000, 1_000) if quick else (10_000, 10_000)
    full_n, tail_n, list_n, all_n = (3, 20, 20, 2) if quick else (10, 300, 300, 10)
    events = 1 + (2 + DELTAS + 1) * (messages // 2)
    with temp_home() as tmp:
        home = tmp / "home"
        sid = generate(home, messages, sessions)
        with Daemon(home, builtin_emulator=True) as d:
            store = Store(Path(locate(home_env(home)).store_dir))
            try:
                got = asyncio.run(_measure(d, store, sid, events, full_n, tail_n, list_n, all_n, sessions + 1, tmp))
            finally:
                store.close()
    shape = f"{messages:,} messages ({events:,} events, {DELTAS} deltas a reply)"
    return [
        latency_row(f"attach since_seq=0, {shape} all received, bare DEALER", got["bare"][0],
                    "pyzmq ROUTER reading the same records (LMDB cursor) and sending the same frames, "
                    "interleaved", got["bare"][1], target="< 100 ms",
                    met=p50(got["bare"][0]) < 100, with_p99=False,
                    note="a plain pyzmq DEALER counts the notifications in the JSON-RPC batch frames it "
                         f"receives (up to {PAGE_EVENTS} events a frame), nothing decoded, from the daemon and "
                         "from the floor process alike. The daemon's own read of the same pages in process "
                         f"(`Store.frame_page`, each delta's frame rebuilt from its stored text), interleaved: "
                         f"p50 {p50(got['bare'][2]):.1f} ms"),
        latency_row(f"daemon/status while a bare DEALER replays {messages:,} messages since_seq=0",
                    got["bare"][3], "daemon/status, no replay running (as many calls, after each replay)",
                    got["bare"][4], target="p99 < 50 ms", met=p99(got["bare"][3]) < 50,
                    note=f"{full_n} replays to a client that reads as fast as they come; longest call "
                         f"{max(got['bare'][3]):.1f} ms (no replay: {max(got['bare'][4]):.1f} ms). A flush "
                         "reads at most 8 pages before the loop serves others"),
        latency_row(f"attach since_seq=0, {shape} all received, AsyncClient", got["full"][0],
                    "decode of the same frames, in memory, interleaved", got["full"][1], target="< 150 ms",
                    met=p50(got["full"][0]) < 150, with_p99=False,
                    note="until `async for` over `events()` has yielded every replayed event, typed"),
        latency_row(f"attach since_seq = last-20, {messages:,}-message session", got["tail"][0],
                    "daemon/status round trip, interleaved", got["tail"][1], target="p99 < 5 ms",
                    met=p99(got["tail"][0]) < 5),
        latency_row(f"session/list first page (50) over {sessions + 1:,} sessions", got["page"][0],
                    "Store.list_sessions, in process, interleaved", got["page"][1], target="p99 < 5 ms",
                    met=p99(got["page"][0]) < 5),
        latency_row(f"session/list all {min(sessions + 1, 10_000):,} of {sessions + 1:,} sessions",
                    got["all"][0], "Store.list_sessions, in process, interleaved", got["all"][1],
                    target="<= 3x floor", met=p50(got["all"][0]) <= 3 * p50(got["all"][1]), with_p99=False),
    ]


HISTORY_TARGET = 4.0
"""The most the daemon may gain in memory, in bytes of the session's message records,
once a turn on the session keeps its history."""


async def _answered(c, sid: str) -> None:  # noqa: ANN001 - AsyncClient
    """Send one turn and wait until it ended."""
    await c.attach(sid, since_seq=(await c.get_session(sid, limit=1)).session.last_seq)
    sent = await c.send(sid, QUESTION)
    while True:
        event = await c.next_event(timeout=600)
        if isinstance(event, m.Progress) and event.turn_id == sent.turn_id and event.kind == "end":
            return


def _long_session_rows(quick: bool) -> list[Row]:
    messages = 10_000 if quick else 100_000
    rounds = 1
    events = 1 + (2 + DELTAS + 1) * (messages // 2)
    with temp_home() as tmp:
        home = tmp / "home"
        sid = generate(home, messages, 0)
        with Daemon(home, builtin_emulator=True) as d:
            store = Store(Path(locate(home_env(home)).store_dir))
            records = sum(len(msgspec.msgpack.encode(msg)) for msg in store.messages(sid)) / 2**20

            async def replay() -> tuple[list[float], list[float], list[int], float, float, float, float]:
                async with d.client("bench-long", timeout=600) as c:
                    await c.status()
                    before = _anon_mb(d.pid)
                    received: list[int] = []

                    async def once() -> None:
                        received.append(await _replay_all(c, sid))

                    with _PeakRss(d.pid) as rss:
                        ours, floor = await time_async_pairs(once, _read_from_store(store, sid),
                                                             rounds, label="100k attach | floor", every=1)
                    unanswered = _anon_mb(d.pid)
                    await _answered(c, sid)
                    progress("the long session answered a turn")
                    return ours, floor, received, before, rss.peak, unanswered, _anon_mb(d.pid)

            try:
                ours, floor, received, before, peak, unanswered, answered = asyncio.run(replay())
            finally:
                store.close()
    complete = all(r == events for r in received)
    gained = answered - unanswered
    return [
        latency_row(
            f"attach since_seq=0, {messages:,} messages ({events:,} events), replayed completely through "
            "AsyncClient", ours, "Store.frame_page in process, interleaved", floor, target="replays completely",
            met=complete, with_p99=False,
            note=f"{sum(received):,} of {events * len(received):,} events received over {len(received)} replays; "
                 f"daemon anonymous RSS {before:.0f} MiB before, peak {peak:.0f} MiB during"),
        value_row(
            f"daemon memory gained keeping a {messages:,}-message session's history (after one turn on it)",
            gained, "MiB", "the session's message records in the store", records,
            target=f"<= {HISTORY_TARGET:g}x the records", met=gained <= HISTORY_TARGET * records,
            note=f"anonymous RSS {unanswered:.0f} MiB after the replay, {answered:.0f} MiB once the turn "
                 "ended (the SDKs load with it: part of the gain is theirs)"),
    ]


def run(quick: bool) -> list[Row]:
    return [*_attach_rows(quick), *_long_session_rows(quick)]
