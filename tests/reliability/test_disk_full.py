"""A full disk: the store lives on a small tmpfs that the test fills to the last byte.

- A send is refused with ``STORE_UNWRITABLE`` (``data.disk_full``), a message that
  says the disk is full and what to do, and nothing stored.
- A reply that is streaming when its checkpoint cannot be written ends: every attached
  client gets the turn's ``progress`` end, failed, saying the disk is full; once space
  is freed, the reply's ``message/completed`` (failed, with the text that arrived) is
  stored and reaches every client, and sends work again. No reply stays ``streaming``.

Mounting a tmpfs needs root (CAP_SYS_ADMIN); without it the test is skipped, saying so.
"""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest
from conversation_support import provider_daemon

from duologue.daemon.emulator import Emulator, Reply
from duologue.protocol import methods as m
from duologue.protocol.errors import ErrorCode, RpcError

TMPFS_BYTES = 24 * 2**20
BIG_PROMPT = "lorem ipsum " * 40_000  # ~480 KB: more than the store's free pages can hold
CHUNK = "streamed text that fills pages " * 600  # ~18 KB a chunk


@pytest.fixture
def small_disk(home: Path):
    """The daemon's store directory on its own small tmpfs."""
    store = home / "data" / "store"
    store.mkdir(parents=True, exist_ok=True, mode=0o700)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_BYTES},mode=0700", "tmpfs", str(store)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs to fill (needs root): {mounted.stderr.strip()}")
    try:
        yield store
    finally:
        subprocess.run(["umount", "-l", str(store)], check=False)


def _fill(directory: Path) -> Path:
    """Write a file until the disk refuses another byte."""
    filler = directory / "filler"
    with open(filler, "wb", buffering=0) as f:
        block = b"\0" * 65536
        try:
            while True:
                f.write(block)
        except OSError:
            pass
        try:
            while True:
                f.write(b"\0")
        except OSError:
            pass
    return filler


async def test_a_full_disk_refuses_sends_and_ends_the_streaming_reply_for_every_client(
        home: Path, small_disk: Path, emulator: Emulator):
    d = provider_daemon(home, emulator)
    assert Path(d.paths.store_dir) == small_disk
    d.start()
    try:
        async with d.client("writer") as a, d.client("watcher") as b:
            sid = (await a.create_session(title="on a small disk", model="sonnet")).id
            await a.attach(sid)
            await b.attach(sid)
            emulator.script("anthropic", Reply(chunks=[CHUNK] * 400, chunk_delay=0.02))
            sent = await a.send(sid, "a long answer, please")
            while True:  # the reply is streaming: fill the disk under it
                event = await b.next_event(20)
                if isinstance(event, m.MessageDelta) and event.text:
                    break
            filler = _fill(small_disk)

            ends = []
            for client in (a, b):
                while True:
                    event = await client.next_event(30)
                    if isinstance(event, m.Progress) and event.kind == "end" and event.turn_id == sent.turn_id:
                        ends.append(event)
                        break
            for end in ends:
                assert end.outcome == "failed"
                assert "disk" in end.error and "full" in end.error, end.error

            with pytest.raises(RpcError) as refused:
                await a.send(sid, BIG_PROMPT)
            assert refused.value.code == ErrorCode.STORE_UNWRITABLE
            assert refused.value.data == {"disk_full": True}
            assert "full" in refused.value.message and "Free some space" in refused.value.message
            assert str(small_disk) in refused.value.message

            filler.unlink()
            completed = {}
            for name, client in (("a", a), ("b", b)):
                while name not in completed:
                    event = await client.next_event(30)
                    if isinstance(event, m.MessageCompleted) and event.message.turn_id == sent.turn_id:
                        completed[name] = event.message
            reply = completed["a"]
            assert completed["b"] == reply
            assert reply.status == "failed" and "full" in reply.error
            assert reply.text.startswith(CHUNK), "the text that arrived before the disk filled is kept"

            got = await a.get_session(sid)
            assert [x.status for x in got.messages if x.role == "assistant"] == ["failed"]
            assert not [x for x in got.messages if x.text == BIG_PROMPT], "the refused send stored something"
            emulator.script("anthropic", Reply(chunks=["room again"]))
            again = await a.send(sid, "and now?")
            while True:
                event = await a.next_event(30)
                if isinstance(event, m.MessageCompleted) and event.message.turn_id == again.turn_id:
                    assert event.message.status == "complete" and event.message.text == "room again"
                    break
    finally:
        d.stop()
    assert "disk is full" in d.log()
