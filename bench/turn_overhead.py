"""Figure 2: per-turn overhead of the daemon over calling the provider SDK directly,
on a fresh session and on sessions with 1,000 and 10,000 messages of history.

Both sides talk to the same provider emulator (in this process) and get the same
scripted reply: ``CHUNKS`` words, ``CHUNK_DELAY_S`` apart.

- Ours: from the client's ``session/send`` to the first ``message/delta`` of the
  reply (time to first token) and to its ``message/completed`` (total), as the
  async client receives them. On a fresh session each turn runs in a new session (its
  request carries one user message); on a long one every turn goes to the same
  session, written before the daemon starts (alternating prompts and replies of a
  few hundred characters, the replies by the model answering now), which grows by
  each turn's prompt and reply.
- Floor: the SDK called directly with the same request, already encoded: the
  daemon's own from-scratch encoding of the same history (the session as stored,
  read back after each turn) plus the prompt, tools and thinking settings included,
  built before the clock starts: ``AsyncAnthropic.messages.stream`` and
  ``google-genai``'s ``aio.models.generate_content_stream``, from the call to the
  first text and to the end of the stream. So the floor pays the SDK's own
  serialization of the long history and the HTTP; ours pays that plus what the
  daemon adds. Once its SDK is imported, the floor's process freezes what it has
  loaded, as the daemon does (``daemon/heap.py``): otherwise every full collection
  in it walks the SDKs' objects (about 175 ms each) and the floor looks slow.

The two alternate call by call (a floor call, then our turn with the same history),
so a load spike on a shared machine falls on both. Reported as p50/p99 for both
and the difference of medians in ms (target < 2 ms on every row).

The store's share of the overhead, in the note: before the first delta reaches a
client the daemon has committed the prompt durably (``session/send`` answers only
then) and the first text's checkpoint (events go out after their commit), two writes
no faster than this disk syncs. After each pair of calls this process times two such
writes (``durable_append.Appender``: one message appended to a store of its own on
the same disk, synced as the prompt is, then as a checkpoint is), so the note shows
how much of the overhead they are, measured alongside.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from duologue.daemon import heap, task_tool
from duologue.daemon.catalog import Catalog
from duologue.daemon.emulator import Emulator, Reply
from duologue.daemon.hub import Hub
from duologue.daemon.ids import new_id
from duologue.daemon.providers import anthropic as anthropic_adapter
from duologue.daemon.providers import gemini as gemini_adapter
from duologue.daemon.providers.base import TurnRequest
from duologue.daemon.sessions import Sessions
from duologue.daemon.turns.outcome import output_budget
from duologue.protocol import methods as m
from duologue.protocol.entities import Message, TextBlock
from duologue.protocol.paths import locate

from .durable_append import Appender
from .fixtures import Daemon, home_env, temp_home, unsynced_store
from .harness import Row, latency_row, ms, now_ns, p50, p99, progress

CHUNKS = 12
CHUNK_DELAY_S = 0.01
PROMPT = "Explain the borrow checker in one paragraph."
MODELS = {"anthropic": ("sonnet", "claude-sonnet-5-5"), "gemini": ("flash", "gemini-3.8-flash")}
LENGTHS = {0: "fresh session", 1_000: "1,000 messages of history", 10_000: "10,000 messages of history"}
SAMPLES = {0: 60, 1_000: 30, 10_000: 10}
"""Turns per side in full mode: google-genai alone takes seconds to encode 10,000
messages (its pydantic conversion, paid by both sides), so the long rows take fewer."""
TIMEOUT_S = 120.0
"""The daemon's provider timeout: google-genai encodes the request inside the stream's
first read, which the idle guard times."""
WARMUP = 2
"""Calls not counted on each side: the provider client is built and connected on first
use, and the daemon reads a long session into its history cache on its first turn."""

Timed = tuple[int, int | None, int]
"""One streamed reply: when it was asked for, its first text and its end (ns)."""


def _reply() -> Reply:
    """No thinking: both sides' first event is then the reply's first text."""
    return Reply(chunks=[f"word{i} " for i in range(CHUNKS)], chunk_delay=CHUNK_DELAY_S, thinking="")


# --- the long sessions, written before the daemon starts -------------------------------


def _seed(home: Path, lengths: list[int]) -> dict[tuple[str, int], str]:
    """One session per provider and length, its replies written by that provider's
    model; returns their ids. Not synced while written: setup, not the figure."""
    out: dict[tuple[str, int], str] = {}
    with unsynced_store(Path(locate(home_env(home)).store_dir)) as store:
        sessions = Sessions(store, Catalog(), Hub())
        for provider, (short, model_id) in MODELS.items():
            for length in lengths:
                session = sessions.create(m.CreateParams(title=f"{length} messages", model=short))
                for start in range(0, length // 2, 100):  # a hundred turns a commit
                    draft = sessions.draft(session)
                    for turn in range(start, min(start + 100, length // 2)):
                        turn_id = new_id()
                        question = (f"Question {turn}: how do I keep a borrowed slice alive across an "
                                    "await point without cloning the whole buffer every time? ") * 2
                        answer = (f"Answer {turn}: move the data into an owned buffer before the await, "
                                  "or restructure so the borrow ends first; the checker refuses the "
                                  "original because the future may outlive the stack frame. ") * 2
                        draft.add_message(lambda seq, t=turn_id, q=question: Message(
                            id=new_id(), session_id=session.id, seq=seq, role="user",
                            content=[TextBlock(text=q)], created_at=draft.now, turn_id=t))
                        reply = draft.add_message(lambda seq, t=turn_id, a=answer: Message(
                            id=new_id(), session_id=session.id, seq=seq, role="assistant",
                            content=[TextBlock(text=a)], created_at=draft.now, model=model_id,
                            turn_id=t, stop_reason="end_turn"))
                        draft.emit(m.MessageCompleted, message=reply)
                    session = sessions.commit(draft)
                out[(provider, length)] = session.id
                progress(f"seeded a {provider} session of {length} messages")
    return out


# --- the floor: the SDKs directly ------------------------------------------------------


def _request(model_id: str, history: list[Message]) -> TurnRequest:
    """The request the daemon makes for ``history`` and the prompt (its session has no
    system prompt), prepared from scratch."""
    info = Catalog().resolve(model_id)
    prompt = Message(id=new_id(), session_id="s", seq=(history[-1].seq + 1 if history else 1), role="user",
                     content=[TextBlock(text=PROMPT)], created_at=datetime.now(timezone.utc))
    return TurnRequest(model=model_id, system=None, messages=[*history, prompt], tools=[task_tool.SPEC],
                       max_tokens=output_budget(info), info=info)


Direct = Callable[[list[Message]], Awaitable[Timed]]
"""A direct SDK call with the history given, its request encoded before the clock starts."""


@asynccontextmanager
async def _anthropic_direct(emu: Emulator) -> AsyncIterator[Direct]:
    import anthropic

    heap.settle("the floor's SDK loaded")
    client = anthropic.AsyncAnthropic(api_key=emu.api_keys["anthropic"], base_url=emu.url, max_retries=0,
                                      timeout=TIMEOUT_S)

    async def call(history: list[Message]) -> Timed:
        params = anthropic_adapter.build_params(_request(MODELS["anthropic"][1], history))
        emu.script("anthropic", _reply())
        first = None
        t0 = now_ns()
        async with client.messages.stream(**params) as stream:
            async for event in stream:
                if event.type == "text" and event.text and first is None:
                    first = now_ns()
        return t0, first, now_ns()

    try:
        yield call
    finally:
        await client.close()


@asynccontextmanager
async def _gemini_direct(emu: Emulator) -> AsyncIterator[Direct]:
    from google import genai
    from google.genai import types

    heap.settle("the floor's SDK loaded")
    client = genai.Client(api_key=emu.api_keys["gemini"], vertexai=False,
                          http_options=types.HttpOptions(base_url=emu.url, api_version="v1beta", timeout=int(TIMEOUT_S * 1000)))

    async def call(history: list[Message]) -> Timed:
        req = _request(MODELS["gemini"][1], history)
        contents, config = gemini_adapter.build_contents(req), gemini_adapter.build_config(req)
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
        yield call
    finally:
        await client.aio.aclose()


DIRECT = {"anthropic": _anthropic_direct, "gemini": _gemini_direct}


# --- ours, interleaved with the floor --------------------------------------------------


async def _turn(c: Any, emu: Emulator, provider: str, sid: str) -> Timed:  # noqa: ANN401 - AsyncClient
    emu.script(provider, _reply())
    first = done = None
    t0 = now_ns()
    sent = await c.send(sid, PROMPT)
    while done is None:
        event = await c.next_event(60)
        t = now_ns()
        if isinstance(event, m.MessageDelta) and first is None:
            first = t
        elif (isinstance(event, m.MessageCompleted) and event.message.role == "assistant"
              and event.message.turn_id == sent.turn_id):
            done = t
    while True:  # drain the progress end that may follow
        try:
            await c.next_event(0.05)
        except asyncio.TimeoutError:
            break
    return t0, first, done


Samples = dict[str, list[float]]


async def _interleaved(d: Daemon, emu: Emulator, provider: str, length: int, sid: str | None,
                       n: int, append: Appender) -> tuple[Samples, Samples]:
    """``n`` floor calls and ``n`` of our turns, alternating, after the warm-ups; each
    pair followed by the store's two writes (``ours`` keeps them, as "prompt" and
    "checkpoint")."""
    short, _ = MODELS[provider]
    ours: Samples = {"ttft": [], "total": [], "prompt": [], "checkpoint": []}
    floor: Samples = {"ttft": [], "total": []}
    label = f"{provider}, {LENGTHS[length]}"
    async with d.client("bench-turns", timeout=120) as c, DIRECT[provider](emu) as direct:
        history: list[Message] = []
        if sid is not None:
            history = (await c.whole_session(sid)).messages
            await c.attach(sid)
        for i in range(n + WARMUP):
            if length == 0:
                session = await c.create_session(model=short)
                await c.attach(session.id)
                sid, history = session.id, []
            assert sid is not None
            timed = [await direct(history), await _turn(c, emu, provider, sid)]
            if length == 0:
                await c.detach(sid)
            else:
                history += (await c.whole_session(sid, since_seq=history[-1].seq)).messages
            if i >= WARMUP:
                for key, durable in (("prompt", True), ("checkpoint", False)):
                    t0 = now_ns()
                    append(durable)
                    ours[key].append(ms(now_ns() - t0))
                for side, (t0, first, end) in zip((floor, ours), timed):
                    assert first is not None
                    side["ttft"].append(ms(first - t0))
                    side["total"].append(ms(end - t0))
            if (i + 1) % max(1, (n + WARMUP) // 4) == 0:
                progress(f"{label}: {i + 1}/{n + WARMUP} turns on each side")
    return ours, floor


def run(quick: bool) -> list[Row]:
    lengths = [0, 1_000] if quick else list(LENGTHS)
    rows: list[Row] = []
    progress(f"turns per provider and side: {', '.join(f'{4 if quick else SAMPLES[x]} at {x}' for x in lengths)} "
             f"messages of history; reply: {CHUNKS} chunks {CHUNK_DELAY_S * 1000:.0f} ms apart")
    sdk_name = {"anthropic": "AsyncAnthropic stream, direct", "gemini": "google-genai aio stream, direct"}
    with Emulator() as emu, temp_home() as home:
        seeded = _seed(home / "home", [length for length in lengths if length])
        append = Appender(home / "store-floor")
        try:
            with Daemon(home / "home", emulator=emu, timeout_s=TIMEOUT_S) as d:
                for length in lengths:
                    for provider in MODELS:
                        ours, floor = asyncio.run(_interleaved(d, emu, provider, length, seeded.get((provider, length)),
                                                               4 if quick else SAMPLES[length], append))
                        writes = p50(ours["prompt"]) + p50(ours["checkpoint"])
                        for what, key in (("time to first token", "ttft"), ("total", "total")):
                            o, f = ours[key], floor[key]
                            diff50, diff99 = p50(o) - p50(f), p99(o) - p99(f)
                            rows.append(latency_row(
                                f"turn {what}, {provider} ({MODELS[provider][0]}), {LENGTHS[length]}", o,
                                sdk_name[provider], f, target="overhead < 2 ms at p50", met=diff50 < 2.0,
                                note=f"overhead {diff50:+.2f} ms at p50, {diff99:+.2f} ms at p99; of it the store's "
                                     f"writes before the first delta, timed alongside on the same disk: the prompt's "
                                     f"durable commit {p50(ours['prompt']):.2f} ms + the first checkpoint "
                                     f"{p50(ours['checkpoint']):.2f} ms p50 = {writes:.2f} ms, so "
                                     f"{diff50 - writes:+.2f} ms beyond them"))
        finally:
            append.close()
    return rows
