"""Devices on different duologue versions: every change published carries its store
schema version, and a follower stops right before a change of a newer version than
it reads (never misreading it, never passing it over) and says so in sync/status."""

from __future__ import annotations

import msgspec
from support import DaemonProcess
from sync_support import NatsServer, converged, wait_for

from duologue.daemon.ids import new_id
from duologue.daemon.store import SCHEMA_VERSION
from duologue.daemon.sync import wire
from duologue.daemon.sync.link import SCHEMA_HEADER


async def _publish_from_a_newer_version(server: NatsServer, sid: str) -> str:
    """A session created by a device running a newer duologue; returns its id."""
    import nats

    nc = await nats.connect(server.url)
    try:
        js = nc.jetstream()
        last = await js.get_last_msg(wire.STREAM, wire.subject(sid))
        assert (last.headers or {}).get(SCHEMA_HEADER) == str(SCHEMA_VERSION)  # ours say what they are
        theirs = wire.decode(last.data)
        future = msgspec.structs.replace(theirs, device="future", after=0, events=[], messages=[],
                                         session=msgspec.structs.replace(theirs.session, id=new_id()))
        await js.publish(wire.subject(future.session.id), wire.encode(future), stream=wire.STREAM,
                         headers={SCHEMA_HEADER: str(SCHEMA_VERSION + 1),
                                  "Nats-Msg-Id": f"{future.session.id}:{future.session.last_seq}"})
        return future.session.id
    finally:
        await nc.close()


async def _stopped(client) -> str | None:
    error = (await client.sync_status()).error
    return error if error and "newer duologue" in error else None


async def _held(client, sid: str) -> bool:
    return sid in {s.id for s in (await client.list_sessions()).sessions}


async def test_a_change_from_a_newer_version_stops_following_before_it_and_status_says_to_upgrade(
        nats_server: NatsServer, laptop: DaemonProcess, desktop: DaemonProcess):
    async with laptop.client("laptop") as a, desktop.client("desktop") as b:
        first = (await a.create_session(title="both versions read this")).id
        await wait_for(lambda: converged(a, b, first), what="the desktop holds the first session")
        future = await _publish_from_a_newer_version(nats_server, first)
        later = (await a.create_session(title="written after the newer change")).id
        said = await wait_for(lambda: _stopped(b), what="the desktop's status naming the newer version")
        assert f"store schema {SCHEMA_VERSION + 1}" in said and "upgrade duologue" in said
        assert (await b.sync_status()).follow_lag >= 1
        assert not await _held(b, future) and not await _held(b, later)  # nothing past it, in order
        assert await _held(a, later)  # the laptop's own work goes on
    desktop.restart()  # the followed mark stayed before the newer change: it stops there again
    async with desktop.client("desktop") as b:
        await wait_for(lambda: _stopped(b), what="stopped again after a restart")
        assert not await _held(b, future) and not await _held(b, later)
        assert await _held(b, first)
    assert "written by a newer duologue" in desktop.log()
