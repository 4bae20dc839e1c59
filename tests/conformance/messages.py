"""Histories for the conformance tests, and the reading of what an SDK sent.

The history is built the way the daemon keeps it: an assistant message holds the
blocks of its stream events in the order they came (thinking, text, tool calls, each
with its side data), and records the model that wrote it. A test drives an adapter
for round 1, turns the events into such a message with :func:`assistant_from_events`,
adds the tool results, drives round 2, and reads the second request body.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import itertools
import json
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime
from typing import Any

import msgspec

from duologue.daemon.providers.base import (
    Finished,
    ProviderError,
    StreamEvent,
    TextDelta,
    TextSignature,
    ThinkingDelta,
    ThinkingDone,
    ToolCallEvent,
    ToolSpec,
    TurnRequest,
)
from duologue.protocol.entities import (
    ContentBlock,
    Message,
    ModelInfo,
    Pricing,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
    ToolResultBlock,
)

API_KEY = "sk-conformance-SECRET-4f9c2e71"
CLAUDE = "claude-sonnet-5-5"
GEMINI = "gemini-3.1-pro-preview"
PLACEHOLDER = "skip_thought_signature_validator"
"""Google's documented stand-in signature for a function call Gemini did not write
(Thought signatures, "FAQs")."""

INFO = {
    CLAUDE: ModelInfo(id=CLAUDE, provider="anthropic", display_name="Claude Sonnet 5.5", short_name="sonnet",
                      context_window=1_000_000, max_output_tokens=64_000,
                      pricing=Pricing(input_per_mtok=3.0, output_per_mtok=15.0), tier="balanced",
                      thinking="default", thinking_control="effort", forbids_prefill=True),
    GEMINI: ModelInfo(id=GEMINI, provider="gemini", display_name="Gemini 3.1 Pro", short_name="gem-pro",
                      context_window=1_048_576, max_output_tokens=65_536,
                      pricing=Pricing(input_per_mtok=2.0, output_per_mtok=12.0), tier="frontier",
                      thinking="always", thinking_control="level"),
}

UPDATE_TASKS = ToolSpec(
    name="update_tasks",
    description="Replace the session's task list.",
    parameters={"type": "object", "properties": {"tasks": {"type": "array", "items": {
        "type": "object", "properties": {"content": {"type": "string"}, "status": {"type": "string"},
                                         "active_form": {"type": "string"}},
        "required": ["content", "status"]}}}, "required": ["tasks"]},
)
READ_FILE = ToolSpec(name="read_file", description="Read a file of the project.",
                     parameters={"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]})
TOOLS = [UPDATE_TASKS, READ_FILE]
STREAM_TIMEOUT = 20.0
"""No case needs more than a second; past this the adapter is waiting on something."""

_seq = itertools.count(1)


def message(role: str, *content: str | ContentBlock, model: str | None = None, status: str = "complete",
            turn_id: str | None = None) -> Message:
    seq = next(_seq)
    blocks = [TextBlock(text=c) if isinstance(c, str) else c for c in content]
    return Message(id=f"m{seq}", session_id="s-conformance", seq=seq, role=role,  # type: ignore[arg-type]
                   content=blocks, created_at=datetime(2026, 6, 1, tzinfo=UTC), model=model,
                   turn_id=turn_id, status=status)  # type: ignore[arg-type]


def request(model: str, messages: list[Message], **kw: Any) -> TurnRequest:
    return TurnRequest(model=model, system=kw.pop("system", "You plan work with the user."), messages=messages,
                       info=INFO.get(model), **kw)


async def collect(events: AsyncIterator[StreamEvent]) -> list[StreamEvent]:
    async def drain() -> list[StreamEvent]:
        return [event async for event in events]

    return await asyncio.wait_for(drain(), STREAM_TIMEOUT)


async def outcome(events: AsyncIterator[StreamEvent]) -> tuple[list[StreamEvent], ProviderError | None]:
    """The events a stream yielded and the ProviderError that ended it, if any.

    Any other exception fails the test here: the contract is that nothing but a
    ProviderError leaves an adapter.
    """
    seen: list[StreamEvent] = []

    async def drain() -> None:
        async for event in events:
            seen.append(event)

    try:
        await asyncio.wait_for(drain(), STREAM_TIMEOUT)
    except ProviderError as exc:
        return seen, exc
    except TimeoutError:
        raise AssertionError(f"the stream was still open after {STREAM_TIMEOUT}s (events so far: {seen!r})") from None
    except Exception as exc:  # noqa: BLE001 - the point of the check
        raise AssertionError(f"a bare {type(exc).__name__} escaped the adapter: {exc!r}") from exc
    return seen, None


async def failure(events: AsyncIterator[StreamEvent]) -> tuple[list[StreamEvent], ProviderError]:
    seen, error = await outcome(events)
    assert error is not None, f"the stream succeeded, a ProviderError was expected: {seen!r}"
    return seen, error


def finished(events: list[StreamEvent]) -> Finished:
    assert events, "the stream yielded nothing"
    last = events[-1]
    assert isinstance(last, Finished), f"the stream did not end with Finished: {last!r}"
    assert sum(isinstance(e, Finished) for e in events) == 1, "more than one Finished"
    return last


def text_of(events: Iterable[StreamEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def thinking_streamed(events: Iterable[StreamEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, ThinkingDelta))


def kinds(events: Iterable[StreamEvent]) -> list[str]:
    """The event types in order, with runs of deltas folded: what the order tests read."""
    out: list[str] = []
    for event in events:
        name = type(event).__name__
        if name in ("TextDelta", "ThinkingDelta") and out and out[-1] == name:
            continue
        out.append(name)
    return out


def assistant_from_events(events: list[StreamEvent], model: str, *, turn_id: str = "t1") -> Message:
    """The assistant message the daemon would store for a stream: blocks in event order."""
    blocks: list[ContentBlock] = []
    for event in events:
        if isinstance(event, ThinkingDone):
            blocks.append(ThinkingBlock(text=event.text, signature=event.signature, redacted=event.redacted))
        elif isinstance(event, TextDelta):
            if blocks and isinstance(blocks[-1], TextBlock) and blocks[-1].signature is None:
                blocks[-1] = TextBlock(text=blocks[-1].text + event.text)
            else:
                blocks.append(TextBlock(text=event.text))
        elif isinstance(event, TextSignature):
            if blocks and isinstance(blocks[-1], TextBlock) and blocks[-1].signature is None:
                blocks[-1] = msgspec.structs.replace(blocks[-1], signature=event.signature)
            else:
                blocks.append(TextBlock(text="", signature=event.signature))
        elif isinstance(event, ToolCallEvent):
            blocks.append(ToolCallBlock(id=event.id, name=event.name, input=event.input, signature=event.signature))
    last = finished(events)
    return message("assistant", *blocks, model=model, turn_id=turn_id,
                   status="refused" if last.stop_reason == "refusal" else "complete")


def results_for(calls: Iterable[ToolCallEvent], content: str = '{"ok": true}') -> Message:
    return message("user", *[ToolResultBlock(call_id=c.id, name=c.name, content=content) for c in calls],
                   turn_id="t1")


def same_bytes(wire: str, sent: str | None) -> bool:
    """Whether two base64 spellings carry the same bytes.

    Google's JSON mapping reads ``bytes`` fields in either base64 alphabet, and
    google-genai writes them URL-safe: ``/`` on the wire may come back as ``_``. What
    must survive is the decoded value.
    """
    if sent is None:
        return False

    def decode(value: str) -> bytes:
        value = value.replace("-", "+").replace("_", "/")
        return base64.b64decode(value + "=" * (-len(value) % 4), validate=True)

    try:
        return decode(wire) == decode(sent)
    except (binascii.Error, ValueError):
        return wire == sent


def part_signature(part: dict[str, Any]) -> str | None:
    """A Gemini request part's signature, however the SDK spelled the key."""
    return part.get("thoughtSignature", part.get("thought_signature"))


def part_call(part: dict[str, Any]) -> dict[str, Any] | None:
    return part.get("functionCall", part.get("function_call"))


def part_response(part: dict[str, Any]) -> dict[str, Any] | None:
    return part.get("functionResponse", part.get("function_response"))


def dumps(body: Any) -> str:
    return json.dumps(body, sort_keys=True)
