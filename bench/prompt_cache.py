"""Figure 9: what prompt caching saves on a long session, billed as the real API bills.

A 50-turn session through the real daemon on sonnet (claude-sonnet-5-5), every
reply scripted with its own text, against the provider emulator, whose prompt cache
charges what Anthropic's does (``cache_control`` breakpoints, byte-exact prefixes
per model, 20-block lookback, 512-token minimum on 5.x, 5-minute / 1-hour TTLs).
For every provider request the emulator records the input side of its bill.

- Billed input with caching: full-rate input tokens + cache writes at 1.25x (5 min)
  or 2x (1 h) + cache reads at 0.1x (Anthropic's multipliers), summed over the
  session. Without caching: every request's whole prompt at the full rate. Target:
  with caching at most 25% of without.
- Switch away and back: after the 50 turns, one turn on flash (Gemini), then one on
  sonnet again, well within the 5-minute TTL: the share of the returning request's
  prompt read from the Claude cache. Target: a hit (more than 0%).

Both figures depend on the daemon placing ``cache_control`` breakpoints and keeping
its prefixes byte-stable; without that they report 100% and 0% honestly.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

from duologue.daemon.emulator import Emulator, Reply

from .fixtures import Daemon, temp_home, wait_turn
from .harness import Row, progress, value_row

WRITE_5M, WRITE_1H, READ = 1.25, 2.0, 0.1
WORDS = ("cache prefix breakpoint session history switch model token window billing stream retry "
         "signature thinking budget context summary").split()


def _sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def weighted(billed: dict[str, int]) -> float:
    """One request's input cost in full-rate token equivalents."""
    return (billed.get("input_tokens", 0) + WRITE_5M * billed.get("cache_write_5m_tokens", 0)
            + WRITE_1H * billed.get("cache_write_1h_tokens", 0) + READ * billed.get("cache_read_tokens", 0))


async def _turn(c: Any, emu: Emulator, sid: str, provider: str, prompt: str, reply: str) -> list[dict[str, int]]:
    emu.script(provider, Reply(text=reply, thinking=""))
    before = len(emu.received)
    sent = await c.send(sid, prompt)
    await wait_turn(c, sent.turn_id)
    return [r.billed for r in emu.received[before:] if r.provider == provider and r.billed]


async def _session(d: Daemon, emu: Emulator, turns: int) -> tuple[list[dict[str, int]], dict[str, int] | None]:
    rng = random.Random(909)
    bills: list[dict[str, int]] = []
    async with d.client("bench-cache") as c:
        s = await c.create_session(model="sonnet")
        await c.attach(s.id, since_seq=s.last_seq)
        for t in range(turns):
            prompt = f"T{t} question: {_sentence(rng, 40)}?"
            reply = f"T{t} answer: {_sentence(rng, 80)}."
            bills += await _turn(c, emu, s.id, "anthropic", prompt, reply)
            if (t + 1) % 10 == 0:
                progress(f"{t + 1}/{turns} turns on sonnet")
        await c.switch_model(s.id, "flash")
        await _turn(c, emu, s.id, "gemini", "One question for flash: what did we settle?", "Flash answers.")
        await c.switch_model(s.id, "sonnet")
        back = await _turn(c, emu, s.id, "anthropic", "Back on sonnet: carry on.", "Sonnet carries on.")
    return bills, (back[0] if back else None)


def run(quick: bool) -> list[Row]:
    turns = 8 if quick else 50
    with Emulator() as emu, temp_home() as home, Daemon(home / "home", emulator=emu) as d:
        bills, back = asyncio.run(_session(d, emu, turns))
    uncached = sum(b["prompt_tokens"] for b in bills)
    cached = sum(weighted(b) for b in bills)
    reads = sum(b["cache_read_tokens"] for b in bills)
    writes = sum(b["cache_write_5m_tokens"] + b["cache_write_1h_tokens"] for b in bills)
    share = 100.0 * cached / uncached if uncached else float("nan")
    back_share = 100.0 * back["cache_read_tokens"] / back["prompt_tokens"] if back and back["prompt_tokens"] else 0.0
    return [
        value_row(f"billed input tokens over a {turns}-turn sonnet session, with caching vs without", share, "%",
                  "the same prompts, no caching", 100.0, target="<= 25%", met=share <= 25.0, n=len(bills),
                  note=f"{uncached:,} prompt tokens in {len(bills)} requests; {reads:,} read from the cache (0.1x), "
                       f"{writes:,} written (1.25x / 2x); emulator tokens are ~4 characters each"
                       + ("; quick mode: too few turns for the 50-turn target" if quick else "")),
        value_row("claude -> gemini -> claude within the TTL: prompt read from the Claude cache on return",
                  back_share, "%", target="> 0% (a hit)", met=back_share > 0,
                  note="one flash turn between the sonnet turns; the share is cache_read_input_tokens over the "
                       "returning request's whole prompt" if back else "the returning request was not answered"),
    ]
