"""``client_queue_bytes`` bounds everything queued for a client, ZeroMQ's pipe
included, and a drop in the middle of an attach replay loses nothing.

- A client that stops reading while large events are published is dropped once what
  is queued for it passes the limit, its outbox and the frames in ZeroMQ's pipe (at
  most ``SEND_HWM``) counted; the daemon's memory grows by that much, not by
  everything published (before: ZeroMQ's pipe held 1,000 frames of any size,
  uncounted, and the client was never dropped).
- A drop while a long replay is being sent: the ``client/dropped`` notice names every
  session the client was attached to, nothing of those sessions follows it, and
  reattaching from the last seq seen before it recovers every event.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import zmq
from reliability_support import Raw

from duologue.clients.rpc.sync_client import Client
from duologue.daemon.zmq_transport import SEND_HWM
from duologue.protocol import methods as m
from duologue.protocol.entities import TextBlock
from support import DaemonProcess, wait_until

LIMIT = 1024 * 1024
EVENTS = 400
BIG = [m.TaskInput(content=("x%03d " % i) * 390) for i in range(120)]  # ~240 KB an event


def _rss(pid: int) -> int:
    """The daemon's anonymous resident memory: what its queues can hold.

    Not VmRSS: that also counts the store's memory map, whose pages the writes of
    this test touch whatever the client queue does."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no RssAnon")


def _daemon(home: Path, limit: int) -> DaemonProcess:
    (home / "config").mkdir(parents=True, exist_ok=True)
    (home / "config" / "config.toml").write_text(f"client_queue_bytes = {limit}\n")
    return DaemonProcess(home).start()


def test_a_client_that_stops_reading_is_bounded_by_client_queue_bytes_pipe_included(home: Path, figures):
    d = _daemon(home, LIMIT)
    ctx = zmq.Context()
    slow = Raw(ctx, d.paths.endpoint, rcvhwm=1, timeout_ms=20_000)
    try:
        with Client(d.paths, autostart=False, timeout=60) as c:
            sid = c.create_session(title="flooded").id
            c.update_tasks(sid, BIG)  # warm the daemon's allocator with one such event
            assert slow.call("session/attach", {"session_id": sid})["result"]["replayed"] == 0
            before = _rss(d.pid)
            published = 0
            for _ in range(EVENTS):
                c.update_tasks(sid, BIG)
                published += 1
            grown = _rss(d.pid) - before
        assert "fell" in d.log(), "the client that stopped reading was never dropped"
        sizes = [int(line.split(" fell ")[1].split(" bytes")[0]) for line in d.log().splitlines() if " fell " in line]
        event_bytes = len(json.dumps({"tasks": [t.content for t in BIG]}))
        # Counted: the outbox and the frames ZeroMQ's pipe may hold (at most SEND_HWM).
        assert max(sizes) <= LIMIT + (SEND_HWM + 1) * event_bytes, sizes
        held_at_most = LIMIT + (SEND_HWM + 1) * event_bytes
        assert grown < held_at_most + 8 * 2**20, (
            f"the daemon grew {grown / 2**20:.0f} MiB for one client; {published * event_bytes / 2**20:.0f} MiB "
            "were published")
        frames = []
        while True:
            frame = json.loads(slow.recv_frame())
            frames.append(frame)
            if frame.get("method") == "client/dropped":
                break
        assert frame["params"]["session_ids"] == [sid]
        figures["client_queue"] = {"limit_bytes": LIMIT, "published_bytes": published * event_bytes,
                                   "counted_at_drop_bytes": max(sizes), "daemon_rss_growth_bytes": grown,
                                   "frames_before_notice": len(frames) - 1}
    finally:
        slow.close()
        ctx.term()
        d.stop()


def _long_session(c: Client, n: int) -> str:
    t0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
    session = m.ImportSession(
        external_id="long", sources=["claude-code"], title="long", created_at=t0,
        messages=[m.ImportMessage(external_id=f"long:{i}", role="user" if i % 2 == 0 else "assistant",
                                  content=[TextBlock(text=f"message {i} " + "y" * 200)],
                                  created_at=t0 + timedelta(seconds=i)) for i in range(n)])
    return c.import_sessions([session]).sessions[0].session_id


def _read_to_notice(slow: Raw) -> tuple[dict[str, list[int]], dict[str, Any], list[dict[str, Any]]]:
    seqs: dict[str, list[int]] = {}
    while True:
        frame = slow.recv_item()
        if frame.get("method") == "client/dropped":
            break
        params = frame.get("params") or {}
        if "seq" in params and frame.get("method") != "progress":
            seqs.setdefault(params["session_id"], []).append(params["seq"])
    slow.sock.setsockopt(zmq.RCVTIMEO, 1500)
    after = []
    try:
        while True:
            after.append(slow.recv_item())
    except zmq.Again:
        pass
    return seqs, frame["params"], after


def test_a_drop_during_an_attach_replay_names_every_session_and_a_reattach_recovers_all(home: Path, figures):
    d = _daemon(home, 256 * 1024)
    ctx = zmq.Context()
    slow = Raw(ctx, d.paths.endpoint, rcvhwm=1, timeout_ms=20_000)
    try:
        with Client(d.paths, autostart=False, timeout=60) as c:
            long_sid = _long_session(c, 4000)
            busy_sid = c.create_session(title="busy").id
            total = c.get_session(long_sid, limit=1).session.last_seq
            attached = slow.call("session/attach", {"session_id": busy_sid})["result"]
            assert attached["replayed"] == 0
            base = {long_sid: 0, busy_sid: attached["last_seq"]}  # live from there on
            slow.request("session/attach", {"session_id": long_sid, "since_seq": 0})  # then reads nothing
            for _ in range(40):
                c.update_tasks(busy_sid, BIG[:20])  # ~40 KB an event
            wait_until(lambda: "fell" in d.log(), timeout=30)
            busy_last = c.get_session(busy_sid, limit=1).session.last_seq
        seqs, notice, after = _read_to_notice(slow)
        assert sorted(notice["session_ids"]) == sorted([long_sid, busy_sid]), notice
        leaked = [f for f in after if (f.get("params") or {}).get("session_id") in (long_sid, busy_sid)]
        assert leaked == [], f"{len(leaked)} frames of dropped sessions followed the notice"
        slow.sock.setsockopt(zmq.RCVTIMEO, 20_000)
        for sid, last in ((long_sid, total), (busy_sid, busy_last)):
            seen = seqs.get(sid, [])
            first = base[sid] + 1
            assert seen == list(range(first, first + len(seen))), f"{sid}: a gap before the notice"
            resume = seen[-1] if seen else base[sid]
            reply = slow.call("session/attach", {"session_id": sid, "since_seq": resume})
            assert reply["result"]["replayed"] == last - resume
            got = []
            while len(got) < reply["result"]["replayed"]:
                frame = slow.recv_item()
                params = frame.get("params") or {}
                if params.get("session_id") == sid and "seq" in params and frame.get("method") != "progress":
                    got.append(params["seq"])
            assert seen + got == list(range(first, last + 1)), f"{sid}: not every event after the reattach"
        figures["replay_drop"] = {"replay_events": total, "seen_before_notice": {k: len(v) for k, v in seqs.items()},
                                  "frames_after_notice_of_dropped_sessions": 0, "recovered_after_reattach": True}
    finally:
        slow.close()
        ctx.term()
        d.stop()
