"""The chat's prompt against a real daemon: pastes, newlines, history, completion and
``@file`` mentions. One daemon serves the module (each test in its own project
directory, so sessions and histories do not mix)."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import DaemonProcess
from textual import events
from tui_support import open_app, rows, settle, until
from tui_support import turn_done as done

from duologue.clients.tui.history import history_path
from duologue.protocol.entities import CodeContextBlock

REPLY_S = 90.0
"""A reply on a loaded machine (a daemon and an emulator per worker) can take a while."""


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    d = DaemonProcess(tmp_path_factory.mktemp("home")).start()
    try:
        yield d
    finally:
        d.stop()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / "src").mkdir(parents=True)
    (root / "src" / "lib.rs").write_text("fn a() {}\nfn b() {}\nfn c() {}\n")
    (root / "src" / "main.rs").write_text("fn main() {}\n")
    (root / "README.md").write_text("# proj\n")
    return root


async def stored_prompts(c, sid: str) -> list:
    got = await c.get_session(sid)
    return [msg for msg in got.messages if msg.role == "user"]


async def test_a_400_line_paste_is_one_chip_and_is_sent_whole(daemon, make_app, project):
    pasted = "".join(f"line {i}: x = {i}\n" for i in range(1, 401))
    async with daemon.client("tui") as c:
        async with open_app(make_app, c, project=str(project)) as (app, pilot):
            prompt = app.prompt
            app.post_message(events.Paste(pasted))  # as a bracketed paste comes: to the app
            await until(pilot, lambda: prompt.pastes, what="the paste")
            assert prompt.text == "[pasted 400 lines #1]"
            await pilot.press(*" why?", "enter")
            await until(pilot, done(app), timeout=REPLY_S, what="the reply")
            [sent] = await stored_prompts(c, app.session.id)
            assert sent.text == pasted + " why?"
            assert sent.text.count("\n") == 400 and prompt.text == ""
            # a prompt that long is shown folded; ctrl+g opens it
            view = app.transcript.views[sent.id]
            await settle(pilot)
            assert view.folded and view.size.height == 1 + 16 + 1  # head, 16 rows, the fold line
            assert any("401 lines, folded" in row for row in rows(view))
            await pilot.press("ctrl+g")
            await until(pilot, lambda: not view.folded, what="the message to unfold")
            await settle(pilot)
            assert view.size.height > 400


async def test_a_short_paste_is_inserted_with_its_newlines_and_a_chip_expands(daemon, make_app, project):
    async with daemon.client("tui") as c:
        async with open_app(make_app, c, project=str(project)) as (app, pilot):
            prompt = app.prompt
            app.post_message(events.Paste("one\r\ntwo\nthree"))
            await until(pilot, lambda: prompt.text, what="the paste")
            assert prompt.text == "one\ntwo\nthree" and not prompt.pastes
            prompt.value = ""
            app.post_message(events.Paste("y" * 2500))
            await until(pilot, lambda: prompt.pastes, what="the long line")
            assert prompt.text == "[pasted 2500 chars #1]"
            await pilot.press("ctrl+g")
            assert prompt.text == "y" * 2500 and not prompt.pastes


async def test_ctrl_j_and_shift_enter_insert_newlines_and_enter_sends(daemon, make_app, project):
    async with daemon.client("tui") as c:
        async with open_app(make_app, c, project=str(project)) as (app, pilot):
            await pilot.press("a", "ctrl+j", "b", "shift+enter", "c")
            assert app.prompt.text == "a\nb\nc"
            assert app.prompt.has_focus
            await pilot.press("enter")
            await until(pilot, done(app), timeout=REPLY_S, what="the reply")
            [sent] = await stored_prompts(c, app.session.id)
            assert sent.text == "a\nb\nc"


async def test_history_recalls_prompts_across_chats_in_a_private_file(daemon, make_app, project):
    async with daemon.client("tui") as c:
        async with open_app(make_app, c, project=str(project)) as (app, pilot):
            await pilot.press(*"first question", "enter")
            await until(pilot, done(app), timeout=REPLY_S, what="the first reply")
            await pilot.press(*"second", "ctrl+j", *"on two lines", "enter")
            await until(pilot, done(app, 2), timeout=REPLY_S, what="the second reply")
        path = history_path(c.paths.state_dir, str(project))
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        async with open_app(make_app, c, project=str(project)) as (app, pilot):
            prompt = app.prompt
            await pilot.press(*"draft")
            await pilot.press("up")
            assert prompt.text == "second\non two lines"
            assert prompt.cursor_location == (1, len("on two lines"))
            await pilot.press("up")  # not on the first line: the cursor moves up
            assert prompt.text == "second\non two lines" and prompt.cursor_location[0] == 0
            await pilot.press("up")
            assert prompt.text == "first question"
            await pilot.press("down")
            assert prompt.text == "second\non two lines"
            await pilot.press("down", "down")
            assert prompt.text == "draft"
    async with daemon.client("tui") as c:  # another project has its own history
        async with open_app(make_app, c, project=str(project / "src")) as (app, pilot):
            await pilot.press("up")
            assert app.prompt.text == ""


async def test_tab_completes_commands_shows_usage_and_never_moves_focus(daemon, make_app, project):
    async with daemon.client("tui") as c:
        async with open_app(make_app, c, project=str(project)) as (app, pilot):
            prompt, hint = app.prompt, app.query_one("#hint")
            await pilot.press(*"/s", "tab")
            assert prompt.text == "/s" and prompt.has_focus
            assert "/sessions" in hint.content.plain and "/switch MODEL" in hint.content.plain
            await pilot.press(*"w", "tab")
            assert prompt.text == "/switch " and hint.content.plain == "/switch MODEL"
            await pilot.press("enter")
            await until(pilot, lambda: "usage: /switch MODEL" in app.transcript.plain(), what="the usage")
            assert "unknown command" not in app.transcript.plain()
            # nothing to complete: tab indents, and keys typed after it stay in the prompt
            await pilot.press("x", "tab", "y")
            assert prompt.text == "x   y" and prompt.has_focus


async def test_tab_completes_at_paths_from_the_project_root(daemon, make_app, project):
    async with daemon.client("tui") as c:
        async with open_app(make_app, c, project=str(project)) as (app, pilot):
            prompt, hint = app.prompt, app.query_one("#hint")
            await pilot.press(*"explain @s", "tab")
            assert prompt.text == "explain @src/"
            await pilot.press("tab")
            assert prompt.text == "explain @src/" and hint.content.plain == "lib.rs  main.rs"
            await pilot.press("l", "tab")
            assert prompt.text == "explain @src/lib.rs " and not hint.display


async def test_a_mention_attaches_the_file_range_as_code_context(daemon, make_app, project):
    async with daemon.client("tui") as c:
        async with open_app(make_app, c, project=str(project)) as (app, pilot):
            await pilot.press(*"what does @src/lib.rs:2-3 do, and @README.md?", "enter")
            await until(pilot, done(app), timeout=REPLY_S, what="the reply")
            [sent] = await stored_prompts(c, app.session.id)
            blocks = [b for b in sent.content if isinstance(b, CodeContextBlock)]
            assert [(b.path, b.text) for b in blocks] == [("src/lib.rs", "fn b() {}\nfn c() {}\n"),
                                                          ("README.md", "# proj\n")]
            assert (blocks[0].range.start, blocks[0].range.end) == (2, 3)
            assert sent.text == "what does @src/lib.rs:2-3 do, and @README.md?"
            assert "[context src/lib.rs:2-3]" in app.transcript.views[sent.id].rendered().plain


async def test_a_mention_beyond_the_file_is_an_error_and_nothing_is_sent(daemon, make_app, project):
    async with daemon.client("tui") as c:
        async with open_app(make_app, c, project=str(project)) as (app, pilot):
            await pilot.press(*"see @src/lib.rs:9999-10000", "enter")
            await until(pilot, lambda: "not sent:" in app.transcript.plain(), what="the error")
            assert "src/lib.rs has 3 lines" in app.transcript.plain()
            assert app.prompt.text == "see @src/lib.rs:9999-10000"  # kept, to be corrected
            app.prompt.value = "see @src/nothere.rs"
            await pilot.press("enter")
            await until(pilot, lambda: "no such file" in app.transcript.plain(), what="the second error")
            await settle(pilot)
            assert await stored_prompts(c, app.session.id) == []
