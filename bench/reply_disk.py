"""Disk bytes per text byte: what the store keeps of streamed replies, against their text.

Method. A daemon answers ``REPLIES`` scripted replies in one session, each ``CHUNKS``
chunks of ``CHUNK_CHARS`` characters ``CADENCE_S`` apart (the fan-out benchmark's
spacing). After it stops, the store is read directly: the keys and values of every
record of each reply (its ``message/created``, deltas and ``message/completed``
events, its message record), from its opening seq to its completion's, summed and
divided by the replies' text. The prompts are not counted. The floor is 1x: the
text kept once. The note gives the same figure for chunks of 8 characters (a
reply's fixed records weigh more on its 160 characters) and the growth of the data
file, which also holds the pages LMDB keeps free for reuse.

Before append-only deltas every checkpoint rewrote the message whole: 9-16x.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import lmdb

from duologue.daemon.emulator import Emulator, Reply
from duologue.protocol import methods as m

from .fixtures import Daemon, temp_home
from .harness import Row, progress, value_row

CHUNKS = 20
CADENCE_S = 0.01
CHUNK_CHARS = 100
SMALL_CHUNK_CHARS = 8
TARGET = 3.0


def _chunks(reply: int, size: int) -> list[str]:
    return [f"r{reply}c{i}-".ljust(size - 1, "x") + " " for i in range(CHUNKS)]


async def _replies(d: Daemon, emu: Emulator, n: int, size: int) -> tuple[str, list[tuple[int, int]], int]:
    """The session, each reply's (first seq, last seq), and the text streamed."""
    spans: list[tuple[int, int]] = []
    text = 0
    async with d.client("bench-disk") as c:
        s = await c.create_session(model="sonnet")
        await c.attach(s.id, since_seq=s.last_seq)
        for i in range(n):
            chunks = _chunks(i, size)
            emu.script("anthropic", Reply(chunks=chunks, chunk_delay=CADENCE_S, thinking=""))
            sent = await c.send(s.id, "an answer, please")
            while True:
                event = await c.next_event(60)
                if isinstance(event, m.MessageCompleted) and event.message.turn_id == sent.turn_id:
                    break
            if event.message.text != "".join(chunks):
                raise RuntimeError(f"reply {i} came back with other text")
            spans.append((event.message.seq, event.seq))
            text += len(event.message.text)
    return s.id, spans, text


def _kept(store: Path, sid: str, spans: list[tuple[int, int]]) -> int:
    env = lmdb.open(str(store), readonly=True, max_dbs=32, lock=False)
    prefix = sid.encode() + b"\0"
    try:
        total = 0
        for name in ("events", "messages"):
            with env.begin(db=env.open_db(name.encode(), create=False)) as txn:
                for key, value in txn.cursor():
                    if not key.startswith(prefix):
                        continue
                    seq = int.from_bytes(key[len(prefix):], "big")
                    if any(first <= seq <= last for first, last in spans):
                        total += len(key) + len(value)
        return total
    finally:
        env.close()


def _measure(n: int, size: int) -> tuple[float, float]:
    """(kept bytes, data file growth) per text byte."""
    with Emulator() as emu, temp_home() as home:
        d = Daemon(home / "home", emulator=emu)
        with d:
            data = Path(d.paths.store_dir) / "data.mdb"
            before = data.stat().st_size
            sid, spans, text = asyncio.run(_replies(d, emu, n, size))
            grown = data.stat().st_size - before
        return _kept(Path(d.paths.store_dir), sid, spans) / text, grown / text


def run(quick: bool) -> list[Row]:
    n = 3 if quick else 50
    kept, grown = _measure(n, CHUNK_CHARS)
    progress(f"{n} replies of {CHUNKS} x {CHUNK_CHARS} chars: {kept:.2f}x kept, {grown:.2f}x file growth")
    small, _ = _measure(n, SMALL_CHUNK_CHARS)
    progress(f"{n} replies of {CHUNKS} x {SMALL_CHUNK_CHARS} chars: {small:.2f}x kept")
    return [value_row(
        "disk bytes per text byte of a streamed reply", round(kept, 2), "x", "the text kept once", 1.0,
        target=f"<= {TARGET:g}x", met=kept <= TARGET, n=n,
        note=f"{n} replies of {CHUNKS} chunks of {CHUNK_CHARS} characters, {CADENCE_S * 1000:.0f} ms apart; "
             f"keys and values of each reply's events and record. Chunks of {SMALL_CHUNK_CHARS} characters: "
             f"{small:.2f}x (a reply's fixed records, its opening and the envelope of its completion, about "
             f"1 KB, weigh on 160 characters). Data file growth: {grown:.2f}x")]
