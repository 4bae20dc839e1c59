"""The chat's feed on a real daemon: when the daemon restarts, the followed session is
attached again from the last seq passed on, and the screen gets each later event once."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

from relay_support import NewerDaemon

from duologue.clients.tui.feed import SessionFeed
from duologue.protocol import methods as m
from support import DaemonProcess


class Screen:
    """A sink that records what the feed passes on."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self.connection: list[bool] = []
        self.lost: list[str] = []

    def session_event(self, event: Any) -> None:
        self.events.append(event)

    def connection_changed(self, up: bool) -> None:
        self.connection.append(up)

    def session_lost(self, reason: str) -> None:
        self.lost.append(reason)

    def titles(self) -> list[str]:
        return [e.title for e in self.events if isinstance(e, m.SessionRenamed)]

    def seqs(self) -> list[int]:
        return [e.seq for e in self.events if isinstance(e, m.Event)]


async def until(predicate, what: str, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


async def test_the_feed_reattaches_when_the_daemon_restarted_behind_a_relay(daemon: DaemonProcess):
    """The connection never drops (a relay keeps it up): only the daemon's new
    instance_id says that the subscription is gone."""
    async with daemon.client("writer") as writer:
        session = await writer.create_session(title="chat")
        await writer.rename_session(session.id, "one")
        with NewerDaemon(daemon) as relay:
            async with daemon.client("chat") as c:
                screen = Screen()
                feed = SessionFeed(c, screen)
                feed.events.quiet_check_s = 0.3
                run = asyncio.create_task(feed.run())  # as the app does: before it opens a session
                feed.follow(session.id, 1)
                await c.attach(session.id, since_seq=1)
                try:
                    await until(lambda: screen.titles() == ["one"], "the replay")
                    await asyncio.to_thread(relay.restart_daemon)
                    async with daemon.client("writer again") as again:
                        await again.rename_session(session.id, "two")
                        await again.rename_session(session.id, "three")
                    await until(lambda: screen.titles()[-1:] == ["three"], "the renames after the restart")
                    assert screen.titles() == ["one", "two", "three"]
                    assert screen.seqs() == [2, 3, 4]
                    assert screen.connection == [True]  # reattached; the connection never dropped
                    assert feed.last_seq == 4
                finally:
                    run.cancel()
                    await asyncio.gather(run, return_exceptions=True)


async def test_the_screen_is_told_when_the_restarted_daemon_no_longer_has_the_session(daemon: DaemonProcess):
    """The store was replaced while the daemon was down (a restored backup, another
    machine's copy): the feed's reattach is refused, and the screen says so instead of
    waiting for events that will never come."""
    async with daemon.client("chat") as c:
        session = await c.create_session(title="soon gone")
        screen = Screen()
        feed = SessionFeed(c, screen)
        run = asyncio.create_task(feed.run())
        feed.follow(session.id, session.last_seq)
        await c.attach(session.id, since_seq=session.last_seq)
        try:
            daemon.stop()
            shutil.rmtree(Path(daemon.paths.store_dir))
            daemon.start()
            await until(lambda: screen.lost, "the refused reattach")
            assert session.id in screen.lost[0] and screen.events == []
        finally:
            run.cancel()
            await asyncio.gather(run, return_exceptions=True)
