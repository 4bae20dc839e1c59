"""The provider loop: an adapter's stream runs on its own thread's loop, and the
daemon's loop sees the same events, the same errors and the same closing.

Sources here are plain async generators standing in for an adapter's ``stream``
(what ``OffLoop`` relays is the adapter's own generator); each records the thread
it ran on and whether its ``finally`` ran, as an SDK stream's close does.
"""

from __future__ import annotations

import asyncio
import threading

import pytest

from duologue.daemon.providers.base import ProviderError
from duologue.daemon.providers.offloop import ProviderLoop


class Source:
    def __init__(self, items: list[str], fail: ProviderError | None = None, hold: bool = False):
        self.items, self.fail, self.hold = items, fail, hold
        self.threads: set[str] = set()
        self.closed = threading.Event()

    async def stream(self):
        try:
            for item in self.items:
                self.threads.add(threading.current_thread().name)
                yield item
            if self.fail is not None:
                raise self.fail
            if self.hold:
                await asyncio.Event().wait()  # a provider that keeps the stream open
        finally:
            self.closed.set()


@pytest.fixture
def loop():
    provider_loop = ProviderLoop()
    yield provider_loop
    provider_loop.close()


async def test_events_arrive_in_order_from_the_provider_thread(loop: ProviderLoop):
    source = Source(["a", "b", "c"])
    assert [item async for item in loop.relay(source.stream())] == ["a", "b", "c"]
    assert source.threads == {"provider-loop"} and source.closed.is_set()


async def test_a_provider_error_reaches_the_consumer_as_raised(loop: ProviderLoop):
    source = Source(["a"], fail=ProviderError("overloaded", "busy", provider="anthropic"))
    got = []
    with pytest.raises(ProviderError) as raised:
        async for item in loop.relay(source.stream()):
            got.append(item)
    assert got == ["a"] and raised.value.kind == "overloaded" and raised.value.retryable


async def test_closing_the_relay_closes_the_provider_stream_before_it_returns(loop: ProviderLoop):
    source = Source(["a"], hold=True)
    relay = loop.relay(source.stream())
    assert await relay.__anext__() == "a"
    await relay.aclose()
    assert source.closed.is_set()


async def test_cancelling_the_consumer_closes_the_provider_stream(loop: ProviderLoop):
    source = Source(["a"], hold=True)
    first = asyncio.Event()

    async def consume() -> None:
        async for _ in loop.relay(source.stream()):
            first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert source.closed.is_set()


async def test_a_coroutine_runs_on_the_provider_thread(loop: ProviderLoop):
    async def where() -> str:
        return threading.current_thread().name

    assert await loop.run(where()) == "provider-loop"
