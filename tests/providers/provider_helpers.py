"""Small helpers shared by the provider tests (importable as ``providers.provider_helpers``: pytest puts tests/ on the path)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from duologue.daemon.providers import Finished, TextDelta, ToolCallEvent, TurnRequest
from duologue.daemon.providers.base import StreamEvent
from duologue.protocol.entities import Message

CLAUDE = "claude-sonnet-4-6"
GEMINI = "gemini-2.5-flash"
MODELS = {"anthropic": CLAUDE, "gemini": GEMINI}
API_KEY = "sk-test-SECRET-0123456789"
INVALID_KEY = "invalid-SECRET-key-9876"
KEYS = {"anthropic": API_KEY, "gemini": API_KEY}
"""The keys the provider tests' emulators accept (known, so a test can look for them
where they must not be); any other key, INVALID_KEY included, is refused."""
BOTH = ["anthropic", "gemini"]


async def collect(events: AsyncIterator[StreamEvent]) -> list[StreamEvent]:
    return [event async for event in events]


def text_of(events: list[StreamEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def tool_calls(events: list[StreamEvent]) -> list[ToolCallEvent]:
    return [e for e in events if isinstance(e, ToolCallEvent)]


def finished(events: list[StreamEvent]) -> Finished:
    last = events[-1]
    assert isinstance(last, Finished), f"stream did not end with Finished: {last!r}"
    return last


def request(model: str, messages: list[Message], *, system: str | None = None, **kw: object) -> TurnRequest:
    return TurnRequest(model=model, system=system, messages=messages, **kw)  # type: ignore[arg-type]
