"""The idle guard around a provider stream, without a daemon: a cancellation (what
``session/cancel`` does to a turn) is never lost, however it lines up with an event."""

from __future__ import annotations

import asyncio

import pytest

from duologue.daemon.providers.base import ProviderError, idle_guard


async def test_a_cancel_that_arrives_with_an_event_still_cancels():
    for _ in range(20):  # the cancel and the event land in the same turn of the loop
        ready = asyncio.Event()

        async def events():
            while True:
                await ready.wait()
                ready.clear()
                yield "chunk"

        async def consume():
            async for _ in idle_guard(events(), 30, "Test"):
                pass

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.01)
        ready.set()
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=2)
        assert done and task.cancelled(), "the cancellation was swallowed"


async def test_a_stream_of_nothing_times_out_as_a_provider_error():
    async def silent():
        await asyncio.Event().wait()
        yield "never"

    with pytest.raises(ProviderError, match="nothing but keepalives"):
        async for _ in idle_guard(silent(), 0.05, "Test"):
            pass
