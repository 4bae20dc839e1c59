"""Figure 2: per-turn overhead of the daemon over calling the provider SDK directly.

Both sides talk to the same provider emulator (in this process) and get the same
scripted reply: ``CHUNKS`` words, ``CHUNK_DELAY_S`` apart. Each daemon turn runs in a
fresh session (so its request carries one user message, like the direct call).

- Ours: from the client's ``session/send`` to the first ``message/delta`` of the
  reply (time to first token) and to its ``message/completed`` (total), as the
  async client receives them.
- Floor: the SDK called directly with the same request (the daemon's own encoding of
  the same one-message history, tools included): ``AsyncAnthropic.messages.stream``
  and ``google-genai``'s ``aio.models.generate_content_stream``, from the call to the
  first text and to the end of the stream.

Reported as p50/p99 for both and the difference of medians in ms (target < 2 ms).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from duologue.daemon.emulator import Emulator, Reply
from duologue.daemon.providers import anthropic as anthropic_adapter
from duologue.daemon.providers import gemini as gemini_adapter
from duologue.daemon import task_tool
from duologue.daemon.providers.base import TurnRequest
from duologue.protocol import methods as m
from duologue.protocol.entities import Message, TextBlock

from .fixtures import Daemon, temp_home
from .harness import Row, latency_row, ms, now_ns, p50, p99, progress

CHUNKS = 12
CHUNK_DELAY_S = 0.01
PROMPT = "Explain the borrow checker in one paragraph."
MODELS = {"anthropic": ("sonnet", "claude-sonnet-5-5"), "gemini": ("flash", "gemini-3.8-flash")}
MAX_TOKENS = 8192  # what the daemon asks for (turns.MAX_OUTPUT_TOKENS caps the catalog's limit)


def _reply() -> Reply:
    return Reply(chunks=[f"word{i} " for i in range(CHUNKS)], chunk_delay=CHUNK_DELAY_S)


def _request(model_id: str) -> TurnRequest:
    from datetime import datetime, timezone

    prompt = Message(id="p", session_id="s", seq=1, role="user", content=[TextBlock(text=PROMPT)],
                     created_at=datetime.now(timezone.utc))
    return TurnRequest(model=model_id, system=None, messages=[prompt], tools=[task_tool.SPEC],
                       max_tokens=MAX_TOKENS)


# --- ours ------------------------------------------------------------------------------


WARMUP = 2
"""Turns or calls not counted: the provider client is built and connected on first use."""

Timed = tuple[int, int | None, int]
"""One streamed reply: when it was asked for, its first text and its end (ns)."""


async def _timed(label: str, n: int, one: Callable[[], Awaitable[Timed]]) -> tuple[list[float], list[float]]:
    """Time to first text and total of ``n`` replies, after the warm-ups."""
    ttft: list[float] = []
    total: list[float] = []
    for i in range(n + WARMUP):
        t0, first, end = await one()
        if i >= WARMUP:
            assert first is not None
            ttft.append(ms(first - t0))
            total.append(ms(end - t0))
        if (i + 1) % max(1, (n + WARMUP) // 4) == 0:
            progress(f"{label}: {i + 1}/{n + WARMUP}")
    return ttft, total


async def _daemon_turns(d: Daemon, emu: Emulator, provider: str, n: int) -> tuple[list[float], list[float]]:
    short, _ = MODELS[provider]
    async with d.client("bench-turns") as c:

        async def one() -> Timed:
            s = await c.create_session(model=short)
            await c.attach(s.id, since_seq=s.last_seq)
            emu.script(provider, _reply())
            first = done = None
            t0 = now_ns()
            sent = await c.send(s.id, PROMPT)
            while done is None:
                event = await c.next_event(30)
                t = now_ns()
                if isinstance(event, m.MessageDelta) and first is None:
                    first = t
                elif (isinstance(event, m.MessageCompleted) and event.message.role == "assistant"
                      and event.message.turn_id == sent.turn_id):
                    done = t
            await c.detach(s.id)
            while True:  # drain the progress end that may follow
                try:
                    await c.next_event(0.05)
                except asyncio.TimeoutError:
                    break
            return t0, first, done

        return await _timed(f"ours ({provider}) turns", n, one)


# --- the SDKs directly -----------------------------------------------------------------


async def _anthropic_direct(url: str, emu: Emulator, n: int) -> tuple[list[float], list[float]]:
    import anthropic

    client = anthropic.AsyncAnthropic(api_key=emu.api_keys["anthropic"], base_url=url, max_retries=0, timeout=10)
    params = anthropic_adapter.build_params(_request(MODELS["anthropic"][1]))

    async def one() -> Timed:
        emu.script("anthropic", _reply())
        first = None
        t0 = now_ns()
        async with client.messages.stream(**params) as stream:
            async for event in stream:
                if event.type == "text" and event.text and first is None:
                    first = now_ns()
        return t0, first, now_ns()

    try:
        return await _timed("SDK direct (anthropic) calls", n, one)
    finally:
        await client.close()


async def _gemini_direct(url: str, emu: Emulator, n: int) -> tuple[list[float], list[float]]:
    from google import genai
    from google.genai import types

    client = genai.Client(api_key=emu.api_keys["gemini"], vertexai=False,
                          http_options=types.HttpOptions(base_url=url, api_version="v1beta", timeout=10_000))
    req = _request(MODELS["gemini"][1])
    contents, config = gemini_adapter.build_contents(req), gemini_adapter.build_config(req)

    async def one() -> Timed:
        emu.script("gemini", _reply())
        first = None
        t0 = now_ns()
        chunks = await client.aio.models.generate_content_stream(
            model=req.model, contents=contents, config=config)  # type: ignore[arg-type]
        async for chunk in chunks:
            if first is None and chunk.text:
                first = now_ns()
        return t0, first, now_ns()

    try:
        return await _timed("SDK direct (gemini) calls", n, one)
    finally:
        await client.aio.aclose()


def run(quick: bool) -> list[Row]:
    n = 4 if quick else 60
    rows: list[Row] = []
    progress(f"{n} turns per provider and side; reply: {CHUNKS} chunks {CHUNK_DELAY_S * 1000:.0f} ms apart")
    with Emulator() as emu, temp_home() as home:
        with Daemon(home / "home", emulator=emu) as d:
            ours = {p: asyncio.run(_daemon_turns(d, emu, p, n)) for p in MODELS}
        direct = {"anthropic": asyncio.run(_anthropic_direct(emu.url, emu, n)),
                  "gemini": asyncio.run(_gemini_direct(emu.url, emu, n))}
    sdk_name = {"anthropic": "AsyncAnthropic stream, direct", "gemini": "google-genai aio stream, direct"}
    for provider in MODELS:
        (o_ttft, o_total), (f_ttft, f_total) = ours[provider], direct[provider]
        for what, o, f in (("time to first token", o_ttft, f_ttft), ("total", o_total, f_total)):
            diff50, diff99 = p50(o) - p50(f), p99(o) - p99(f)
            rows.append(latency_row(
                f"turn {what}, {provider} ({MODELS[provider][0]})", o, sdk_name[provider], f,
                target="overhead < 2 ms at p50", met=diff50 < 2.0,
                note=f"overhead {diff50:+.2f} ms at p50, {diff99:+.2f} ms at p99"))
    return rows
