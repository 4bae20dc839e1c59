"""How a streamed reply reaches clients and the store, through a real daemon.

- Text that arrived is sent without waiting for the next chunk: the checkpoint's
  timer commits and publishes it while the provider stream is still open and sends
  nothing more (the emulator keeps the stream alive with pings only).
- The store keeps a reply linearly: its deltas appended (their text only), its
  message written when it opens and when it ends, not rewritten at each checkpoint,
  and its completion not repeating the record's text. The bytes the store holds for
  a long reply (keys and values of its events and message record) stay within three
  times its text, however its chunks were grouped into checkpoints (each of its 300
  chunks a delta of its own costs 0.4x more at most).
"""

from __future__ import annotations

from pathlib import Path

import lmdb
from conversation_support import provider_daemon

from duologue.daemon.emulator import Emulator, Failure, Reply
from duologue.protocol import methods as m

CHUNKS = ["one ", "two ", "three "]
STREAM_HEAD = 3
"""Anthropic stream events before the first text delta: message_start, ping,
content_block_start (no thinking block: the reply is scripted without thinking)."""


async def test_text_reaches_clients_while_the_provider_sends_no_further_chunk(home: Path, emulator: Emulator):
    d = provider_daemon(home, emulator)
    d.start()
    try:
        async with d.client("watcher") as c:
            sid = (await c.create_session(model="sonnet")).id
            await c.attach(sid)
            # All three chunks at once, then only keepalive pings: the first chunk is
            # committed on arrival, the other two must go out on the timer.
            emulator.script("anthropic", Failure(keepalive_after=STREAM_HEAD + len(CHUNKS), keepalive_interval=0.2,
                                                 reply=Reply(chunks=CHUNKS, thinking="")))
            await c.send(sid, "three words, then silence")
            text = ""
            while text != "".join(CHUNKS):
                event = await c.next_event(20)
                assert not isinstance(event, m.MessageCompleted), f"the reply ended first: {event!r}"
                if isinstance(event, m.MessageDelta):
                    text += event.text
            assert emulator.streaming > 0  # the provider is still holding the stream open
            await c.cancel(sid)
            while not isinstance(event := await c.next_event(20), m.MessageCompleted):
                pass
            assert event.message.status == "cancelled" and event.message.text == "".join(CHUNKS)
    finally:
        d.stop()


def _kept_bytes(store: Path, sid: str, dbs: tuple[str, ...]) -> int:
    """Keys and values the store holds under a session in these databases."""
    env = lmdb.open(str(store), readonly=True, max_dbs=32, lock=False)
    try:
        total = 0
        for name in dbs:
            with env.begin(db=env.open_db(name.encode(), create=False)) as txn:
                total += sum(len(k) + len(v) for k, v in txn.cursor() if k.startswith(sid.encode() + b"\0"))
        return total
    finally:
        env.close()


async def test_a_long_reply_keeps_disk_bytes_linear_in_its_text(home: Path, emulator: Emulator):
    d = provider_daemon(home, emulator)
    d.start()
    chunks = [f"{i:04d}" + "x" * 95 + " " for i in range(300)]  # 30 KB of text in 100-byte chunks
    try:
        async with d.client("writer") as c:
            sid = (await c.create_session(model="sonnet")).id
            await c.attach(sid)
            emulator.script("anthropic", Reply(chunks=chunks, chunk_delay=0.002, thinking=""))
            sent = await c.send(sid, "a long answer")
            deltas = 0
            while not isinstance(event := await c.next_event(30), m.MessageCompleted) or \
                    event.message.turn_id != sent.turn_id:
                deltas += isinstance(event, m.MessageDelta)
            assert event.message.text == "".join(chunks)
            reply_seq = event.message.seq
    finally:
        d.stop()
    store = Path(d.paths.store_dir)
    text = sum(len(c) for c in chunks)
    kept = _kept_bytes(store, sid, ("events", "messages")) - _prompt_bytes(store, sid, reply_seq)
    assert deltas <= len(chunks)
    assert kept <= 3 * text, (kept, text, deltas)


def _prompt_bytes(store: Path, sid: str, reply_seq: int) -> int:
    """What the store holds of the session before the reply (its creation, the prompt)."""
    env = lmdb.open(str(store), readonly=True, max_dbs=32, lock=False)
    try:
        total = 0
        prefix = sid.encode() + b"\0"
        for name in ("events", "messages"):
            with env.begin(db=env.open_db(name.encode(), create=False)) as txn:
                total += sum(len(k) + len(v) for k, v in txn.cursor()
                             if k.startswith(prefix) and int.from_bytes(k[len(prefix):], "big") < reply_seq)
        return total
    finally:
        env.close()
