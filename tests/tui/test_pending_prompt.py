"""Nothing typed in the chat is lost while the daemon is away.

- A prompt sent while the daemon is down stays on screen marked pending, and is kept
  in the session's draft on disk, until the daemon acknowledges it; when the daemon
  returns it is sent, the mark goes and the draft is emptied.
- Quitting before that keeps it: the next chat on the session puts it back in the
  input and says so.
- After a daemon restart, a reply it interrupted is not shown as running.
"""

from __future__ import annotations

import json
from pathlib import Path

from tui_support import open_app, replies, until

from duologue.clients.drafts import FILE
from duologue.daemon.emulator import Reply


def _draft(daemon) -> dict:
    path = Path(daemon.paths.state_dir) / FILE
    return json.loads(path.read_text()) if path.exists() else {}


async def test_a_prompt_sent_while_the_daemon_is_down_stays_pending_then_goes(daemon, make_app):
    async with daemon.client("tui") as c:
        async with open_app(make_app, c, size=(100, 30)) as (app, pilot):
            sid = app.session.id
            daemon.stop()
            await until(pilot, lambda: "connection was lost" in app.transcript.plain(), what="the drop")
            await pilot.press(*"typed while down", "enter")
            await until(pilot, lambda: "⧗ pending" in app.transcript.plain(), what="the pending mark")
            assert app.query_one("#prompt").value == ""
            assert _draft(daemon)[sid]["pending"][0]["text"] == "typed while down"
            daemon.start()
            await until(pilot, lambda: "⧗ pending" not in app.transcript.plain(), timeout=40,
                        what="the acknowledgement")
            await until(pilot, lambda: any("typed while down" in v.text for v in replies(app)), timeout=30,
                        what="the reply to it")
            assert sid not in _draft(daemon)


async def test_quitting_before_the_daemon_returns_keeps_the_prompt_for_the_next_chat(daemon, make_app):
    async with daemon.client("tui") as c:
        async with open_app(make_app, c, size=(100, 30)) as (app, pilot):
            sid = app.session.id
            daemon.stop()
            await until(pilot, lambda: "connection was lost" in app.transcript.plain(), what="the drop")
            await pilot.press(*"do not lose me", "enter")
            await until(pilot, lambda: "⧗ pending" in app.transcript.plain(), what="the pending mark")
            await pilot.press(*"half typed")
    assert _draft(daemon)[sid]["pending"][0]["text"] == "do not lose me"
    assert _draft(daemon)[sid]["input"] == "half typed"
    daemon.start()
    async with daemon.client("tui2") as c:
        async with open_app(make_app, c, size=(100, 30), session=sid) as (app, pilot):
            assert app.query_one("#prompt").value == "do not lose me half typed"
            assert "never reached the daemon" in app.transcript.plain()


async def test_after_a_restart_an_interrupted_reply_is_not_shown_running(live, emulator, make_app):
    emulator.script("anthropic", Reply(chunks=[f"w{i} " for i in range(400)], chunk_delay=0.05))
    async with live.client("tui") as c:
        async with open_app(make_app, c, size=(100, 30)) as (app, pilot):
            await pilot.press(*"a long one", "enter")
            await until(pilot, lambda: app.running and replies(app) and replies(app)[-1].text,
                        what="the reply streaming")
            live.kill9()
            live.start()
            await until(pilot, lambda: "reconnected" in app.transcript.plain(), timeout=30, what="the reconnection")
            await until(pilot, lambda: not app.running, timeout=90, what="the progress line to stop running")
            # the replay after the reconnection brings the reply's end: it may come after
            # the progress line learned that nothing runs
            await until(pilot, lambda: replies(app)[-1].message.status == "interrupted", timeout=90,
                        what="the reply marked interrupted")
