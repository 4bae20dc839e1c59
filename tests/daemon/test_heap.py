"""What the daemon loads once stays out of the collector's full passes (daemon/heap.py):
an SDK's objects are frozen as soon as it is imported, once, and a running daemon does
it for start-up and for every SDK it loads. The messages it keeps for histories are
not tracked by the collector at all."""

from __future__ import annotations

import gc
import json
import re
import subprocess
import sys

from datetime import datetime, timezone

import msgspec
from conversation_support import send_and_wait
from support import DaemonProcess

from duologue.protocol.entities import Message, TextBlock

PROBE = """
import gc, json
from duologue.daemon import heap
tracked_before = len(gc.get_objects())
first = heap.load_sdk("anthropic")
frozen, tracked = gc.get_freeze_count(), len(gc.get_objects())
again = heap.load_sdk("anthropic")
print(json.dumps({"tracked_before": tracked_before, "frozen": frozen, "tracked": tracked,
                  "frozen_again": gc.get_freeze_count(), "same": first is again}))
"""


def test_an_sdk_import_is_frozen_so_full_collections_no_longer_walk_its_objects():
    # a fresh interpreter: this one may have imported the SDK already
    out = json.loads(subprocess.run([sys.executable, "-c", PROBE], check=True, capture_output=True,
                                    text=True).stdout)
    assert out["frozen"] > 10 * out["tracked_before"]  # the SDK's objects, not ours
    assert out["tracked"] < out["frozen"] // 20  # what a full pass still walks
    assert out["same"] and out["frozen_again"] == out["frozen"]  # loaded once, settled once


async def test_a_running_daemon_freezes_its_start_up_and_each_sdk_it_loads(daemon: DaemonProcess):
    def settled() -> dict[str, int]:
        """The freeze count the log gave at each settling."""
        found = re.findall(r"INFO duologue\.daemon\.heap: (.+?): (\d+) objects kept out", daemon.log())
        return {why: int(count) for why, count in found}

    async with daemon.client() as c:
        for model in ("sonnet", "flash"):  # each turn loads its provider's SDK
            session = await c.create_session(model=model)
            await c.attach(session.id)
            await send_and_wait(c, session.id, "hello")
    counts = settled()
    assert {"started", "anthropic loaded", "google.genai loaded"} <= counts.keys()
    assert counts["anthropic loaded"] - counts["started"] > 50_000
    assert counts["google.genai loaded"] - counts["anthropic loaded"] > 50_000


def test_messages_read_from_the_store_leave_only_their_block_lists_to_the_collector():
    at = datetime(2026, 12, 1, tzinfo=timezone.utc)
    raw = [msgspec.msgpack.encode(Message(id=f"m{i}", session_id="s", seq=i, role="user", created_at=at,
                                          content=[TextBlock(text=f"message {i}")]))
           for i in range(1000)]
    decode = msgspec.msgpack.Decoder(Message).decode
    before = len(gc.get_objects())
    messages = [decode(r) for r in raw]
    tracked = len(gc.get_objects()) - before
    assert not gc.is_tracked(messages[0])
    assert tracked <= len(messages) + 10  # each content list, the list holding them
