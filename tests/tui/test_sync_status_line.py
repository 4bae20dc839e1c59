"""The chat's status line says when its session is not in sync: the daemon cannot
reach NATS, the session's changes wait to be published, or it diverged; in sync (or
without [sync]) it adds nothing."""

from __future__ import annotations

from pathlib import Path

from sync_support import NatsServer, sync_daemon
from tui_support import open_app, until

from duologue.clients.tui.status_line import StatusLine, sync_text
from duologue.protocol import methods as m

SID = "01SESSION"


def _status(**kwargs) -> m.SyncStatusResult:
    return m.SyncStatusResult(**{"configured": True, "connected": True, "server": "nats://hub:4222",
                                 "device_name": "laptop", **kwargs})


def test_sync_words_name_what_keeps_the_session_out_of_sync():
    assert sync_text(m.SyncStatusResult(configured=False), SID) is None
    assert sync_text(_status(), SID) is None
    assert sync_text(_status(connected=False, error="no NATS server answered"), SID) == "sync: offline"
    assert sync_text(_status(sessions=[m.SyncSessionStatus(session_id=SID, unpublished=3)]), SID) == "sync: 3 unsent"
    assert sync_text(_status(sessions=[m.SyncSessionStatus(session_id=SID, unpublished=2, diverged_after_seq=14)]),
                     SID) == "sync: diverged after #14"
    assert sync_text(_status(sessions=[m.SyncSessionStatus(session_id=SID, missing_after_seq=9)]),
                     SID) == "sync: history missing"
    assert sync_text(_status(sessions=[m.SyncSessionStatus(session_id="01OTHER", unpublished=1)]), SID) is None


def _line(app) -> str:
    return app.query_one(StatusLine).render().plain


async def test_the_status_line_shows_offline_when_nats_goes_and_nothing_once_back_in_sync(
        tmp_path: Path, make_app):
    server = NatsServer(tmp_path / "nats").start()
    daemon = sync_daemon(tmp_path / "home", server.url, "laptop").start()
    try:
        async with daemon.client("tui") as c:
            async with open_app(make_app, c, size=(100, 24)) as (app, pilot):
                await until(pilot, lambda: app.query_one(StatusLine).sync is None and "ctx" in _line(app),
                            what="the line in sync")
                server.stop()
                await until(pilot, lambda: "sync: offline" in _line(app), timeout=30, what="offline on the line")
                server.start()
                await until(pilot, lambda: "sync:" not in _line(app), timeout=30, what="back in sync")
    finally:
        daemon.stop()
        server.stop()
