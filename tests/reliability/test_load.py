"""Load: twenty clients at once on shared sessions, and many session creations.

The emulator runs in its own process and the daemon is configured as a user's
would be, so the figures measure the daemon and its real provider path. Every
client attaches to every shared session from seq 0 and behaves like a user: it
sends a message and waits for the answer, reads the session, updates tasks, lists
sessions, asks for the status. At the end every client must hold the very same
event sequence for each session (the one total order), equal to what the store
replays, and every request must have been answered (a result or an error) within
its timeout.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from reliability_support import EmulatorAddress, configured_daemon, emulator_process

from duologue.clients.rpc.client import AsyncClient
from duologue.protocol import methods as m
from duologue.protocol.errors import RpcError

REQUEST_TIMEOUT_S = 30.0


@pytest.fixture(scope="module")
def child_emulator() -> Iterator[EmulatorAddress]:
    with emulator_process() as address:
        yield address


class Tally:
    def __init__(self) -> None:
        self.sent = 0
        self.results = 0
        self.errors: dict[int, int] = defaultdict(int)
        self.latencies: list[float] = []
        self.turns = 0

    async def call(self, coro: Any) -> Any:
        self.sent += 1
        t0 = time.perf_counter()
        try:
            result = await coro
        except RpcError as exc:
            self.errors[exc.code] += 1
            return None
        finally:
            self.latencies.append(time.perf_counter() - t0)
        self.results += 1
        return result

    @property
    def answered(self) -> int:
        return self.results + sum(self.errors.values())


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2) if ordered else 0.0


class User:
    """One client and everything it saw."""

    def __init__(self, client: AsyncClient, sessions: list[str], rng: random.Random):
        self.c = client
        self.sessions = sessions
        self.rng = rng
        self.seen: dict[str, list[Any]] = {sid: [] for sid in sessions}
        self.ended: dict[str, asyncio.Future[None]] = {}
        self.tally = Tally()

    def _ended(self, turn_id: str) -> asyncio.Future[None]:
        return self.ended.setdefault(turn_id, asyncio.get_running_loop().create_future())

    async def read(self) -> None:
        async for event in self.c.events():
            if isinstance(event, m.Progress):
                if event.kind == "end" and not self._ended(event.turn_id).done():
                    self._ended(event.turn_id).set_result(None)
            elif getattr(event, "session_id", None) in self.seen:
                self.seen[event.session_id].append(event)

    async def work(self, deadline: float, n: int) -> None:
        t = self.tally
        k = 0
        while time.monotonic() < deadline:
            sid = self.rng.choice(self.sessions)
            r = self.rng.random()
            if r < 0.5:
                k += 1
                sent = await t.call(self.c.send(sid, f"user {n} message {k}"))
                if sent is not None:
                    await asyncio.wait_for(self._ended(sent.turn_id), REQUEST_TIMEOUT_S)
                    t.turns += 1
            elif r < 0.7:
                await t.call(self.c.get_session(sid, since_seq=0, limit=20))
            elif r < 0.8:
                await t.call(self.c.update_tasks(sid, [m.TaskInput(content=f"task of user {n}", status="in_progress")]))
            elif r < 0.9:
                await t.call(self.c.list_sessions(limit=20))
            else:
                await t.call(self.c.status())


async def test_twenty_clients_on_shared_sessions_see_one_order_and_every_request_is_answered(
        home: Path, child_emulator: EmulatorAddress, sizes, figures):
    d = configured_daemon(home, child_emulator).start()
    rng = random.Random(1)
    try:
        async with d.client("setup") as setup:
            sessions = [(await setup.create_session(title=f"shared {i}", model=("haiku", "lite")[i % 2])).id
                        for i in range(sizes.load_sessions)]
        clients = [AsyncClient(d.paths, autostart=False, client_name=f"load-{i}", timeout=REQUEST_TIMEOUT_S)
                   for i in range(sizes.load_clients)]
        for c in clients:
            await c.connect()
        users = [User(c, sessions, random.Random(rng.random())) for c in clients]
        for u in users:
            for sid in sessions:
                await u.c.attach(sid, since_seq=0)
        readers = [asyncio.create_task(u.read()) for u in users]
        started = time.monotonic()
        deadline = started + sizes.load_seconds
        await asyncio.gather(*(u.work(deadline, i) for i, u in enumerate(users)))
        elapsed = time.monotonic() - started

        async with d.client("check") as check:
            last = {sid: (await check.get_session(sid, limit=1)).session.last_seq for sid in sessions}

            def caught_up() -> bool:
                return all(u.seen[sid] and u.seen[sid][-1].seq == last[sid] for u in users for sid in sessions)

            for _ in range(1000):
                if caught_up():
                    break
                await asyncio.sleep(0.01)
            assert caught_up(), "some client did not receive every event"
            events = 0
            for sid in sessions:
                reference = users[0].seen[sid]
                assert [e.seq for e in reference] == list(range(1, last[sid] + 1)), f"{sid}: gap or reorder"
                for u in users[1:]:
                    assert u.seen[sid] == reference, f"{sid}: {u.c.client_name} saw another order"
                attached = await check.attach(sid, since_seq=0)
                replay = [await check.next_event(10) for _ in range(attached.replayed)]
                await check.detach(sid)
                assert replay == reference, f"{sid}: what clients saw differs from the store"
                events += len(reference)
        for r in readers:
            r.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        for c in clients:
            await c.close()

        sent = sum(u.tally.sent for u in users)
        answered = sum(u.tally.answered for u in users)
        assert answered == sent, f"{sent - answered} requests were never answered"
        errors: dict[int, int] = defaultdict(int)
        for u in users:
            for code, n in u.tally.errors.items():
                errors[code] += n
        assert not errors, f"unexpected errors under load: {dict(errors)}"
        latencies = [x for u in users for x in u.tally.latencies]
        turns = sum(u.tally.turns for u in users)
        figures["load"] = {
            "clients": len(users), "shared_sessions": len(sessions), "seconds": round(elapsed, 1),
            "requests": sent, "answered": answered, "errors": dict(errors), "turns": turns,
            "turns_per_s": round(turns / elapsed, 1), "events_per_session_total": events,
            "events_delivered": events * len(users),
            "request_p50_ms": _pct(latencies, 0.5), "request_p99_ms": _pct(latencies, 0.99),
            "order_identical_across_clients": True,
        }
    finally:
        d.stop()


async def test_session_creation_succeeds_every_time(home: Path, child_emulator: EmulatorAddress, sizes, figures):
    d = configured_daemon(home, child_emulator).start()
    try:
        clients = [AsyncClient(d.paths, autostart=False, client_name=f"create-{i}", timeout=REQUEST_TIMEOUT_S)
                   for i in range(sizes.load_clients)]
        for c in clients:
            await c.connect()
        per_client = -(-sizes.load_creates // len(clients))
        created: list[str] = []
        failures: list[str] = []

        async def make(c: AsyncClient, i: int) -> None:
            for k in range(per_client):
                try:
                    s = await c.create_session(title=f"c{i}-{k}", project_id=f"/p/{k % 7}")
                    created.append(s.id)
                except Exception as exc:  # every failure is counted, none may happen
                    failures.append(repr(exc))

        t0 = time.monotonic()
        await asyncio.gather(*(make(c, i) for i, c in enumerate(clients)))
        elapsed = time.monotonic() - t0
        for c in clients:
            await c.close()
        assert not failures, f"{len(failures)} creations failed, e.g. {failures[:3]}"
        assert len(created) == len(set(created)) == per_client * len(clients)
        async with d.client("check") as check:
            status = await check.status()
            assert status.sessions == len(created)
            listed: set[str] = set()
            cursor = None
            while True:
                page = await check.list_sessions(limit=10_000, before=cursor)
                listed.update(s.id for s in page.sessions)
                if page.next_cursor is None:
                    break
                cursor = page.next_cursor
            assert listed == set(created)
        figures["session_create"] = {
            "attempted": len(created) + len(failures), "succeeded": len(created),
            "success_rate": len(created) / (len(created) + len(failures)),
            "clients": len(clients), "seconds": round(elapsed, 1),
            "per_s": round(len(created) / elapsed),
        }
    finally:
        d.stop()
