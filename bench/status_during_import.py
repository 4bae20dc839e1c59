"""``daemon/status`` while another client imports thousands of sessions.

One client sends one ``import/run`` of many small sessions (one transaction each);
a second client times ``daemon/status`` round trips until the import is answered.
Floor: the same round trips with no import running, interleaved in the same run
(before and after the import). Target: p99 under 50 ms, i.e. an import never holds
other clients up for more than a slice of its work (before: 8 s for 4,000 sessions).
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

from duologue.protocol import methods as m
from duologue.protocol.entities import TextBlock

from .fixtures import Daemon, temp_home
from .harness import Row, latency_row, now_ns, p99, progress, time_async_calls


def _sessions(n: int, tag: str) -> list[m.ImportSession]:
    t0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
    return [m.ImportSession(external_id=f"{tag}-{i}", sources=["claude-code"], title=f"imported {i}", created_at=t0,
                            messages=[m.ImportMessage(external_id=f"{tag}-{i}:0", role="user",
                                                      content=[TextBlock(text=f"message {i}")], created_at=t0)])
            for i in range(n)]


async def _during(d: Daemon, n: int, tag: str) -> list[float]:
    async with d.client("bench-importer") as importer, d.client("bench-status") as other:
        await other.status()
        job = asyncio.create_task(importer.import_sessions(_sessions(n, tag)))
        await asyncio.sleep(0.05)  # the import is being written
        samples = []
        while not job.done():
            t0 = now_ns()
            await other.status()
            samples.append((now_ns() - t0) / 1e6)
        result = await job
        progress(f"{result.created_sessions} sessions imported; {len(samples)} status calls meanwhile")
        return samples


async def _measure(d: Daemon, n: int, rounds: int) -> tuple[list[float], list[float]]:
    ours: list[float] = []
    floor: list[float] = []
    async with d.client("bench-floor") as c:
        floor += await time_async_calls(c.status, 200, warmup=20, label="floor: status, no import")
    for r in range(rounds):
        ours += await _during(d, n, f"round{r}")
        async with d.client("bench-floor") as c:
            floor += await time_async_calls(c.status, 200, label="floor: status, no import")
    return ours, floor


def run(quick: bool) -> list[Row]:
    n, rounds = (500, 1) if quick else (4000, 3)
    with temp_home() as home, Daemon(home / "home", builtin_emulator=True) as d:
        ours, floor = asyncio.run(_measure(d, n, rounds))
    return [latency_row(f"daemon/status while another client imports {n:,} sessions", ours,
                        "daemon/status, no import running", floor, target="p99 < 50 ms",
                        met=p99(ours) < 50.0,
                        note="the import writes one transaction per session and lets others in every 5 ms")]
