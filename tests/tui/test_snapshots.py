"""Screens of the terminal chat at 80x24 and 120x40, kept in tests/tui/snapshots/.

Each test drives a real daemon on the emulator (whose default replies are
deterministic) to a known state and compares the screen's text with the kept one.
After an intended change: ``DUOLOGUE_UPDATE_SNAPSHOTS=1 .venv/bin/pytest tests/tui``,
then review the .txt (and .svg) diff.
"""

from __future__ import annotations

import pytest
from tui_support import assert_snapshot, open_app, settle, turn_done, until

from duologue.protocol import methods as m

TASKS = [
    m.TaskInput(content="Read the borrow checker error", status="completed"),
    m.TaskInput(content="Find who holds the reference", status="in_progress",
                active_form="Finding who holds the mutable reference to the cache entry"),
    m.TaskInput(content="Propose a fix"),
]


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
async def test_chat_screen(daemon, make_app, size):
    async with daemon.client("tui") as c, daemon.client("editor") as editor:
        async with open_app(make_app, c, size=size) as (app, pilot):
            sid = app.session.id
            await editor.update_tasks(sid, TASKS)
            await until(pilot, lambda: app.tasks.tasks, what="the tasks")
            await pilot.press(*"why does the borrow checker reject this?", "enter")
            await until(pilot, turn_done(app), what="the first reply")
            await pilot.press("f2", "6")
            await until(pilot, lambda: app.transcript.switches, what="the switch")
            await editor.send(sid, "and with two threads?")
            await until(pilot, turn_done(app, 2), what="the reply to the editor")
            await settle(pilot)
            assert_snapshot(app, f"chat-{size[0]}x{size[1]}")


async def test_model_selector_focused_at_80_columns(daemon, make_app):
    async with daemon.client("tui") as c:
        async with open_app(make_app, c, size=(80, 24)) as (app, pilot):
            await pilot.press("f2", "right", "right")
            await until(pilot, lambda: app.query_one("#model-info").display, what="the model description")
            await settle(pilot)
            assert_snapshot(app, "models-focused-80x24")


async def test_session_picker_at_80_columns(daemon, make_app):
    async with daemon.client("tui") as c:
        await c.create_session(project_id="/home/ada/src/other", title="Flaky CI on the release branch")
        await c.create_session(project_id="/home/ada/src/cache", title="Cache eviction design",
                               model="flash")
        await c.create_session(project_id="/home/ada/src/cache", title="Why does this not compile?")
        async with open_app(make_app, c, size=(80, 24)) as (app, pilot):
            await pilot.press("ctrl+o")
            await until(pilot, lambda: app.screen.query("#picker-list"), what="the picker")
            await settle(pilot)
            assert_snapshot(app, "picker-80x24")
