"""Fixtures: a case replayed on loopback, and the real adapter pointed at it.

SDK retries are off unless a test turns them on, so an error case answers once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from conformance.messages import API_KEY
from conformance.replay import ReplayServer, load_case

from duologue.daemon.providers import AnthropicProvider, GeminiProvider

AnyProvider = AnthropicProvider | GeminiProvider


@pytest.fixture
async def replay() -> AsyncIterator[Callable[..., tuple[ReplayServer, AnyProvider]]]:
    """``server, provider = replay("anthropic", "thinking_then_text")``."""
    servers: list[ReplayServer] = []
    providers: list[AnyProvider] = []

    def open_case(provider: str, name: str, **options: Any) -> tuple[ReplayServer, AnyProvider]:
        case = load_case(provider, name)
        assert case.provider == provider, f"case {name} is for {case.provider}"
        server = ReplayServer(case).start()
        servers.append(server)
        adapter: AnyProvider
        if provider == "anthropic":
            adapter = AnthropicProvider(API_KEY, server.url, timeout=options.pop("timeout", 10.0),
                                        max_retries=options.pop("retries", 0),
                                        max_retry_after=options.pop("max_retry_after", 20.0))
        else:
            adapter = GeminiProvider(API_KEY, server.url, timeout=options.pop("timeout", 10.0),
                                     retries=options.pop("retries", 0),
                                     max_retry_after=options.pop("max_retry_after", 20.0), retry_delay=0.01)
        assert not options, f"unknown options {options}"
        providers.append(adapter)
        return server, adapter

    yield open_case
    for adapter in providers:
        await adapter.aclose()
    for server in servers:
        server.stop()
