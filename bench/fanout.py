"""Figure 5: one streamed turn watched by 1, 10 and 50 attached clients.

Method. The emulator has no timing hook, so this benchmark wraps, in this process
only, the emulator's stream writer (``_Handler._stream``) to stamp each SSE event
with ``perf_counter_ns`` right after the write to the socket returns: that is "the
provider's chunk". The reply is ``CHUNKS`` words ``CADENCE_S`` apart, slower than the
daemon's 50 ms checkpoint, so every chunk becomes exactly one ``message/delta``
(checked: deltas are matched to chunks by their cumulative text, and the latency of
a delta is taken from the write of the newest chunk it carries).

Watchers are plain pyzmq DEALER sockets that attached the session through the
protocol; one receiver thread polls them all and stamps every frame on arrival
(decoding happens after the turn). The figure is, per delta, the time from the
chunk's write to the moment the *last* watcher received it; p50 and p99 over all
deltas of all turns. Also reported: the spread between the first and the last
watcher. Floor: the same chunk-to-text latency for the Anthropic SDK called directly
in this process (what any consumer of the provider stream pays, with no daemon).
"""

from __future__ import annotations

import asyncio
import json
import threading
from contextlib import contextmanager
from typing import Any, Iterator

import msgspec
import zmq

from duologue.daemon.emulator import Emulator, Reply
from duologue.daemon.emulator import server as emulator_server
from duologue.protocol.jsonrpc import encode_request

from .fixtures import Daemon, temp_home, wait_turn
from .harness import Row, latency_row, ms, now_ns, p50, p99, progress

CADENCE_S = 0.06
FAN = (1, 10, 50)


@contextmanager
def chunk_clock() -> Iterator[list[tuple[int, bytes]]]:
    """Stamp every write of an emulator stream (this process's emulators only)."""
    log: list[tuple[int, bytes]] = []
    original = emulator_server._Handler._stream

    def timed(self: Any, events: list[bytes], delay: float, tail: bytes | None = None) -> None:
        real = self.wfile

        class Stamped:
            def write(self, data: bytes) -> int:
                n = real.write(data)
                log.append((now_ns(), bytes(data)))
                return n

            def flush(self) -> None:
                real.flush()

        self.wfile = Stamped()
        try:
            original(self, events, delay, tail)
        finally:
            self.wfile = real

    emulator_server._Handler._stream = timed  # type: ignore[method-assign]
    try:
        yield log
    finally:
        emulator_server._Handler._stream = original  # type: ignore[method-assign]


def _chunk_ends(log: list[tuple[int, bytes]]) -> dict[int, int]:
    """Cumulative text length after each text chunk -> the time it was written."""
    ends: dict[int, int] = {}
    total = 0
    for t, data in log:
        for line in data.split(b"\n"):
            if not line.startswith(b"data: "):
                continue
            event = json.loads(line[6:])
            if event.get("type") == "content_block_delta" and event["delta"].get("type") == "text_delta":
                total += len(event["delta"]["text"])
                ends[total] = t
    return ends


class Watchers:
    """N DEALER sockets attached to one session, read by one stamping thread."""

    def __init__(self, endpoint: str, session_id: str, n: int):
        self.ctx = zmq.Context()
        self.socks = []
        for i in range(n):
            s = self.ctx.socket(zmq.DEALER)
            s.setsockopt(zmq.LINGER, 0)
            s.setsockopt(zmq.RCVHWM, 0)
            s.connect(endpoint)
            s.send(encode_request(1, "session/attach", {"session_id": session_id}))
            reply = json.loads(s.recv())
            assert "result" in reply, reply
            self.socks.append(s)
        self.frames: list[tuple[int, int, bytes]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        poller = zmq.Poller()
        index = {}
        for i, s in enumerate(self.socks):
            poller.register(s, zmq.POLLIN)
            index[s] = i
        append = self.frames.append
        while not self._stop.is_set():
            for sock, _ in poller.poll(50):
                while True:
                    try:
                        frame = sock.recv(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    append((now_ns(), index[sock], frame))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for s in self.socks:
            s.close(0)
        self.ctx.term()

    def deltas(self) -> dict[int, tuple[str, list[int]]]:
        """seq -> (text, arrival times at each watcher)."""
        out: dict[int, tuple[str, list[int]]] = {}
        for t, _, frame in self.frames:
            note = msgspec.json.decode(frame)
            if note.get("method") == "message/delta":
                p = note["params"]
                out.setdefault(p["seq"], (p["text"], []))[1].append(t)
        return out


async def _turns(d: Daemon, emu: Emulator, log: list[tuple[int, bytes]], watchers_n: int, turns: int,
                 chunks: int) -> tuple[list[float], list[float], int]:
    latencies: list[float] = []
    spreads: list[float] = []
    missing = 0
    async with d.client("bench-driver") as c:
        for turn in range(turns):
            s = await c.create_session(model="sonnet")
            await c.attach(s.id, since_seq=s.last_seq)
            watchers = Watchers(d.paths.endpoint, s.id, watchers_n)
            try:
                log.clear()
                emu.script("anthropic", Reply(chunks=[f"w{turn}x{i} " for i in range(chunks)], chunk_delay=CADENCE_S, thinking=""))
                sent = await c.send(s.id, "stream to everyone")
                await wait_turn(c, sent.turn_id)
                await asyncio.sleep(0.1)  # the last frames reach the watchers
            finally:
                watchers.close()
            ends = _chunk_ends(log)
            cumulative = 0
            for seq in sorted(deltas := watchers.deltas()):
                text, arrivals = deltas[seq]
                cumulative += len(text)
                written = ends.get(cumulative)
                if written is None:
                    raise RuntimeError("a delta does not end on a chunk boundary: cannot match it to its chunk")
                missing += watchers_n - len(arrivals)
                latencies.append(ms(max(arrivals) - written))
                spreads.append(ms(max(arrivals) - min(arrivals)))
            progress(f"{watchers_n} watcher(s): turn {turn + 1}/{turns}, {len(deltas)} deltas")
    return latencies, spreads, missing


async def _sdk_direct(emu: Emulator, log: list[tuple[int, bytes]], turns: int, chunks: int) -> list[float]:
    import anthropic

    client = anthropic.AsyncAnthropic(api_key=emu.api_keys["anthropic"], base_url=emu.url, max_retries=0, timeout=10)
    out: list[float] = []
    try:
        for turn in range(turns):
            log.clear()
            emu.script("anthropic", Reply(chunks=[f"w{turn}x{i} " for i in range(chunks)], chunk_delay=CADENCE_S, thinking=""))
            seen: list[tuple[int, int]] = []
            total = 0
            async with client.messages.stream(model="claude-sonnet-5-5", max_tokens=1024,
                                              messages=[{"role": "user", "content": "stream"}]) as stream:
                async for event in stream:
                    if event.type == "text" and event.text:
                        total += len(event.text)
                        seen.append((now_ns(), total))
            ends = _chunk_ends(log)
            out += [ms(t - ends[end]) for t, end in seen]
            progress(f"floor (SDK direct): turn {turn + 1}/{turns}")
    finally:
        await client.close()
    return out


def run(quick: bool) -> list[Row]:
    turns, chunks = (1, 8) if quick else (3, 25)
    rows: list[Row] = []
    with Emulator() as emu, chunk_clock() as log, temp_home() as home:
        floor = asyncio.run(_sdk_direct(emu, log, turns, chunks))
        with Daemon(home / "home", emulator=emu) as d:
            for n in FAN:
                lat, spread, missing = asyncio.run(_turns(d, emu, log, n, turns, chunks))
                rows.append(latency_row(
                    f"fan-out: provider chunk -> delta at the last of {n} client(s)", lat,
                    "chunk -> text event, Anthropic SDK direct", floor,
                    note=f"first-to-last client spread p50 {p50(spread):.2f} ms, p99 {p99(spread):.2f} ms; "
                         f"chunks {CADENCE_S * 1000:.0f} ms apart; {missing} deliveries missing"))
    return rows
