"""A client that stops reading: the others' streams do not slow down, it is dropped
with a notice once its queue passes the limit, and it catches up by reattaching
with since_seq.

The slow client is a raw DEALER with a receive high-water mark of one message that
simply stops calling recv. The daemon's queue limit is lowered through the config
file (``client_queue_bytes``) so the drop happens in seconds. To get there, events
must first fill ZeroMQ's own pipe to the client (``SNDHWM`` messages), so a third
client floods one session with large task updates while a reply streams in another.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import zmq
from conversation_support import provider_daemon, send_and_wait
from reliability_support import Raw

from duologue.clients.rpc.client import AsyncClient
from duologue.daemon.emulator import Emulator, Reply
from duologue.daemon.zmq_transport import SEND_HWM
from duologue.protocol import methods as m

QUEUE_BYTES = 256 * 1024
WORDS = [f"w{i} " for i in range(40)]
BIG_TASKS = [m.TaskInput(content=("t%d " % i) * 400) for i in range(10)]  # ~20 KB an event
FLOOD = SEND_HWM + 200


async def _stream_and_flood(fast: AsyncClient, flooder: AsyncClient, emulator: Emulator,
                            stream_sid: str, flood_sid: str) -> tuple[float, list[m.MessageDelta]]:
    """Send a streamed turn while the flooder updates tasks; how long the fast client's
    stream took and the deltas it received."""
    emulator.script("anthropic", Reply(chunks=WORDS, chunk_delay=0.03))
    deltas: list[m.MessageDelta] = []
    t0 = time.monotonic()
    sent = await fast.send(stream_sid, "stream to me")

    async def watch() -> float:
        async for event in fast.events():
            if isinstance(event, m.MessageDelta) and event.session_id == stream_sid:
                deltas.append(event)
            if isinstance(event, m.Progress) and event.turn_id == sent.turn_id and event.kind == "end":
                return time.monotonic() - t0
        raise AssertionError("unreachable")

    async def flood() -> None:
        for _ in range(FLOOD):
            await flooder.update_tasks(flood_sid, BIG_TASKS)

    took, _ = await asyncio.wait_for(asyncio.gather(watch(), flood()), 120)
    return took, deltas


def _read_until_dropped(slow: Raw, first: dict[str, list[dict[str, Any]]],
                        ) -> tuple[dict[str, int], dict[str, list[dict[str, Any]]], dict[str, Any]]:
    """Read what was queued: events up to the drop, then the client/dropped notice."""
    seen = {sid: list(frames) for sid, frames in first.items()}
    last = {sid: frames[-1]["params"]["seq"] for sid, frames in first.items()}
    slow.sock.setsockopt(zmq.RCVTIMEO, 20_000)
    while True:
        frame = slow.recv_item()
        if frame.get("method") == "client/dropped":
            return last, seen, frame["params"]
        params = frame.get("params", {})
        if frame.get("method") != "progress" and "seq" in params:
            sid = params["session_id"]
            assert params["seq"] == last.get(sid, 0) + 1, "a gap before the drop"
            last[sid] = params["seq"]
            seen.setdefault(sid, []).append(frame)


async def test_a_client_that_stops_reading_slows_no_one_is_dropped_and_catches_up(
        home: Path, emulator: Emulator, figures):
    d = provider_daemon(home, emulator, top=f"client_queue_bytes = {QUEUE_BYTES}\n").start()
    ctx = zmq.Context()
    slow = Raw(ctx, d.paths.endpoint, rcvhwm=1, timeout_ms=20_000)
    try:
        async with d.client("fast") as fast, d.client("flooder") as flooder:
            sids = [(await fast.create_session(model="sonnet", title=f"s{i}")).id for i in range(4)]
            base_stream, base_flood, stream_sid, flood_sid = sids
            for sid in sids:
                await fast.attach(sid, since_seq=0)
            await send_and_wait(fast, base_flood, "warm up")  # the provider's SDK loads on first use
            # Baseline: the same stream and flood with no slow client around.
            base_took, base_deltas = await _stream_and_flood(fast, flooder, emulator, base_stream, base_flood)

            first: dict[str, list[dict[str, Any]]] = {}
            for sid in (stream_sid, flood_sid):
                reply = slow.call("session/attach", {"session_id": sid, "since_seq": 0})
                first[sid] = slow.recv_items(reply["result"]["replayed"])
            # From here on the slow client reads nothing.
            took, deltas = await _stream_and_flood(fast, flooder, emulator, stream_sid, flood_sid)
            assert "fell" in d.log() and "behind" in d.log(), "the slow client was never dropped"

            # The others were not held back: the stream is whole and about as fast.
            assert "".join(e.text for e in deltas) == "".join(WORDS)
            assert "".join(e.text for e in base_deltas) == "".join(WORDS)
            assert took < base_took * 1.5 + 0.5, f"stream took {took:.2f}s with a slow client, {base_took:.2f}s without"
            # The fast client still works and is attached everywhere.
            status = await fast.status()
            assert status.clients >= 3

            # The slow client reads again: what was queued, then the notice.
            last, seen, notice = _read_until_dropped(slow, first)
            assert sorted(notice["session_ids"]) == sorted([stream_sid, flood_sid])
            assert "since_seq" in notice["reason"]
            for sid in (stream_sid, flood_sid):
                reattached = slow.call("session/attach", {"session_id": sid, "since_seq": last.get(sid, 0)})
                result = reattached["result"]
                replay = slow.recv_items(result["replayed"])
                seen.setdefault(sid, []).extend(replay)
                seqs = [f["params"]["seq"] for f in seen[sid]]
                assert seqs == list(range(1, result["last_seq"] + 1)), f"{sid}: not everything after reattach"
                truth = (await fast.get_session(sid)).session.last_seq
                assert result["last_seq"] == truth
            text = "".join(f["params"]["text"] for f in seen[stream_sid] if f["method"] == "message/delta")
            assert text == "".join(WORDS)
        figures["slow_client"] = {
            "queue_limit_bytes": QUEUE_BYTES, "zmq_send_hwm": SEND_HWM, "flood_events": FLOOD,
            "fast_stream_s_without_slow_client": round(base_took, 2),
            "fast_stream_s_with_slow_client": round(took, 2),
            "slow_client_events_before_drop": sum(last.values()),
            "dropped_with_notice": True, "caught_up_after_reattach": True,
        }
    finally:
        slow.close()
        ctx.term()
        d.stop()
