"""QUEUE_FULL: a session holds at most 32 turns waiting behind the one running.

docs/protocol.md states the limit; this is where it is held to it. A send past it
is refused before anything is stored, and sending works again once the queue moves.
"""

from __future__ import annotations

import asyncio

import pytest

from duologue.daemon.emulator import Emulator, Reply
from duologue.protocol import methods as m
from duologue.protocol.errors import ErrorCode, RpcError

WAITING_LIMIT = 32


async def test_a_send_past_32_waiting_turns_is_queue_full_and_stores_nothing(live, emulator: Emulator):
    emulator.script("anthropic", Reply(chunks=["slow "] * 200, chunk_delay=0.1, thinking=""))
    async with live.client() as c:
        s = await c.create_session(model="sonnet")
        await c.attach(s.id, since_seq=s.last_seq)
        running = await c.send(s.id, "the turn that runs")
        queued = [await c.send(s.id, f"waiting {n}") for n in range(WAITING_LIMIT)]
        assert [q.queued for q in queued] == list(range(1, WAITING_LIMIT + 1))
        before = (await c.get_session(s.id)).session.last_seq
        with pytest.raises(RpcError) as refused:
            await c.send(s.id, "one too many")
        assert refused.value.code == ErrorCode.QUEUE_FULL and "32" in refused.value.message
        assert (await c.get_session(s.id)).session.last_seq == before
        await c.cancel(s.id)
        await asyncio.wait_for(_begun(c, queued[0].turn_id), 60)
        assert (await c.send(s.id, "room again")).queued == WAITING_LIMIT


async def _begun(c, turn_id: str) -> None:
    """Wait until the first waiting turn runs, which leaves room for one more."""
    async for event in c.events():
        if isinstance(event, m.Progress) and event.turn_id == turn_id and event.kind == "begin":
            return
