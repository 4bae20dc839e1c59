"""Fixtures for the provider tests: a live emulator and real SDK-backed providers.

Every provider talks to the emulator over real loopback HTTP; SDK retries are off
unless a test turns them on, so error tests answer at once.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime

import pytest
from providers.provider_helpers import API_KEY, KEYS

from duologue.daemon.emulator import Emulator
from duologue.daemon.providers import AnthropicProvider, GeminiProvider
from duologue.protocol.entities import ContentBlock, Message, TextBlock

AnyProvider = AnthropicProvider | GeminiProvider


@pytest.fixture
def emu() -> Iterator[Emulator]:
    emulator = Emulator(api_keys=KEYS).start()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
async def make_provider(emu: Emulator) -> AsyncIterator[Callable[..., AnyProvider]]:
    """Build a provider by name against the emulator; closed after the test."""
    made: list[AnyProvider] = []

    def make(name: str, *, api_key: str = API_KEY, timeout: float = 10.0, retries: int = 0,
             max_retry_after: float = 20.0) -> AnyProvider:
        provider: AnyProvider
        if name == "anthropic":
            provider = AnthropicProvider(api_key, emu.url, timeout=timeout, max_retries=retries,
                                         max_retry_after=max_retry_after)
        else:
            provider = GeminiProvider(api_key, emu.url, timeout=timeout, retries=retries,
                                      max_retry_after=max_retry_after, retry_delay=0.01)
        made.append(provider)
        return provider

    yield make
    for provider in made:
        await provider.aclose()


@pytest.fixture
def message() -> Callable[..., Message]:
    """A factory of history messages: ``message("user", "hi")`` or with blocks."""
    counter = itertools.count(1)

    def make(role: str, *content: str | ContentBlock, model: str | None = None, status: str = "complete") -> Message:
        seq = next(counter)
        blocks = [TextBlock(text=c) if isinstance(c, str) else c for c in content]
        return Message(id=f"m{seq}", session_id="s1", seq=seq, role=role, content=blocks,  # type: ignore[arg-type]
                       created_at=datetime(2026, 1, 1, tzinfo=UTC), model=model,
                       status=status)  # type: ignore[arg-type]

    return make
