"""Faults lose nothing: a daemon killed with -9 catches up from JetStream, and
while NATS is down every daemon keeps serving locally and converges once it is back."""

from __future__ import annotations

from support import DaemonProcess
from sync_support import NatsServer, converged, history, quiet, wait_for


async def _reply_count(client, sid: str) -> int:
    got = await history(client, sid)
    return 0 if got is None else sum(1 for msg in got[1]
                                     if msg["role"] == "assistant" and msg.get("status") != "streaming")


async def _turn(client, sid: str, text: str, replies: int) -> None:
    await client.send(sid, text)
    await wait_for(lambda: _at_least(client, sid, replies), what=f"reply {replies}")


async def _at_least(client, sid: str, n: int) -> bool:
    return await _reply_count(client, sid) >= n


async def test_a_daemon_killed_with_9_catches_up_what_the_other_wrote_meanwhile(
        laptop: DaemonProcess, desktop: DaemonProcess):
    async with laptop.client("laptop") as a:
        sid = (await a.create_session(title="kill")).id
        await _turn(a, sid, "before the kill", 1)
        async with desktop.client("desktop") as b:
            await wait_for(lambda: converged(a, b, sid), what="the desktop holds the first turn")
        desktop.kill9()
        await _turn(a, sid, "while the desktop is dead", 2)
        await _turn(a, sid, "and once more", 3)
        desktop.start()
        async with desktop.client("desktop") as b:
            await wait_for(lambda: converged(a, b, sid), what="the desktop caught up after kill -9")
            assert await _reply_count(b, sid) == 3
    assert quiet(laptop) and quiet(desktop)


async def test_nats_stopped_and_restarted_loses_nothing(
        nats_server: NatsServer, laptop: DaemonProcess, desktop: DaemonProcess):
    async with laptop.client("laptop") as a, desktop.client("desktop") as b:
        sid = (await a.create_session(title="outage")).id
        await _turn(a, sid, "before the outage", 1)
        await wait_for(lambda: converged(a, b, sid), what="the desktop holds the first turn")
        nats_server.stop()
        await _turn(a, sid, "written while NATS is down", 2)  # served locally all the same
        other = (await b.create_session(title="made on the desktop offline")).id
        nats_server.start()
        offline_end = (await history(a, sid))[0].last_seq
        await wait_for(lambda: converged(a, b, sid, last_seq=offline_end),
                       what="the desktop got the laptop's offline turn")
        await wait_for(lambda: converged(a, b, other), what="the laptop got the desktop's offline session")
        assert await _reply_count(b, sid) == 2
    assert quiet(laptop) and quiet(desktop)
