"""``daemon/status`` with 900 quiet followers attached.

Method. Two daemons, each with ``SESSIONS`` sessions. On one, ``FOLLOWERS`` plain
pyzmq DEALERs (one connection each) are attached, each to ``PER_FOLLOWER`` sessions,
and stay quiet; the other has none. The async client times ``daemon/status`` on
each, one call of each in turn (floor interleaved), so the ratio is what the
followers cost a status call. Target: under 2 ms at p50 (it was 24 ms when status
walked every peer's sessions).
"""

from __future__ import annotations

import asyncio
import json

import zmq

from duologue.protocol.jsonrpc import encode_request

from .fixtures import Daemon, temp_home
from .harness import Row, latency_row, now_ns, p50, progress

SESSIONS = 300
FOLLOWERS = 900
PER_FOLLOWER = 3
TARGET_MS = 2.0


async def _sessions(d: Daemon, n: int) -> list[str]:
    async with d.client("bench-setup") as c:
        return [(await c.create_session(model="sonnet", title=f"followed {i}")).id for i in range(n)]


def _follow(ctx: zmq.Context, endpoint: str, sids: list[str]) -> list[zmq.Socket]:
    """``FOLLOWERS`` DEALERs, each attached to ``PER_FOLLOWER`` of ``sids``."""
    socks = []
    for i in range(FOLLOWERS):
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.connect(endpoint)
        for k in range(PER_FOLLOWER):
            s.send(encode_request(k + 1, "session/attach", {"session_id": sids[(i * PER_FOLLOWER + k) % len(sids)]}))
        for _ in range(PER_FOLLOWER):
            while "result" not in (reply := json.loads(s.recv())):
                if "error" in reply:
                    raise RuntimeError(f"attach failed: {reply}")
        socks.append(s)
        if (i + 1) % 300 == 0:
            progress(f"{i + 1}/{FOLLOWERS} followers attached")
    return socks


async def _pairs(followed: Daemon, bare: Daemon, n: int) -> tuple[list[float], list[float]]:
    ours: list[float] = []
    floor: list[float] = []
    async with followed.client("bench-status") as a, bare.client("bench-status") as b:
        for i in range(n + 50):
            t0 = now_ns()
            await a.status()
            t1 = now_ns()
            await b.status()
            t2 = now_ns()
            if i >= 50:
                ours.append((t1 - t0) / 1e6)
                floor.append((t2 - t1) / 1e6)
        clients = (await a.status()).clients
    progress(f"the followed daemon counts {clients} clients")
    return ours, floor


def run(quick: bool) -> list[Row]:
    n = 200 if quick else 2_000
    ctx = zmq.Context()
    with temp_home() as home, Daemon(home / "followed") as followed, Daemon(home / "bare") as bare:
        sids = asyncio.run(_sessions(followed, SESSIONS))
        asyncio.run(_sessions(bare, SESSIONS))
        socks = _follow(ctx, followed.paths.endpoint, sids)
        try:
            ours, floor = asyncio.run(_pairs(followed, bare, n))
        finally:
            for s in socks:
                s.close(0)
            ctx.term()
    return [latency_row(f"daemon/status with {FOLLOWERS} quiet followers ({FOLLOWERS * PER_FOLLOWER:,} attachments)",
                        ours, "daemon/status of a daemon with no followers (same sessions), interleaved", floor,
                        target=f"p50 < {TARGET_MS:g} ms", met=p50(ours) < TARGET_MS,
                        note=f"{SESSIONS} sessions in each daemon; each follower a DEALER attached to "
                             f"{PER_FOLLOWER} of them, quiet")]
