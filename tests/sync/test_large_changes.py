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
