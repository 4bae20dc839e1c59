"""One writer per session at a time: writer leases in JetStream KV.

Real nats-server, real daemons with separate homes, their providers on one scripted
emulator (each request it answers is one turn's run, wherever it ran)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conversation_support import provider_daemon
from support import DaemonProcess
from sync_support import NatsServer, converged, history, quiet, wait_for

from duologue.daemon.emulator import Emulator
from duologue.daemon.emulator.script import Reply
from duologue.protocol import methods as m
from duologue.protocol.errors import ErrorCode, RpcError

TTL_S = 4.0
"""Short, so a dead holder's lease expires soon; not the minimum (2 s), so a holder
whose loop a loaded machine stalls (a first turn imports its SDK) still renews."""


def _daemon(tmp_path: Path, server: NatsServer, emulator: Emulator, name: str) -> DaemonProcess:
    return provider_daemon(tmp_path / name, emulator, config=(
        f'[sync]\nurl = "{server.url}"\ndevice_name = "{name}"\nconnect_timeout_s = 2\n'
        f"lease_ttl_s = {TTL_S}\n"))


def _devices(tmp_path: Path, server: NatsServer, emulator: Emulator, *names: str) -> Iterator[list[DaemonProcess]]:
    daemons = [_daemon(tmp_path, server, emulator, name) for name in names]
    started: list[DaemonProcess] = []
    try:
        for d in daemons:
            started.append(d.start())
        yield daemons
    finally:
        for d in started:
            d.stop()


@pytest.fixture
def pair(tmp_path: Path, nats_server: NatsServer, emulator: Emulator) -> Iterator[list[DaemonProcess]]:
    """Two devices on one NATS and one emulator: laptop, desktop."""
    yield from _devices(tmp_path, nats_server, emulator, "laptop", "desktop")


@pytest.fixture
def trio(tmp_path: Path, nats_server: NatsServer, emulator: Emulator) -> Iterator[list[DaemonProcess]]:
    """Three: laptop, desktop, tablet."""
    yield from _devices(tmp_path, nats_server, emulator, "laptop", "desktop", "tablet")


def _turns(emulator: Emulator) -> int:
    """Provider requests the emulator answered for turns (a model listing is not one)."""
    return sum(1 for r in emulator.received if "models" not in r.path.rstrip("/").split("/")[-1])


async def _replies(client, sid: str) -> list[dict]:
    got = await history(client, sid)
    return [] if got is None else [msg for msg in got[1] if msg["role"] == "assistant"]


def _text(msg: dict) -> str:
    return "".join(b.get("text", "") for b in msg["content"] if b["type"] == "text")


async def _ended(client, sid: str, n: int) -> bool:
    replies = await _replies(client, sid)
    return len(replies) >= n and all(r.get("status") != "streaming" for r in replies)


async def _shared(a, *others) -> str:
    sid = (await a.create_session(title="one writer")).id
    for other in others:
        await wait_for(lambda o=other: converged(a, o, sid), what="the session reaches every device")
    return sid


async def _holds(client, sid: str) -> bool:
    return sid in (await client.sync_status()).leases


async def _forks(client, sid: str) -> list:
    return [s for s in (await client.list_sessions()).sessions if s.metadata.get("forked_from") == sid]


async def test_a_send_to_a_session_another_device_holds_runs_there_once_and_its_sender_sees_it_end(
        pair: list[DaemonProcess], emulator: Emulator):
    laptop, desktop = pair
    emulator.script("anthropic", Reply(text=" ".join(f"w{i}" for i in range(200)), chunk_delay=0.05),
                    Reply(text="answered on the desktop for the laptop"))
    async with laptop.client("laptop") as a, desktop.client("desktop") as b:
        sid = await _shared(a, b)
        await b.send(sid, "the desktop's own turn, long")
        await wait_for(lambda: _holds(b, sid), what="the desktop holds the lease")
        await a.attach(sid)
        with pytest.raises(RpcError) as refused:  # refused by the holder, as it would be here
            await a.send(sid, "   ")
        assert refused.value.code == ErrorCode.INVALID_PARAMS and refused.value.data == {"path": "$.text"}
        assert [msg["role"] for msg in (await history(b, sid))[1]].count("user") == 1  # nothing written
        sent = await a.send(sid, "sent on the laptop")
        progress: list[m.Progress] = []
        while not any(p.kind == "end" for p in progress):
            event = await a.next_event(timeout=90)
            if isinstance(event, m.Progress) and event.turn_id == sent.turn_id:
                progress.append(event)
        assert progress[0].kind == "begin" and progress[-1].kind == "end"
        assert progress[-1].outcome == "complete"
        await wait_for(lambda: _ended(a, sid, 2), what="both replies reach the laptop")
        await wait_for(lambda: converged(a, b, sid), what="the laptop and the desktop agree")
        replies = await _replies(a, sid)
        assert [r.get("status", "complete") for r in replies] == ["complete", "complete"]
        ours = [r for r in replies if r["turn_id"] == sent.turn_id]
        assert len(ours) == 1 and ours[0]["content"][-1]["text"] == "answered on the desktop for the laptop"
        assert _turns(emulator) == 2
        assert sid not in (await a.sync_status()).leases
    assert "took a send from laptop" in desktop.log()
    assert quiet(laptop) and quiet(desktop)


async def test_a_reply_left_streaming_by_a_killed_holder_is_closed_interrupted_once_its_lease_expires(
        trio: list[DaemonProcess], emulator: Emulator):
    laptop, desktop, tablet = trio
    emulator.script("anthropic", Reply(text=" ".join(f"w{i}" for i in range(400)), chunk_delay=0.05,
                                                 thinking=""))
    async with laptop.client("laptop") as a, tablet.client("tablet") as c:
        async with desktop.client("desktop") as b:
            sid = await _shared(a, b, c)
            await b.send(sid, "a long answer, please")

            async def streaming_here() -> bool:
                replies = await _replies(a, sid)
                return bool(replies) and replies[-1].get("status") == "streaming" and "w1" in _text(replies[-1])
            await wait_for(streaming_here, what="the desktop's reply streams on the laptop")
        desktop.kill9()

        async def interrupted(client) -> bool:
            replies = await _replies(client, sid)
            return bool(replies) and replies[-1].get("status") == "interrupted"
        await wait_for(lambda: interrupted(a), timeout=60, what="the reply closed on the laptop")
        await wait_for(lambda: interrupted(c), timeout=60, what="the reply closed on the tablet")
        await wait_for(lambda: converged(a, c, sid), what="the laptop and the tablet agree")
        replies = await _replies(a, sid)
        assert len(replies) == 1 and _text(replies[0]).startswith("w0 w1")
        assert not await _forks(a, sid) and not await _forks(c, sid)
    closers = [d for d in (laptop, tablet) if "left open when its lease expired" in d.log()]
    assert len(closers) == 1  # one device closed it; the other saw the close arrive
    assert quiet(laptop) and quiet(tablet)


async def test_two_devices_sending_to_one_session_at_once_make_two_turns_in_order_and_no_fork(
        pair: list[DaemonProcess], emulator: Emulator):
    laptop, desktop = pair
    emulator.script("anthropic", Reply(text="first answer", chunk_delay=0.02),
                    Reply(text="second answer", chunk_delay=0.02))
    async with laptop.client("laptop") as a, desktop.client("desktop") as b:
        sid = await _shared(a, b)
        sent = await asyncio.gather(a.send(sid, "at once from the laptop"), b.send(sid, "at once from the desktop"))
        await wait_for(lambda: _ended(a, sid, 2), what="two replies on the laptop")
        await wait_for(lambda: converged(a, b, sid), what="the laptop and the desktop agree")
        _, messages = await history(a, sid)
        prompts = [msg for msg in messages if msg["role"] == "user"]
        replies = [msg for msg in messages if msg["role"] == "assistant"]
        assert len(prompts) == len(replies) == 2
        assert [p["turn_id"] for p in prompts] == [r["turn_id"] for r in replies]  # answered in order
        assert all(p["seq"] < r["seq"] for p, r in zip(prompts, replies))
        assert {msg["turn_id"] for msg in messages} == {s.turn_id for s in sent}
        assert all(msg.get("status", "complete") == "complete" for msg in messages)
        assert not await _forks(a, sid) and not await _forks(b, sid)
        assert _turns(emulator) == 2
    assert quiet(laptop) and quiet(desktop)


def _sync_status(daemon: DaemonProcess) -> dict:
    script = Path(sys.executable).parent / "duologue"
    done = subprocess.run([str(script), "sync", "status", "--json"], env=daemon.env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


async def test_sync_status_lists_a_held_lease_until_the_idle_session_releases_it_for_the_next_writer(
        pair: list[DaemonProcess], emulator: Emulator):
    laptop, desktop = pair
    emulator.script("anthropic", Reply(text=" ".join(f"w{i}" for i in range(100)), chunk_delay=0.05),
                    Reply(text="written by the desktop itself"))
    async with laptop.client("laptop") as a, desktop.client("desktop") as b:
        sid = await _shared(a, b)
        await a.send(sid, "the laptop writes")
        await wait_for(lambda: _holds(a, sid), what="the laptop holds the lease")
        assert _sync_status(laptop).get("leases") == [sid]
        assert sid not in _sync_status(desktop).get("leases", [])
        await wait_for(lambda: _ended(b, sid, 1), timeout=90, what="the laptop's reply on the desktop")

        async def released() -> bool:
            return not await _holds(a, sid)
        await wait_for(released, what="the idle laptop released the lease")
        await b.send(sid, "the desktop writes next")
        await wait_for(lambda: _holds(b, sid), what="the desktop took the free lease")
        await wait_for(lambda: _ended(a, sid, 2), what="the desktop's reply on the laptop")
    assert "released the lease of session" in laptop.log()
    assert "took a send" not in laptop.log() + desktop.log()  # each wrote its own turn
    assert quiet(laptop) and quiet(desktop)


async def test_the_lease_of_a_session_deleted_by_its_holder_is_released_once_the_tombstone_is_published(
        pair: list[DaemonProcess], emulator: Emulator):
    laptop, desktop = pair
    emulator.script("anthropic", Reply(text="a turn before the delete"))
    async with laptop.client("laptop") as a, desktop.client("desktop") as b:
        sid = await _shared(a, b)
        await a.send(sid, "the laptop writes")
        await wait_for(lambda: _holds(a, sid), what="the laptop holds the lease")
        await wait_for(lambda: _ended(b, sid, 1), timeout=90, what="the laptop's reply on the desktop")
        await a.delete_session(sid)

        async def released() -> bool:
            return not await _holds(a, sid)
        await wait_for(released, what="the laptop released the deleted session's lease")

        async def gone() -> bool:
            return await history(b, sid) is None
        await wait_for(gone, what="the deletion reaches the desktop")
    assert quiet(laptop) and quiet(desktop)
