"""``daemon/status`` while a turn on a 10,000-message session builds its request.

google-genai converts a request into pydantic models and back inside its coroutine
(seconds at 10,000 messages), and the anthropic SDK deep-copies and encodes it; the
daemon runs the SDKs on a provider loop of their own thread (``providers/offloop``)
so that this does not stop everything else. Method: the turn overhead benchmark's
seeded sessions (10,000 messages, replies by the model answering); one client sends
a turn, a second times ``daemon/status`` round trips until the turn's reply has
completed. Floor: the same round trips with no turn running, interleaved (before
and after each turn). Target: the longest call under 100 ms (on the daemon's loop
the SDK's work held a call for as long as it took: seconds for google-genai; a p99
hides that, as the calls it holds are few); the note gives it.
"""

from __future__ import annotations

import asyncio

from duologue.daemon.emulator import Emulator
from duologue.protocol import methods as m

from .fixtures import Daemon, temp_home
from .harness import Row, latency_row, now_ns, progress, time_async_calls
from .turn_overhead import MODELS, PROMPT, TIMEOUT_S, _reply, _seed

LENGTH = 10_000
TARGET_MAX_MS = 100.0


async def _during(d: Daemon, emu: Emulator, provider: str, sid: str, turns: int) -> tuple[list[float], list[float]]:
    ours: list[float] = []
    floor: list[float] = []
    async with d.client("bench-turns", timeout=TIMEOUT_S) as c, d.client("bench-status") as other:
        await c.attach(sid)
        for turn in range(turns + 1):
            floor += await time_async_calls(other.status, 50)
            emu.script(provider, _reply())
            sent = await c.send(sid, PROMPT)
            samples: list[float] = []
            done = asyncio.Event()

            async def wait_reply(turn_id: str = sent.turn_id) -> None:
                while True:
                    event = await c.next_event(TIMEOUT_S)
                    if isinstance(event, m.MessageCompleted) and event.message.turn_id == turn_id \
                            and event.message.role == "assistant":
                        done.set()
                        return

            waiter = asyncio.create_task(wait_reply())
            while not done.is_set():
                t0 = now_ns()
                await other.status()
                samples.append((now_ns() - t0) / 1e6)
            await waiter
            if turn:  # the first turn reads the session into the history cache
                ours += samples
            progress(f"{provider}: turn {turn + 1}/{turns + 1}, {len(samples)} status calls meanwhile")
    return ours, floor


def run(quick: bool) -> list[Row]:
    turns = 1 if quick else 3
    rows: list[Row] = []
    with Emulator() as emu, temp_home() as home:
        seeded = _seed(home / "home", [LENGTH])
        with Daemon(home / "home", emulator=emu, timeout_s=TIMEOUT_S) as d:
            for provider in MODELS:
                ours, floor = asyncio.run(_during(d, emu, provider, seeded[(provider, LENGTH)], turns))
                rows.append(latency_row(
                    f"daemon/status during a {provider} turn on a {LENGTH:,}-message session", ours,
                    "daemon/status, no turn running", floor, target=f"longest < {TARGET_MAX_MS:g} ms",
                    met=max(ours) < TARGET_MAX_MS,
                    note=f"longest call {max(ours):.1f} ms (no turn running: {max(floor):.1f} ms); {turns} turns "
                         "after a first (not counted) that loads the session; status calls from the moment the "
                         "turn is sent until its reply completed"))
    return rows
