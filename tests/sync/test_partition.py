"""A partitioned write pair ends as a documented fork: both devices wrote to one
session while NATS was away; the one whose events reached JetStream first keeps the
session, the other's events move to a fork linked to it, and every machine ends
with both sessions, nothing lost, no seqs interleaved."""

from __future__ import annotations

import asyncio

from support import DaemonProcess
from sync_support import NatsServer, converged, history, wait_for

from duologue.clients.rpc.session_events import SessionEvents
from duologue.protocol import methods as m


async def _prompts(client, sid: str) -> list[str]:
    got = await history(client, sid)
    return [] if got is None else [msg["content"][0]["text"] for msg in got[1] if msg["role"] == "user"]


async def _replied(client, sid: str, n: int) -> bool:
    got = await history(client, sid)
    return got is not None and sum(1 for msg in got[1] if msg["role"] == "assistant"
                                   and msg.get("status") != "streaming") >= n


async def _shared_session(a, b) -> tuple[str, int]:
    """A session made on the laptop, once the desktop holds it, and its last seq."""
    sid = (await a.create_session(title="apart")).id
    await wait_for(lambda: converged(a, b, sid), what="the desktop holds the session")
    return sid, (await history(a, sid))[0].last_seq


async def _write_apart(nats_server: NatsServer, a, b, sid: str) -> None:
    """Each device sends a turn to ``sid`` while NATS is down, then NATS comes back."""
    nats_server.stop()
    await a.send(sid, "written on the laptop while apart")
    await b.send(sid, "written on the desktop while apart")
    await wait_for(lambda: _replied(a, sid, 1), what="the laptop's offline reply")
    await wait_for(lambda: _replied(b, sid, 1), what="the desktop's offline reply")
    nats_server.start()


async def _fork_of(client, sid: str):
    listed = await client.list_sessions()
    forks = [s for s in listed.sessions if s.metadata.get("forked_from") == sid]
    return forks[0] if forks else None


async def test_a_partitioned_write_pair_ends_as_a_fork_on_every_machine(
        nats_server: NatsServer, laptop: DaemonProcess, desktop: DaemonProcess):
    async with laptop.client("laptop") as a, desktop.client("desktop") as b:
        sid, shared = await _shared_session(a, b)
        await a.attach(sid)
        await b.attach(sid)
        await _write_apart(nats_server, a, b, sid)

        fork = await wait_for(lambda: _fork_of(a, sid), what="a fork on the laptop")
        await wait_for(lambda: _fork_of(b, sid), what="the fork on the desktop")
        await wait_for(lambda: converged(a, b, sid), what="the original converged")
        await wait_for(lambda: converged(a, b, fork.id, last_seq=2), what="the fork converged")

        kept, moved = await _prompts(a, sid), await _prompts(a, fork.id)
        assert sorted(kept + moved) == ["written on the desktop while apart", "written on the laptop while apart"]
        assert len(kept) == len(moved) == 1
        assert fork.title == "apart (fork)" and fork.metadata["forked_at_seq"] == str(shared)
        original = (await history(a, sid))[1]
        assert [msg["seq"] for msg in original] == sorted({msg["seq"] for msg in original})

        told = []
        for client in (a, b):
            while True:
                try:
                    event = await client.next_event(timeout=0.5)
                except TimeoutError:
                    break
                if isinstance(event, m.SessionForked):
                    told.append(event)
        assert [(e.session_id, e.fork_id, e.after_seq) for e in told] == [(sid, fork.id, shared)]
    assert quiet_but_forked(laptop) and quiet_but_forked(desktop)


def quiet_but_forked(daemon: DaemonProcess) -> bool:
    """No error in the sync log but the divergence the fork answered."""
    bad = [line for line in daemon.log().splitlines()
           if ("could not be forked" in line or "Traceback" in line or "never published" in line)]
    assert not bad, bad
    return True


async def _collect(events: SessionEvents, into: list) -> None:
    async for item in events.events():
        into.append(item)


async def test_a_client_told_of_the_fork_reattaches_and_gets_the_kept_events_at_the_seqs_it_had_seen(
        nats_server: NatsServer, laptop: DaemonProcess, desktop: DaemonProcess):
    async with laptop.client("laptop") as a, desktop.client("desktop") as b:
        sid, shared = await _shared_session(a, b)
        seen: dict[str, list] = {"laptop": [], "desktop": []}
        readers = []
        for name, client in (("laptop", a), ("desktop", b)):
            events = SessionEvents(client)
            await events.attach(sid, since_seq=shared)
            readers.append(asyncio.create_task(_collect(events, seen[name])))
        await _write_apart(nats_server, a, b, sid)
        await wait_for(lambda: _fork_of(a, sid), what="a fork on the laptop")
        await wait_for(lambda: _fork_of(b, sid), what="the fork on the desktop")
        await wait_for(lambda: converged(a, b, sid), what="the original converged")
        final, messages = await history(a, sid)

        async def told() -> str | None:
            return next((name for name, items in seen.items() if any(isinstance(i, m.SessionForked) for i in items)
                         and _delivered_seqs_after_fork(items)[-1:] == [final.last_seq]), None)

        loser = await wait_for(told, what="the forked side's client reattached and caught up")
        for reader in readers:
            reader.cancel()
    assert _delivered_seqs_after_fork(seen[loser]) == list(range(shared + 1, final.last_seq + 1))
    kept_reply = next(msg["id"] for msg in messages if msg["role"] == "assistant")
    completed = [i.message.id for i in seen[loser] if isinstance(i, m.MessageCompleted)]
    assert completed[-1] == kept_reply


def _delivered_seqs_after_fork(items: list) -> list[int]:
    """The stored events' seqs a client was given after its ``session/forked``."""
    at = next(n for n, i in enumerate(items) if isinstance(i, m.SessionForked))
    return [i.seq for i in items[at + 1:] if hasattr(i, "seq") and not isinstance(i, (m.Progress, m.SessionForked))]
