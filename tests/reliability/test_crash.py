"""kill -9 at random moments of streamed turns, with several clients attached.

Each round starts the daemon on the same home, attaches three clients to the
round's sessions, lets them send concurrently while replies stream from the
emulator, and kills the daemon with SIGKILL after a random delay: before a turn
starts, mid-stream, between turns, while others are queued. The next start must
then show, for every round so far:

- every message whose ``session/send`` was answered, with its seq and content;
- every event any client received, identical at the same seq (events are published
  only after their commit, so a client can never have seen something the store lost);
- seqs 1..last_seq with no gap in the attach replay;
- every reply's text, interrupted ones included, is the text of all its deltas
  (whatever a client received of a reply cut by the kill is kept);
- no reply left ``streaming``, and every turn that a send acknowledged ending in an
  assistant message (complete, failed, or marked ``interrupted``);
- a store that opens cleanly (the daemon starts; at the end the store is also opened
  directly and checked).

The random moments come from a seed printed with any failure (set ``DUOLOGUE_SEED``
to replay one).
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conversation_support import provider_daemon
from support import DaemonProcess

from duologue.clients.rpc.client import AsyncClient, Disconnected
from duologue.daemon.emulator import Emulator, Reply
from duologue.daemon.store import Store
from duologue.protocol import methods as m
from duologue.protocol.entities import Message

CLIENTS = 3
CHUNKS = 30
CHUNK_DELAY_S = 0.01
# Odd rounds aim inside a reply; their replies stream for 1.5 s so that a kill
# timed from the first chunk a client sees still lands mid-stream on a loaded machine.
AIMED_CHUNK_DELAY_S = 0.05


@dataclass
class Ledger:
    """What the clients were told, across all rounds: what the store must still hold."""

    sessions: list[str] = field(default_factory=list)
    acked: dict[str, Message] = field(default_factory=dict)  # user message id -> as acknowledged
    turns: dict[str, str] = field(default_factory=dict)  # acknowledged turn id -> session id
    events: dict[tuple[str, int], Any] = field(default_factory=dict)  # (sid, seq) -> event seen
    touched: set[str] = field(default_factory=set)
    kills_mid_stream: int = 0


async def _connect(d: DaemonProcess, name: str) -> AsyncClient:
    c = d.client(name)
    await c.connect()
    return c


def _record(ledger: Ledger, event: Any) -> None:
    if isinstance(event, (m.Progress, Disconnected)) or not hasattr(event, "seq"):
        return
    key = (event.session_id, event.seq)
    seen = ledger.events.setdefault(key, event)
    assert seen == event, f"two clients saw different events at {key}: {seen!r} / {event!r}"


async def _round(d: DaemonProcess, emulator: Emulator, ledger: Ledger, rng: random.Random, n: int) -> bool:
    """One round of load, ended by kill -9; True when a reply was streaming at the kill."""
    emulator.reset()
    aimed = bool(n % 2)
    delay = AIMED_CHUNK_DELAY_S if aimed else CHUNK_DELAY_S
    for provider in ("anthropic", "gemini"):
        emulator.script(provider, *[Reply(chunks=[f"r{n}t{t}c{i} " for i in range(CHUNKS)],
                                          chunk_delay=delay) for t in range(12)])
    clients = [await _connect(d, f"crash-{n}-{i}") for i in range(CLIENTS)]
    new = await clients[0].create_session(title=f"round {n}", model=rng.choice(["sonnet", "flash"]))
    ledger.sessions.append(new.id)
    active = [new.id] + ([ledger.sessions[0]] if len(ledger.sessions) > 1 else [])
    ledger.touched.update(active)
    for c in clients:
        for sid in active:
            await c.attach(sid)

    async def reader(c: AsyncClient) -> None:
        async for event in c.events():
            _record(ledger, event)

    async def sender(c: AsyncClient, i: int) -> None:
        for k in range(1_000):
            sid = rng.choice(active)
            sent = await c.send(sid, f"round {n} client {i} message {k}")
            ledger.acked[sent.message.id] = sent.message
            ledger.turns[sent.turn_id] = sid
            await asyncio.sleep(rng.uniform(0.0, 0.25))

    tasks = [asyncio.create_task(reader(c)) for c in clients]
    tasks += [asyncio.create_task(sender(c, i)) for i, c in enumerate(clients)]
    if aimed:
        # Aim inside a reply: wait until the emulator streams one (however long a
        # loaded machine takes to start it), then a random moment in its first fifth.
        deadline = time.monotonic() + 60.0
        while not emulator.streaming and time.monotonic() < deadline:
            await asyncio.sleep(0.002)
        await asyncio.sleep(rng.uniform(0.0, delay * CHUNKS / 5))
    else:
        await asyncio.sleep(rng.uniform(0.02, 0.9))  # anywhere: before, between, during turns
    # Mid-stream as the provider sees it: a reply's events are being sent.
    mid_stream = emulator.streaming > 0
    d.kill9()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for c in clients:
        while (event := c.take_event()) is not None:  # received before the kill, not yet consumed
            _record(ledger, event)
        await c.close()
    return mid_stream


async def _verify(d: DaemonProcess, ledger: Ledger) -> dict[str, int]:
    counts = {"messages": 0, "interrupted": 0, "events": 0}
    async with d.client("checker") as c:
        by_session: dict[str, dict[str, Message]] = {}
        for sid in ledger.sessions:
            got = await c.whole_session(sid)  # every page: a session here outgrows one
            msgs = {msg.id: msg for msg in got.messages}
            by_session[sid] = msgs
            counts["messages"] += len(msgs)
            assert not [x for x in msgs.values() if x.status == "streaming"], f"{sid}: reply left streaming"
            counts["interrupted"] += sum(x.status == "interrupted" for x in msgs.values())
        for mid, acked in ledger.acked.items():
            stored = by_session[acked.session_id].get(mid)
            assert stored == acked, f"acknowledged message {mid} lost or changed: {stored!r}"
        for turn_id, sid in ledger.turns.items():
            of_turn = sorted((x for x in by_session[sid].values() if x.turn_id == turn_id), key=lambda x: x.seq)
            last = of_turn[-1]
            assert last.role == "assistant" and last.status != "streaming", (
                f"turn {turn_id} in {sid} ends with {last.role} {last.status}: not answered and not marked")
        for sid in sorted(ledger.touched):
            attached = await c.attach(sid, since_seq=0)
            replay = [await c.next_event(10) for _ in range(attached.replayed)]
            await c.detach(sid)
            seqs = [e.seq for e in replay]
            assert seqs == list(range(1, attached.last_seq + 1)), f"{sid}: replay seqs not 1..{attached.last_seq}"
            counts["events"] += len(replay)
            for e in replay:
                seen = ledger.events.get((sid, e.seq))
                assert seen is None or seen == e, f"{sid} seq {e.seq}: clients saw {seen!r}, store has {e!r}"
            missing = [k for k in ledger.events if k[0] == sid and k[1] > attached.last_seq]
            assert not missing, f"{sid}: events clients received are gone: {missing[:5]}"
            streamed: dict[str, str] = {}
            for e in replay:
                if isinstance(e, m.MessageDelta):
                    streamed[e.message_id] = streamed.get(e.message_id, "") + e.text
            for msg in by_session[sid].values():  # interrupted ones too: the text of every delta kept
                if msg.role == "assistant":
                    assert msg.text == streamed.get(msg.id, ""), f"{sid}: {msg.status} reply {msg.id} lost text"
    ledger.touched.clear()
    return counts


def _check_store_offline(path: Path, ledger: Ledger) -> None:
    store = Store(path)
    try:
        assert [msg.id for msg in store.open_turns() if msg.status == "streaming"] == []
        for sid in ledger.sessions:
            session = store.get_session(sid)
            assert session is not None
            assert len(store.events(sid)) == session.last_seq
            assert session.message_count == len(store.messages(sid))
    finally:
        store.close()


async def test_kill9_at_random_moments_of_streamed_turns_loses_nothing_acknowledged(
        home: Path, emulator: Emulator, sizes, figures):
    seed = int(os.environ.get("DUOLOGUE_SEED") or random.randrange(2**32))
    rng = random.Random(seed)
    ledger = Ledger()
    d = provider_daemon(home, emulator)
    restarts: list[float] = []
    started = time.monotonic()
    round_ = -1
    try:
        d.start()
        for round_ in range(sizes.crash_rounds):
            await _verify(d, ledger)
            ledger.kills_mid_stream += await _round(d, emulator, ledger, rng, round_)
            t0 = time.monotonic()
            d.start()
            restarts.append(time.monotonic() - t0)
        counts = await _verify(d, ledger)
        assert "marked" in d.log()  # recovery ran and said so
        d.stop()
        _check_store_offline(Path(d.paths.store_dir), ledger)
    except BaseException as exc:
        exc.add_note(f"crash test seed {seed} (DUOLOGUE_SEED={seed} replays it), round {round_}")
        raise
    finally:
        d.stop()
    assert ledger.kills_mid_stream >= sizes.crash_rounds // 4, "too few kills landed mid-stream to mean much"
    figures["crash"] = {
        "rounds": sizes.crash_rounds, "seed": seed, "kills_mid_stream": ledger.kills_mid_stream,
        "acknowledged_sends": len(ledger.acked), "events_seen_by_clients": len(ledger.events),
        "sessions": len(ledger.sessions), "messages_stored": counts["messages"],
        "replies_marked_interrupted": counts["interrupted"], "lost": 0,
        "restart_s_max": round(max(restarts), 2), "duration_s": round(time.monotonic() - started, 1),
    }
