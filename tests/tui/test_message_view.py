"""Messages on a bare Textual screen: a finished message is one widget (Rich Markdown
in a Static), a reply streams into Textual's Markdown and ends as one, code blocks are
found for copying, long ones fold, and find marks the drawn words."""

from __future__ import annotations

from datetime import datetime, timezone

from rich.console import Console
from rich.markdown import Markdown as RichMarkdown
from textual.app import App, ComposeResult
from textual.widgets import Markdown

from duologue.clients.tui.marks import CURRENT, MATCH, Marked
from duologue.clients.tui.live_reply import LiveReply
from duologue.clients.tui.message_view import FOLDED_ROWS, MessageView
from duologue.clients.tui.search import FindBar
from duologue.clients.tui.static_markdown import split
from duologue.clients.tui.transcript import Transcript
from duologue.protocol.entities import Message, TextBlock

from tui_support import rows, until

T0 = datetime(2026, 12, 2, tzinfo=timezone.utc)
REPLY = "Use this:\n\n```python\nx = 1\n```\n\n- then\n- this\n\n```sh\nmake\n```\n"


def message(text: str, role: str = "assistant", status: str = "complete", **kw) -> Message:
    return Message(id="m1", session_id="s1", seq=1, role=role, content=[TextBlock(text=text)] if text else [],
                   created_at=T0, model="claude-sonnet-5-5" if role == "assistant" else None, status=status, **kw)


class One(App[None]):
    """A transcript on a bare screen."""

    def compose(self) -> ComposeResult:
        yield Transcript()


async def shown(pilot, msg: Message, *, created: bool = False):
    t = pilot.app.query_one(Transcript)
    t.message_created(msg) if created else t.load([msg], [])
    await pilot.pause()
    return t, t.views[msg.id]


def test_split_cuts_at_top_level_code_blocks_and_keeps_nested_ones_in_their_part():
    parts = split("intro\n\n```py\na\n```\n\n> quoted\n> ```\n> b\n> ```\n\n    indented\n")
    assert [p.code for p in parts] == [None, "a", None, "indented"]
    assert parts[2].nested == ("b",) and parts[2].codes == ("b",)
    assert len(split("just prose, **bold**")) == 1 and not split("   \n")


async def test_a_finished_reply_is_one_widget_with_its_code_blocks():
    async with One().run_test(size=(60, 30)) as pilot:
        t, view = await shown(pilot, message(REPLY))
        assert isinstance(view, MessageView) and not list(view.walk_children())
        assert view.code_blocks() == ["x = 1", "make"]
        assert rows(view)[0].startswith("▌ claude-sonnet-5-5")


async def test_a_streamed_reply_appends_each_delta_once_then_becomes_one_static_widget():
    async with One().run_test(size=(60, 30)) as pilot:
        t, live = await shown(pilot, message("", status="streaming"), created=True)
        assert isinstance(live, LiveReply)
        chunks = ["Use this:\n\n```py", "thon\nx = 1\n", "```\n\n- then\n"]
        for chunk in chunks:
            t.delta("m1", chunk)
            while live.draw_pending:
                await pilot.pause(0.02)
        assert live.query_one(Markdown).source == "".join(chunks)
        assert live.code_blocks() == ["x = 1"]
        t.message_completed(message("".join(chunks)))
        await pilot.pause()
        view = t.views["m1"]
        assert isinstance(view, MessageView) and view.code_blocks() == ["x = 1"]
        assert list(t.children) == [view] and not t.query(Markdown)


async def test_a_click_copies_the_code_block_under_it_and_nothing_elsewhere():
    async with One().run_test(size=(60, 30)) as pilot:
        t, view = await shown(pilot, message(REPLY))
        drawn = rows(view)
        for code in ("x = 1", "make"):
            pilot.app.copy_to_clipboard("")
            await pilot.click(view, offset=(3, next(y for y, row in enumerate(drawn) if row[2:].strip() == code)))
            assert pilot.app.clipboard == code
        pilot.app.copy_to_clipboard("")
        await pilot.click(view, offset=(3, next(y for y, row in enumerate(drawn) if "then" in row)))
        assert pilot.app.clipboard == ""


async def test_a_long_history_message_folds_and_a_click_opens_it():
    async with One().run_test(size=(60, 30)) as pilot:
        t, view = await shown(pilot, message("\n\n".join(f"line {i}" for i in range(30))))
        assert view.folded and view.size.height == 1 + FOLDED_ROWS + 1
        assert "59 lines, folded" in rows(view)[-1]
        await pilot.click(view)
        await pilot.pause()
        assert not view.folded and view.size.height == 1 + 59


def test_marked_styles_each_drawn_match_and_the_current_one_apart():
    console = Console(width=30)
    lines = console.render_lines(Marked(RichMarkdown("A walrus, **another WALRUS**"), "walrus", 1), console.options)
    styled = [(seg.text, seg.style) for line in lines for seg in line if seg.style and seg.style.bgcolor]
    assert [text for text, _ in styled] == ["walrus", "WALRUS"]  # what is drawn: no ** around it
    assert styled[0][1].bgcolor == MATCH.bgcolor and styled[1][1].bgcolor == CURRENT.bgcolor
    assert styled[1][1].bold  # the Markdown's own style is kept under the mark


async def test_find_scrolls_to_the_matched_line_and_opens_a_folded_message_holding_it():
    text = "\n\n".join(f"line {i}" for i in range(60)) + "\n\nthe walrus at the end"
    async with One().run_test(size=(60, 20)) as pilot:
        t, view = await shown(pilot, message(text))
        bar = FindBar(t)
        await pilot.app.mount(bar)
        assert view.folded
        bar.open("walrus")

        def match_in_view() -> bool:
            row = next((y for y, r in enumerate(rows(view)) if "walrus" in r), None)
            return row is not None and (
                t.scroll_y <= view.virtual_region.y + row < t.scroll_y + t.scrollable_content_region.height)

        await until(pilot, match_in_view, what="the matched line scrolled into view")
        assert not view.folded and "1/1" in str(bar.query_one("#find-count").content)
