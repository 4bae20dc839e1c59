"""Figure 3: model-switch latency through the protocol.

``session/switch_model`` round trips from the async client, alternating two models
of different providers (sonnet, flash) in one session, so every call really
switches: one synced store commit of the switch record and its event, then the
reply. Floor: the ``daemon/status`` round trip on the same connection (the
protocol's cost without any write). Target: p99 under 5 ms.
"""

from __future__ import annotations

import asyncio
import itertools

from .fixtures import Daemon, temp_home
from .harness import Row, latency_row, p99, progress, time_async_calls


async def _measure(d: Daemon, n: int, warmup: int) -> tuple[list[float], list[float]]:
    async with d.client("bench-switch") as c:
        s = await c.create_session(model="sonnet")
        models = itertools.cycle(["flash", "sonnet"])

        async def switch() -> None:
            result = await c.switch_model(s.id, next(models))
            assert result.switch is not None

        switches = await time_async_calls(switch, n, warmup=warmup, label="ours: switch_model")
        status = await time_async_calls(c.status, n, warmup=warmup, label="floor: daemon/status")
        got = await c.get_session(s.id)
        progress(f"{len(got.switches)} switches recorded")
    return switches, status


def run(quick: bool) -> list[Row]:
    n, warmup = (50, 5) if quick else (1500, 50)
    with temp_home() as home, Daemon(home / "home", builtin_emulator=True) as d:
        switches, status = asyncio.run(_measure(d, n, warmup))
    return [latency_row("session/switch_model round trip (sonnet <-> flash)", switches,
                        "daemon/status round trip", status, target="p99 < 5 ms", met=p99(switches) < 5.0,
                        note="each switch is one synced LMDB commit (switch record + event) before the reply")]
