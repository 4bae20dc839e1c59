"""SessionEvents on a real daemon: subscriptions belong to a connection, so after a
daemon restart, a connection ZeroMQ closed and opened again, or a restart that only
the daemon's instance_id reveals, every followed session is attached again from
the last seq seen and each stored event comes exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from relay_support import NewerDaemon

from duologue.clients.rpc.client import Disconnected
from duologue.clients.rpc.session_events import Resumed, SessionEvents
from duologue.protocol import methods as m
from support import DaemonProcess

MAX_FRAME = m.MAX_FRAME_BYTES


class Collected:
    """Everything a SessionEvents yields, read by a task of the test."""

    def __init__(self, events: SessionEvents):
        self.items: list[Any] = []
        self._task = asyncio.create_task(self._read(events))

    async def _read(self, events: SessionEvents) -> None:
        async for item in events.events():
            self.items.append(item)

    async def until(self, predicate: Callable[[Any], bool], what: str, timeout: float = 30.0) -> Any:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            found = next((item for item in self.items if predicate(item)), None)
            if found is not None:
                return found
            if self._task.done():
                self._task.result()
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"no {what} within {timeout}s; got {self.items[-10:]}")
            await asyncio.sleep(0.02)

    def seqs(self, session_id: str) -> list[int]:
        return [item.seq for item in self.items
                if isinstance(item, m.Event) and not isinstance(item, m.SessionDeleted)
                and item.session_id == session_id]

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


def renamed(title: str) -> Callable[[Any], bool]:
    return lambda item: isinstance(item, m.SessionRenamed) and item.title == title


async def test_a_restart_reattaches_every_session_and_replays_what_was_missed_once(daemon: DaemonProcess):
    async with daemon.client("follower") as c:
        a, b = (await c.create_session(title="a")).id, (await c.create_session(title="b")).id
        events = SessionEvents(c)
        await events.attach(a, since_seq=0)
        await events.attach(b, since_seq=0)
        seen = Collected(events)
        try:
            await seen.until(lambda item: isinstance(item, m.SessionCreated) and item.session_id == b, "b's start")
            await asyncio.to_thread(daemon.restart)
            async with daemon.client("writer") as writer:  # maybe before the follower reattached
                await writer.rename_session(a, "a again")
                await writer.rename_session(b, "b again")
            resumed = await seen.until(lambda item: isinstance(item, Resumed), "the resumption")
            assert resumed.restarted
            await seen.until(renamed("a again"), "a's rename")
            await seen.until(renamed("b again"), "b's rename")
            assert seen.seqs(a) == [1, 2] and seen.seqs(b) == [1, 2]
            assert any(isinstance(item, Disconnected) for item in seen.items)
        finally:
            await seen.close()


async def test_an_oversized_frame_cuts_the_connection_and_the_session_is_followed_again(daemon: DaemonProcess):
    async with daemon.client("follower") as c, daemon.client("writer") as writer:
        sid = (await c.create_session(title="big")).id
        events = SessionEvents(c)
        await events.attach(sid, since_seq=0)
        seen = Collected(events)
        try:
            await c.send_raw(b'"' + b"x" * MAX_FRAME + b'"')  # the daemon closes the connection
            resumed = await seen.until(lambda item: isinstance(item, Resumed), "the resumption")
            assert not resumed.restarted  # the same daemon: only the connection was new
            await writer.rename_session(sid, "after the reconnect")
            await seen.until(renamed("after the reconnect"), "the rename after the reconnect")
            assert seen.seqs(sid) == [1, 2]
        finally:
            await seen.close()


async def test_a_restart_behind_a_relay_is_noticed_by_the_instance_id(daemon: DaemonProcess):
    async with daemon.client("writer") as writer:
        sid = (await writer.create_session(title="relayed")).id
        with NewerDaemon(daemon) as relay:
            async with daemon.client("follower") as c:  # through the relay
                events = SessionEvents(c, quiet_check_s=0.3)
                await events.attach(sid, since_seq=0)
                assert relay.clients == 1
                seen = Collected(events)
                try:
                    await seen.until(lambda item: isinstance(item, m.SessionCreated), "the start")
                    await asyncio.to_thread(relay.restart_daemon)
                    async with daemon.client("writer again") as again:
                        await again.rename_session(sid, "behind the relay")
                    await seen.until(renamed("behind the relay"), "the rename after the restart")
                    assert [type(item) for item in seen.items if not isinstance(item, m.Event)] == [Resumed]
                    assert seen.seqs(sid) == [1, 2]
                finally:
                    await seen.close()
