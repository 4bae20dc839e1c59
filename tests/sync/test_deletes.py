"""A deletion replicates: `session/delete` on one machine deletes the session on the
others (a tombstone in the stream), whose clients are told with `session/deleted`;
what a machine wrote while apart that the deleting one never saw is kept in a fork."""

from __future__ import annotations

from support import DaemonProcess
from sync_support import NatsServer, converged, history, quiet, wait_for

from duologue.daemon.sync import wire
from duologue.protocol import methods as m


async def _gone(client, sid: str) -> bool:
    return await history(client, sid) is None


async def _replied(client, sid: str) -> bool:
    got = await history(client, sid)
    return got is not None and any(msg["role"] == "assistant" and msg.get("status") != "streaming"
                                   for msg in got[1])


async def test_a_session_deleted_on_one_machine_is_deleted_on_the_other_and_its_clients_told(
        nats_server: NatsServer, laptop: DaemonProcess, desktop: DaemonProcess):
    async with laptop.client("laptop") as a, desktop.client("desktop") as b:
        sid = (await a.create_session(title="to delete")).id
        await a.send(sid, "a turn before the delete")
        await wait_for(lambda: _replied(a, sid), what="the laptop's reply")
        await wait_for(lambda: converged(a, b, sid), what="the desktop holds the session")
        await b.attach(sid)

        await a.delete_session(sid)
        await wait_for(lambda: _gone(b, sid), what="the session deleted on the desktop")
        while not isinstance(event := await b.next_event(timeout=30), m.SessionDeleted):
            pass
        assert event.session_id == sid
        assert sid not in {s.id for s in (await b.list_sessions()).sessions}
        left = await wait_for(lambda: _on_the_server(nats_server, sid), what="the subject purged")
        assert left == [True]  # only the tombstone
    desktop.restart()  # the deletion was followed for good: a restart does not bring it back
    async with desktop.client("desktop") as b:
        status = await wait_for(lambda: _connected(b), what="the desktop connected again")
        assert status.sessions == []
        assert await _gone(b, sid)
    assert quiet(laptop) and quiet(desktop)


async def _on_the_server(server: NatsServer, sid: str) -> list[bool] | None:
    """Whether each message the server keeps of the session is a tombstone, once
    it keeps one message only."""
    import nats

    nc = await nats.connect(server.url)
    try:
        js = nc.jetstream()
        info = await js.stream_info(wire.STREAM, subjects_filter=wire.subject(sid))
        if (info.state.subjects or {}).get(wire.subject(sid)) != 1:
            return None
        last = await js.get_last_msg(wire.STREAM, wire.subject(sid))
        return [wire.decode(last.data).deleted]
    finally:
        await nc.close()


async def _connected(client):
    status = await client.sync_status()
    return status if status.connected and status.follow_lag == 0 else None


async def _unsent(client) -> bool:
    status = await client.sync_status()
    return status.connected and not status.sessions


async def test_writes_made_apart_on_a_session_deleted_elsewhere_are_kept_in_a_fork(
        nats_server: NatsServer, laptop: DaemonProcess, desktop: DaemonProcess):
    async with laptop.client("laptop") as a, desktop.client("desktop") as b:
        sid = (await a.create_session(title="deleted apart")).id
        await wait_for(lambda: converged(a, b, sid), what="the desktop holds the session")
        nats_server.stop()
        await b.send(sid, "written on the desktop while apart")
        await wait_for(lambda: _replied(b, sid), what="the desktop's offline reply")
        await a.delete_session(sid)
    desktop.stop()  # its writes wait in its outbox; the laptop's deletion reaches the stream first
    nats_server.start()
    async with laptop.client("laptop") as a:
        await wait_for(lambda: _unsent(a), what="the laptop published its deletion")
    desktop.start()
    async with laptop.client("laptop") as a, desktop.client("desktop") as b:
        await wait_for(lambda: _gone(b, sid), what="the session deleted on the desktop")

        async def fork_on(client):
            listed = await client.list_sessions()
            return next((s for s in listed.sessions if s.metadata.get("forked_from") == sid), None)

        fork = await wait_for(lambda: fork_on(b), what="the desktop's writes in a fork")
        await wait_for(lambda: converged(a, b, fork.id), what="the fork reached the laptop")
        prompts = [msg["content"][0]["text"] for msg in (await history(a, fork.id))[1] if msg["role"] == "user"]
        assert prompts == ["written on the desktop while apart"]
        assert await _gone(a, sid)


async def test_a_session_written_and_deleted_apart_is_deleted_everywhere_with_what_the_other_published(
        nats_server: NatsServer, laptop: DaemonProcess, desktop: DaemonProcess):
    async with laptop.client("laptop") as a, desktop.client("desktop") as b:
        sid = (await a.create_session(title="written, then deleted")).id
        await wait_for(lambda: converged(a, b, sid), what="the desktop holds the session")
        nats_server.stop()
        await a.send(sid, "written on the laptop, then deleted there")
        await wait_for(lambda: _replied(a, sid), what="the laptop's offline reply")
        await a.delete_session(sid)
        await b.send(sid, "written on the desktop while apart")
        await wait_for(lambda: _replied(b, sid), what="the desktop's offline reply")
    laptop.stop()  # the desktop's turn reaches the stream first; the laptop's changes then follow another's
    nats_server.start()
    async with desktop.client("desktop") as b:
        await wait_for(lambda: _unsent(b), what="the desktop published its turn")
    laptop.start()
    async with laptop.client("laptop") as a, desktop.client("desktop") as b:
        await wait_for(lambda: _gone(b, sid), what="the session deleted on the desktop")
        await wait_for(lambda: _unsent(a), what="the laptop's outbox empty (its deleted changes passed over)")
        assert await _gone(a, sid)
        assert [s for s in (await b.list_sessions()).sessions if s.metadata.get("forked_from") == sid] == []
