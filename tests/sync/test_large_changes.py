"""A change larger than the server's ``max_payload`` replicates whole: it is stored
as a JetStream object (in chunks under the limit) that its session's message names,
and the follower reads it back, in both directions and after a restart."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support import DaemonProcess
from sync_support import NatsServer, converged, history, quiet, sync_daemon, wait_for

MAX_PAYLOAD = 16 * 1024


@pytest.fixture
def small_server(tmp_path: Path) -> Iterator[NatsServer]:
    conf = tmp_path / "nats.conf"
    conf.write_text(f"max_payload: {MAX_PAYLOAD}\n")
    server = NatsServer(tmp_path / "nats", extra=["-c", str(conf)]).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def devices(tmp_path: Path, small_server: NatsServer) -> Iterator[tuple[DaemonProcess, DaemonProcess]]:
    pair = [sync_daemon(tmp_path / name, small_server.url, name).start() for name in ("laptop", "desktop")]
    try:
        yield pair[0], pair[1]
    finally:
        for d in pair:
            d.stop()


async def _replies(client, sid: str) -> int:
    got = await history(client, sid)
    return 0 if got is None else sum(1 for msg in got[1] if msg["role"] == "assistant"
                                     and msg.get("status") != "streaming")


async def _gone(client, sid: str) -> bool:
    return await history(client, sid) is None


async def test_a_change_larger_than_max_payload_reaches_the_other_machine_whole(
        devices: tuple[DaemonProcess, DaemonProcess]):
    laptop, desktop = devices
    prompt = "".join(f"line {i} of a long pasted log\n" for i in range(3000))  # ~90 KB, 5x the limit
    assert len(prompt) > 5 * MAX_PAYLOAD
    async with laptop.client("laptop") as a, desktop.client("desktop") as b:
        sid = (await a.create_session(title="large")).id
        await a.send(sid, prompt)
        await wait_for(lambda: _replies(a, sid), what="the laptop's reply")
        await wait_for(lambda: converged(a, b, sid), what="the desktop holds the large prompt")
        got = await history(b, sid)
        assert got is not None and got[1][0]["content"][0]["text"] == prompt
    desktop.restart()
    async with laptop.client("laptop") as a, desktop.client("desktop") as b:
        await b.send(sid, prompt + "and once more, from the desktop")
        async def answered_twice() -> bool:
            return await _replies(b, sid) == 2

        await wait_for(answered_twice, what="the desktop's reply")
        await wait_for(lambda: converged(a, b, sid), what="the laptop holds the desktop's turn")
    assert quiet(laptop) and quiet(desktop)


async def _objects_of(server: NatsServer, sid: str) -> list[str]:
    """The names of the objects the server keeps for ``sid``'s large changes."""
    import nats
    from nats.js import errors as js_errors

    from duologue.daemon.sync.link import LARGE

    nc = await nats.connect(server.url)
    try:
        try:
            objects = await (await nc.jetstream().object_store(LARGE)).list(ignore_deletes=True)
        except js_errors.NotFoundError:
            return []
        return [info.name for info in objects if info.name.startswith(sid + ":")]
    finally:
        await nc.close()


async def test_deleting_a_session_removes_the_objects_of_its_large_changes_from_the_server(
        small_server: NatsServer, devices: tuple[DaemonProcess, DaemonProcess]):
    laptop, desktop = devices
    prompt = "".join(f"line {i} of a long pasted log\n" for i in range(3000))
    async with laptop.client("laptop") as a, desktop.client("desktop") as b:
        sid = (await a.create_session(title="large, then deleted")).id
        kept = (await a.create_session(title="large, kept")).id
        for session_id in (sid, kept):
            await a.send(session_id, prompt)
            await wait_for(lambda s=session_id: _replies(a, s), what="the laptop's reply")
            await wait_for(lambda s=session_id: converged(a, b, s), what="the desktop holds the large prompt")
        assert await _objects_of(small_server, sid) and await _objects_of(small_server, kept)
        await a.delete_session(sid)
        await wait_for(lambda: _gone(b, sid), what="deleted on the desktop")

        async def dropped() -> bool:
            return await _objects_of(small_server, sid) == []

        await wait_for(dropped, what="the deleted session's objects removed")
        assert await _objects_of(small_server, kept)  # another session's stay: its messages name them
    assert quiet(laptop) and quiet(desktop)

