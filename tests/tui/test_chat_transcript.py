"""The chat's transcript against a real daemon whose providers are the scripted
emulator: Markdown replies (static once ended), thinking and tool rounds, scrolling from the prompt,
search and the switch markers. One daemon and one emulator serve the module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conversation_support import provider_daemon
from support import DaemonProcess
from textual.widgets import Markdown
from tui_support import open_app, replies, rows, settle, until
from tui_support import turn_done as done

from duologue.clients.tui.marks import CURRENT, MATCH
from duologue.clients.tui.message_view import MessageView
from duologue.clients.tui.transcript import SwitchMarker
from duologue.daemon.emulator import Emulator, Reply, ToolCall

FENCED = ["Here is the fix:\n\n", "```python\ndef add(a, b):\n", "    return a + b\n```\n\n",
          "It **adds**:\n\n- a\n- b\n"]

REPLY_S = 90.0
"""A reply on a loaded machine (a daemon and an emulator per worker) can take a while."""


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator() as emu:
        yield emu


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, emulator: Emulator) -> Iterator[DaemonProcess]:
    d = provider_daemon(tmp_path_factory.mktemp("home"), emulator).start()
    try:
        yield d
    finally:
        d.stop()


@pytest.fixture
def project(tmp_path) -> str:
    return str(tmp_path)


def marked(widget, style) -> list[str]:
    """The drawn stretches of ``widget`` on ``style``'s background (find's marks)."""
    def on(seg) -> bool:
        return bool(seg.style and seg.style.bgcolor and seg.style.bgcolor.triplet == style.bgcolor.triplet)
    return [text for strip in widget.render_lines(widget.content_region.reset_offset)
            for text in "".join(seg.text if on(seg) else "\0" for seg in strip).split("\0") if text]


async def test_a_streamed_fence_ends_as_one_static_widget_whose_code_block_copies(live, emulator, make_app, project):
    emulator.script("anthropic", Reply(chunks=FENCED, chunk_delay=0.02, thinking="Adding is easy."))
    async with live.client("tui") as c:
        async with open_app(make_app, c, project=project, size=(100, 40)) as (app, pilot):
            await pilot.press(*"fix it", "enter")
            await until(pilot, done(app), timeout=REPLY_S, what="the reply")
            await settle(pilot)
            view = replies(app)[0]
            assert isinstance(view, MessageView) and not app.transcript.query(Markdown)  # the live one is gone
            assert view.code_blocks() == ["def add(a, b):\n    return a + b"]
            drawn = rows(view)
            assert "```" not in "".join(drawn) and "**" not in "".join(drawn)
            assert any("• a" in row for row in drawn)
            # thinking is one closed line; a click on it opens it
            thinking = next(y for y, row in enumerate(drawn) if "thinking · 3 words" in row)
            assert "▸" in drawn[thinking] and not any("Adding is easy." in row for row in drawn)
            await pilot.click(view, offset=(4, thinking))
            assert view.thinking_open and any("Adding is easy." in row for row in rows(view))
            await pilot.press("f4")
            assert app.clipboard == "def add(a, b):\n    return a + b"
            app.copy_to_clipboard("")
            drawn = rows(view)
            prose = next(y for y, row in enumerate(drawn) if "Here is the fix" in row)
            await pilot.click(view, offset=(4, prose))  # the prose around the code copies nothing
            assert app.clipboard == ""
            code = next(y for y, row in enumerate(drawn) if "return a + b" in row)
            await pilot.click(view, offset=(4, code))
            assert app.clipboard == "def add(a, b):\n    return a + b"


async def test_a_tool_round_is_one_line_each_not_a_bubble_from_another_client(live, emulator, make_app, project):
    tasks = {"tasks": [{"content": "write tests", "status": "in_progress", "active_form": "Writing tests"}]}
    emulator.script("anthropic", Reply(text="On it.", tool_calls=[ToolCall("update_tasks", tasks, id="toolu_1")]),
                    Reply(text="Done."))
    async with live.client("tui") as c:
        async with open_app(make_app, c, project=project) as (app, pilot):
            await pilot.press(*"plan it", "enter")
            await until(pilot, lambda: len(replies(app)) == 2 and done(app, 2)(), timeout=REPLY_S, what="both replies")
            await settle(pilot)
            text = app.transcript.plain()
            assert "from another client" not in text
            assert "⚙ update_tasks {" in text and "↳ update_tasks:" in text
            tool_views = [v for v in app.transcript.views.values() if v.tool]
            assert len(tool_views) == 1 and rows(tool_views[0])[0].lstrip().startswith("↳ update_tasks: ")  # no head


async def test_page_keys_scroll_the_transcript_while_the_prompt_keeps_focus(live, emulator, make_app, project):
    emulator.script("anthropic", Reply(text="\n\n".join(f"paragraph {i}" for i in range(60))))
    async with live.client("tui") as c:
        async with open_app(make_app, c, project=project) as (app, pilot):
            t = app.transcript
            await pilot.press(*"long please", "enter")
            await until(pilot, done(app), timeout=REPLY_S, what="the reply")
            await settle(pilot)
            await until(pilot, lambda: t.max_scroll_y > 20 and t.scroll_y == t.max_scroll_y,
                        what="the transcript to be at its end")
            await pilot.press(*"draft")
            await pilot.press("pageup")
            assert t.scroll_y < t.max_scroll_y and app.prompt.has_focus
            await pilot.press("ctrl+home")
            assert t.scroll_y == 0
            await pilot.press("pagedown")
            assert t.scroll_y > 0
            await pilot.press("ctrl+end")
            assert t.scroll_y == t.max_scroll_y
            # home/end move the cursor in a prompt with text, scroll when it is empty
            await pilot.press("home")
            assert app.prompt.cursor_location == (0, 0) and t.scroll_y == t.max_scroll_y
            assert app.prompt.text == "draft" and app.prompt.has_focus
            app.prompt.value = ""
            await pilot.press("home")
            assert t.scroll_y == 0


async def test_find_marks_the_matched_words_counts_them_and_steps_between_them(live, emulator, make_app, project):
    emulator.script("anthropic", Reply(text="the walrus is here"), Reply(text="nothing"),
                    Reply(text="a second walrus, and a Walrus"))
    async with live.client("tui") as c:
        async with open_app(make_app, c, project=project) as (app, pilot):
            for n, prompt in enumerate(["one", "two", "three"], 1):
                await pilot.press(*prompt, "enter")
                await until(pilot, done(app, n), what=f"reply {n}")
            await settle(pilot)
            await pilot.press(*"kept draft", "ctrl+f", *"WALRUS")
            bar = app.query_one("#find")
            first, third = replies(app)[0], replies(app)[2]
            assert [item for item, _ in bar.matches] == [replies(app)[0], replies(app)[2], replies(app)[2]]
            assert "3/3" in str(bar.query_one("#find-count").content)  # the newest match first
            await pilot.pause()
            # the words are marked, not the messages: the newest as the current match
            assert marked(third, CURRENT) == ["Walrus"] and marked(third, MATCH) == ["walrus"]
            assert marked(first, MATCH) == ["walrus"] and not marked(first, CURRENT)
            assert not marked(replies(app)[1], MATCH)
            await pilot.press("enter")  # wraps around to the first
            await pilot.pause()
            assert "1/3" in str(bar.query_one("#find-count").content)
            assert marked(first, CURRENT) == ["walrus"] and not marked(third, CURRENT)
            await pilot.press("up")
            await pilot.pause()
            assert "3/3" in str(bar.query_one("#find-count").content) and marked(third, CURRENT) == ["Walrus"]
            await pilot.press("escape")
            await pilot.pause()
            assert not bar.display and app.prompt.has_focus and app.prompt.text == "kept draft"
            assert not marked(first, MATCH) and not marked(third, MATCH) and not marked(third, CURRENT)
            app.prompt.value = "/find nothing"
            await pilot.press("enter")
            await until(pilot, lambda: bar.display, what="the find bar")
            assert [item for item, _ in bar.matches] == [replies(app)[1]]


async def test_ctrl_up_and_down_jump_between_switch_markers(live, emulator, make_app, project):
    emulator.script("anthropic", Reply(text="\n\n".join(f"a{i}" for i in range(30))))
    emulator.script("gemini", Reply(text="\n\n".join(f"b{i}" for i in range(30))))
    async with live.client("tui") as c:
        async with open_app(make_app, c, project=project) as (app, pilot):
            t = app.transcript
            await pilot.press(*"first", "enter")
            await until(pilot, done(app), timeout=REPLY_S, what="the first reply")
            await pilot.press(*"/switch flash", "enter")
            await until(pilot, lambda: t.switches, what="the switch")
            await pilot.press(*"second", "enter")
            await until(pilot, done(app, 2), timeout=REPLY_S, what="the second reply")
            await settle(pilot)
            marker = t.query_one(SwitchMarker)
            await until(pilot, lambda: t.scroll_y == t.max_scroll_y > marker.virtual_region.y,
                        what="the end in view")
            await pilot.press("ctrl+up")
            assert t.scroll_y == marker.virtual_region.y and app.prompt.has_focus
            await pilot.press("ctrl+home", "ctrl+down")
            assert t.scroll_y == min(marker.virtual_region.y, t.max_scroll_y)
