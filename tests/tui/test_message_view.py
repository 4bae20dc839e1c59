"""One message's view on a bare Textual screen: a finished message is a few widgets
(one static body of Rich Markdown), a reply streams into Textual's Markdown and ends
static, code blocks are found for copying, and find marks the drawn words."""

from __future__ import annotations

from datetime import datetime, timezone

from rich.console import Console
from rich.markdown import Markdown as RichMarkdown
from textual.app import App, ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Markdown

from duologue.clients.tui.marks import CURRENT, MATCH, Marked
from duologue.clients.tui.message_view import MessageView
from duologue.clients.tui.static_markdown import Body, split
from duologue.protocol.entities import Message, TextBlock

T0 = datetime(2026, 12, 2, tzinfo=timezone.utc)
REPLY = "Use this:\n\n```python\nx = 1\n```\n\n- then\n- this\n\n```sh\nmake\n```\n"


def message(text: str, role: str = "assistant", status: str = "complete", **kw) -> Message:
    return Message(id="m1", session_id="s1", seq=1, role=role, content=[TextBlock(text=text)] if text else [],
                   created_at=T0, model="claude-sonnet-5-5" if role == "assistant" else None, status=status, **kw)


class One(App[None]):
    def __init__(self, view: MessageView) -> None:
        super().__init__()
        self.view = view

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield self.view


def test_split_cuts_at_top_level_code_blocks_and_keeps_nested_ones_in_their_part():
    parts = split("intro\n\n```py\na\n```\n\n> quoted\n> ```\n> b\n> ```\n\n    indented\n")
    assert [p.code for p in parts] == [None, "a", None, "indented"]
    assert parts[2].nested == ("b",) and parts[2].codes == ("b",)
    assert split("just prose, **bold**") == [split("just prose, **bold**")[0]] and not split("   \n")


async def test_a_finished_reply_is_a_head_and_one_static_body():
    view = MessageView(message(REPLY), "sonnet")
    async with One(view).run_test(size=(60, 30)) as pilot:
        await pilot.pause()
        assert [type(w).__name__ for w in view.walk_children()] == ["Markable", "Body"]
        assert view.code_blocks() == ["x = 1", "make"]


async def test_a_streamed_reply_appends_each_delta_once_then_becomes_static():
    view = MessageView(message("", status="streaming"), "sonnet", fold=False)
    async with One(view).run_test(size=(60, 30)) as pilot:
        chunks = ["Use this:\n\n```py", "thon\nx = 1\n", "```\n\n- then\n"]
        for chunk in chunks:
            view.append(chunk)
            while view.draw_pending:
                await pilot.pause(0.02)
        live = view.query_one(Markdown)
        assert live.source == "".join(chunks)
        assert view.code_blocks() == ["x = 1"]
        view.complete(message("".join(chunks)))
        while view.draw_pending or not view.query(Body):
            await pilot.pause(0.02)
        await pilot.pause()
        assert not view.query(Markdown) and view.code_blocks() == ["x = 1"]


async def test_a_click_copies_the_code_block_under_it_and_nothing_elsewhere():
    view = MessageView(message(REPLY), "sonnet")
    async with One(view).run_test(size=(60, 30)) as pilot:
        await pilot.pause()
        body = view.query_one(Body)
        rows = ["".join(s.text for s in strip) for strip in body.render_lines(body.content_region.reset_offset)]
        for code in ("x = 1", "make"):
            pilot.app.copy_to_clipboard("")
            await pilot.click(body, offset=(3, next(y for y, row in enumerate(rows) if row.strip() == code)))
            assert pilot.app.clipboard == code
        pilot.app.copy_to_clipboard("")
        await pilot.click(body, offset=(3, next(y for y, row in enumerate(rows) if "then" in row)))
        assert pilot.app.clipboard == ""


async def test_a_long_history_message_folds_and_a_click_opens_it():
    view = MessageView(message("\n\n".join(f"line {i}" for i in range(30))), "sonnet")
    async with One(view).run_test(size=(60, 30)) as pilot:
        await pilot.pause()
        assert view.folded and view.query_one(Body).size.height == 16
        await pilot.click(view.query_one(Body))
        await pilot.pause()
        assert not view.folded and not view.query(".fold") and view.query_one(Body).size.height > 16


def test_marked_styles_each_drawn_match_and_the_current_one_apart():
    console = Console(width=30)
    lines = console.render_lines(Marked(RichMarkdown("A walrus, **another WALRUS**"), "walrus", 1), console.options)
    styled = [(seg.text, seg.style) for line in lines for seg in line if seg.style and seg.style.bgcolor]
    assert [text for text, _ in styled] == ["walrus", "WALRUS"]  # what is drawn: no ** around it
    assert styled[0][1].bgcolor == MATCH.bgcolor and styled[1][1].bgcolor == CURRENT.bgcolor
    assert styled[1][1].bold  # the Markdown's own style is kept under the mark
