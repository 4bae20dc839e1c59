"""``daemon/status`` while a turn on a 10,000-message session builds its request.

google-genai converts a request into pydantic models and back inside its coroutine
(seconds at 10,000 messages), and the anthropic SDK deep-copies and encodes it; the
daemon runs the SDKs on a provider loop of their own thread (``providers/offloop``)
so that this does not stop everything else. Method: the turn overhead benchmark's
seeded sessions (10,000 messages, replies by the model answering); one client sends
a turn while a process of its own (``status_probe``) times ``daemon/status`` round
trips back to back: the emulator serving the turn lives in this process, and its
parse of a request of megabytes would otherwise stall the timing client too. Ours:
the calls that began between the turn's send and its reply's completion. Floor: the
calls of the same probe in a quiet spell before each turn, no turn running. Target:
the longest call under 100 ms (on the daemon's loop the SDK's work held a call for
as long as it took: seconds for google-genai; a p99 hides that, as the calls it
holds are few); the note gives it.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from duologue.daemon.emulator import Emulator
from duologue.protocol import methods as m

from .fixtures import Daemon, temp_home
from .harness import Row, latency_row, ms, now_ns, progress
from .turn_overhead import MODELS, PROMPT, TIMEOUT_S, _reply, _seed

LENGTH = 10_000
TARGET_MAX_MS = 100.0
QUIET_S = 0.3
"""The spell before each turn whose calls are the floor."""

Window = tuple[int, int]


async def _turns(d: Daemon, emu: Emulator, provider: str, sid: str, turns: int) -> tuple[list[Window], list[Window]]:
    """Each turn's window (send to completion) and the quiet spell before it."""
    busy: list[Window] = []
    quiet: list[Window] = []
    async with d.client("bench-turns", timeout=TIMEOUT_S) as c:
        await c.attach(sid)
        for turn in range(turns + 1):
            t0 = now_ns()
            await asyncio.sleep(QUIET_S)
            quiet.append((t0, now_ns()))
            emu.script(provider, _reply())
            start = now_ns()
            sent = await c.send(sid, PROMPT)
            while True:
                event = await c.next_event(TIMEOUT_S)
                if isinstance(event, m.MessageCompleted) and event.message.turn_id == sent.turn_id \
                        and event.message.role == "assistant":
                    break
            if turn:  # the first turn reads the session into the history cache
                busy.append((start, now_ns()))
            progress(f"{provider}: turn {turn + 1}/{turns + 1}")
    return busy, quiet


def _within(calls: list[Window], windows: list[Window]) -> list[float]:
    return [ms(end - start) for start, end in calls if any(lo <= start <= hi for lo, hi in windows)]


def _probed(d: Daemon, emu: Emulator, provider: str, sid: str, turns: int) -> tuple[list[float], list[float]]:
    probe = subprocess.Popen([sys.executable, "-m", "bench.status_probe"], env=d.env,
                             cwd=Path(__file__).resolve().parent.parent, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    assert probe.stdin is not None and probe.stdout is not None
    try:
        if probe.stdout.readline().strip() != "ready":
            raise RuntimeError("the status probe did not start")
        busy, quiet = asyncio.run(_turns(d, emu, provider, sid, turns))
        out, _ = probe.communicate("stop\n", timeout=60)
    finally:
        if probe.poll() is None:
            probe.kill()
            probe.wait()
    calls = [(int(a), int(b)) for a, b in (line.split() for line in out.splitlines())]
    return _within(calls, busy), _within(calls, quiet)


def run(quick: bool) -> list[Row]:
    turns = 1 if quick else 3
    rows: list[Row] = []
    with Emulator() as emu, temp_home() as home:
        seeded = _seed(home / "home", [LENGTH])
        with Daemon(home / "home", emulator=emu, timeout_s=TIMEOUT_S) as d:
            for provider in MODELS:
                ours, floor = _probed(d, emu, provider, seeded[(provider, LENGTH)], turns)
                progress(f"{provider}: {len(ours)} status calls during the turns, {len(floor)} in quiet spells")
                rows.append(latency_row(
                    f"daemon/status during a {provider} turn on a {LENGTH:,}-message session", ours,
                    "daemon/status, no turn running", floor, target=f"longest < {TARGET_MAX_MS:g} ms",
                    met=max(ours) < TARGET_MAX_MS,
                    note=f"longest call {max(ours):.1f} ms (no turn running: {max(floor):.1f} ms); {turns} turns "
                         "after a first (not counted) that loads the session; status calls from a process of "
                         "their own (the emulator's work stays out of them), from the moment the turn is sent "
                         "until its reply completed"))
    return rows
