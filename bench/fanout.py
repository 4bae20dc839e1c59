"""Figure 5: streamed turns watched by 1, 10, 50 and 200 attached clients.

Method. The emulator has no timing hook, so this benchmark wraps, in this process
only, the emulator's stream writer (``_Handler._stream``) to stamp each SSE event
with ``perf_counter_ns`` right after the write to the socket returns: that is "the
provider's chunk". A reply is ``CHUNKS`` chunks ``CADENCE_S`` apart (a realistic
spacing; a delta may carry more than one chunk when they come faster than the daemon
checkpoints). Each chunk is a sample: the time from its write to the moment the *last*
watcher received the delta that carries its end (deltas are matched to chunks by
their cumulative text), so a chunk that waited for a later one's delta counts its
whole wait.

Watchers are plain pyzmq DEALER sockets that attached the session through the
protocol, once per row; one receiver thread polls them all and stamps every frame on
arrival (decoding happens after the turn). p50 and p99 over all chunks of all
turns, at least ``MIN_SAMPLES`` in full mode. Also reported: the spread between the
first and the last watcher. The garbage collector runs as it does in use.

Floor: the same chunk-to-text latency for the Anthropic SDK called directly in this
process (what any consumer of the provider stream pays, with no daemon), its turns
interleaved one for one with ours in each row, so both see the same machine. Beside
it, the floor of the fan-out itself (in the note): a plain pyzmq ROUTER in its own
process (``bench.zmq_floor --fanout``) handing a delta frame of the same size to as
many DEALERs, read by the same kind of stamping thread, ``CHUNKS`` frames
``CADENCE_S`` apart per turn, interleaved too: from the moment the frame is sent to
the ROUTER until the last watcher has it. What any daemon pays on this machine to
reach N clients is at least the sum of the two.
"""

from __future__ import annotations

import asyncio
import json
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import msgspec
import zmq

from duologue.daemon import heap
from duologue.daemon.emulator import Emulator, Reply
from duologue.daemon.emulator import server as emulator_server
from duologue.protocol.jsonrpc import encode_event, encode_request
from duologue.protocol.methods import MessageDelta

from .fixtures import Daemon, temp_home, wait_turn
from .harness import Row, latency_row, ms, now_ns, p50, p99, progress
from .rpc_roundtrip import echo

CADENCE_S = 0.01
CHUNKS = 20
MIN_SAMPLES = 1_000
FAN = (1, 10, 50, 200)
TARGET_P99_MS = {1: 5.0, 10: 5.0, 50: 5.0, 200: 20.0}
"""Up to 50 clients a chunk should reach the last of them within 5 ms (p99); 200
clients get four times the clients' budget."""


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

    async def completed(self, timeout: float) -> None:
        """Wait until every watcher has received the reply's ``message/completed``."""
        deadline = asyncio.get_running_loop().time() + timeout
        while sum(b'"method":"message/completed"' in f for _, _, f in list(self.frames)) < len(self.socks):
            if asyncio.get_running_loop().time() > deadline:
                raise RuntimeError("a watcher did not receive the end of the reply")
            await asyncio.sleep(0.01)

    def take_deltas(self) -> dict[int, tuple[str, list[int]]]:
        """seq -> (text, arrival times at each watcher), of the frames received since
        the last call."""
        frames = self.frames[:]  # the receiver thread appends to this very list
        del self.frames[:len(frames)]
        out: dict[int, tuple[str, list[int]]] = {}
        for t, _, frame in frames:
            note = msgspec.json.decode(frame)
            if note.get("method") == "message/delta":
                p = note["params"]
                out.setdefault(p["seq"], (p["text"], []))[1].append(t)
        return out


def _chunks(turn: int) -> list[str]:
    return [f"w{turn}x{i} " for i in range(CHUNKS)]


def _chunk_latencies(log: list[tuple[int, bytes]], deltas: dict[int, tuple[str, list[int]]],
                     watchers_n: int) -> tuple[list[float], list[float], int]:
    """Per chunk: its write -> the last watcher has the delta holding its end; the
    first-to-last spread of each delta; deliveries missing."""
    ends = _chunk_ends(log)
    arrivals_at: list[tuple[int, list[int]]] = []  # (cumulative end of a delta, its arrivals)
    cumulative = 0
    missing = 0
    for seq in sorted(deltas):
        text, arrivals = deltas[seq]
        cumulative += len(text)
        if cumulative not in ends:
            raise RuntimeError("a delta does not end on a chunk boundary: cannot match it to its chunks")
        missing += watchers_n - len(arrivals)
        arrivals_at.append((cumulative, arrivals))
    latencies = []
    for end, written in sorted(ends.items()):
        holder = next(arrivals for delta_end, arrivals in arrivals_at if delta_end >= end)
        latencies.append(ms(max(holder) - written))
    spreads = [ms(max(a) - min(a)) for _, a in arrivals_at]
    return latencies, spreads, missing


async def _ours(c: Any, emu: Emulator, log: list[tuple[int, bytes]], sid: str, watchers: Watchers,
                turn: int) -> tuple[list[float], list[float], int]:
    log.clear()
    watchers.take_deltas()
    emu.script("anthropic", Reply(chunks=_chunks(turn), chunk_delay=CADENCE_S, thinking=""))
    sent = await c.send(sid, "stream to everyone")
    await wait_turn(c, sent.turn_id)
    await watchers.completed(5.0)
    return _chunk_latencies(log, watchers.take_deltas(), len(watchers.socks))


async def _floor(client: Any, emu: Emulator, log: list[tuple[int, bytes]], turn: int) -> list[float]:
    log.clear()
    emu.script("anthropic", Reply(chunks=_chunks(turn), chunk_delay=CADENCE_S, thinking=""))
    seen: list[tuple[int, int]] = []
    total = 0
    async with client.messages.stream(model="claude-sonnet-5-5", max_tokens=1024,
                                      messages=[{"role": "user", "content": "stream"}]) as stream:
        async for event in stream:
            if event.type == "text" and event.text:
                total += len(event.text)
                seen.append((now_ns(), total))
    ends = _chunk_ends(log)
    return [ms(t - ends[end]) for t, end in seen]


async def _fan_floor(driver: zmq.Socket, watchers: Watchers, turn: int) -> list[float]:
    """One turn's frames through the plain ROUTER: send -> the last watcher has it."""
    watchers.take_deltas()
    sent: dict[int, int] = {}
    for i, chunk in enumerate(_chunks(turn)):
        seq = turn * CHUNKS + i + 1
        frame = encode_event(MessageDelta(session_id="01FLOORSESSION000000000000", seq=seq,
                                          message_id="01FLOORMESSAGE000000000000", text=chunk))
        sent[seq] = now_ns()
        driver.send(b"FAN " + frame)
        await asyncio.sleep(CADENCE_S)
    deadline = asyncio.get_running_loop().time() + 5.0
    got: dict[int, tuple[str, list[int]]] = {}
    while True:
        for seq, (text, arrivals) in watchers.take_deltas().items():
            got.setdefault(seq, (text, []))[1].extend(arrivals)
        if all(len(got.get(seq, ("", []))[1]) == len(watchers.socks) for seq in sent):
            break
        if asyncio.get_running_loop().time() > deadline:
            raise RuntimeError("a floor watcher did not receive every frame")
        await asyncio.sleep(0.005)
    return [ms(max(got[seq][1]) - t) for seq, t in sent.items()]


async def _row(d: Daemon, emu: Emulator, log: list[tuple[int, bytes]], watchers_n: int,
               turns: int, fan_at: str) -> Row:
    import anthropic

    heap.settle("the floor's SDK loaded")  # as the daemon does (daemon/heap.py)
    sdk = anthropic.AsyncAnthropic(api_key=emu.api_keys["anthropic"], base_url=emu.url, max_retries=0, timeout=10)
    latencies: list[float] = []
    spreads: list[float] = []
    floor: list[float] = []
    fan_floor: list[float] = []
    missing = 0
    ctx = zmq.Context()
    driver = ctx.socket(zmq.DEALER)
    driver.setsockopt(zmq.LINGER, 0)
    driver.connect(fan_at)
    try:
        async with d.client("bench-driver") as c:
            s = await c.create_session(model="sonnet")
            await c.attach(s.id, since_seq=s.last_seq)
            watchers = Watchers(d.paths.endpoint, s.id, watchers_n)
            floor_watchers = Watchers(fan_at, "floor", watchers_n)
            try:
                for turn in range(turns):
                    floor += await _floor(sdk, emu, log, turn)
                    fan_floor += await _fan_floor(driver, floor_watchers, turn)
                    lat, spread, lost = await _ours(c, emu, log, s.id, watchers, turn)
                    latencies += lat
                    spreads += spread
                    missing += lost
                    if (turn + 1) % 10 == 0 or turn + 1 == turns:
                        progress(f"{watchers_n} watcher(s): turn {turn + 1}/{turns}")
            finally:
                watchers.close()
                floor_watchers.close()
    finally:
        driver.close(0)
        ctx.term()
        await sdk.close()
    target = TARGET_P99_MS[watchers_n]
    return latency_row(
        f"fan-out: provider chunk -> delta at the last of {watchers_n} client(s)", latencies,
        "chunk -> text event, Anthropic SDK direct", floor,
        target=f"p99 < {target:g} ms", met=p99(latencies) < target,
        note=f"fan-out floor (a plain pyzmq ROUTER handing the frame to {watchers_n} DEALERs, same receiver): "
             f"p50 {p50(fan_floor):.2f} ms, p99 {p99(fan_floor):.2f} ms, n {len(fan_floor)}; so SDK + fan-out floor "
             f"p50 {p50(floor) + p50(fan_floor):.2f} ms, p99 {p99(floor) + p99(fan_floor):.2f} ms; "
             f"first-to-last client spread p50 {p50(spreads):.2f} ms, p99 {p99(spreads):.2f} ms; "
             f"{CHUNKS} chunks a reply, {CADENCE_S * 1000:.0f} ms apart, floor turns interleaved; "
             f"{missing} deliveries missing")


def run(quick: bool) -> list[Row]:
    turns = 2 if quick else -(-MIN_SAMPLES // CHUNKS)
    rows: list[Row] = []
    with Emulator() as emu, chunk_clock() as log, temp_home() as home:
        reply_file = Path(home) / "attached.json"
        reply_file.write_bytes(b'{"jsonrpc":"2.0","id":1,"result":{}}')
        with Daemon(home / "home", emulator=emu) as d, echo(Path(home), reply_file, mode="fanout") as fan_at:
            for n in FAN:
                rows.append(asyncio.run(_row(d, emu, log, n, turns, fan_at)))
    return rows
