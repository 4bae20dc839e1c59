"""A reply while it streams: its head, its thinking's size, and its text in Textual's
``Markdown`` widget, whose ``append`` re-parses only from the last top-level block, so
a long reply is not parsed again per delta. Deltas are appended at most every
``FLUSH_S`` seconds. When the reply ends the transcript puts a
:class:`~.message_view.MessageView` (one static widget) in its place.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import events
from textual.containers import Vertical
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Markdown, Static
from textual.widgets._markdown import MarkdownFence

from duologue.protocol.entities import Message

from .marks import Markable
from .message_parts import head_lines, thinking_title
from .message_view import rendered

FLUSH_S = 0.05


class LiveReply(Vertical):
    """A streaming reply; it keeps growing until it completes."""

    DEFAULT_CSS = """
    LiveReply { height: auto; margin: 0 0 1 0; padding: 0 0 0 1; border-left: outer $primary; }
    LiveReply > Markdown { padding: 0; margin: 0; }
    LiveReply > Markdown MarkdownFence { margin: 0 0 1 0; }
    LiveReply > Markdown > *:last-child { margin-bottom: 0; }
    LiveReply > .thinking { color: $text-muted; }
    """

    live = True
    tool = False
    folded = False

    def __init__(self, message: Message, label: str, *, emulator: bool = False) -> None:
        super().__init__(classes="assistant")
        self.message = message
        self.label = label
        self.emulator = emulator
        self.text = message.text
        self.thinking = message.thinking
        self._shown = ""
        """What the Markdown was given so far (streamed text is appended to it)."""
        self._timer: Timer | None = None
        self._drawing: Any = None
        self._mounted = False
        """Its on_mount ran. Not ``is_mounted``, which Textual sets only after the Mount
        event's dispatch, so a delta coming in between would never be drawn."""

    def compose(self):
        yield Markable(self._head(), classes="head")
        yield Static(classes="thinking")
        yield Markdown()

    def on_mount(self) -> None:
        self._mounted = True
        self.draw()

    def _head(self) -> Text:
        return head_lines(self.message, self.label, None, self.emulator)

    def append(self, text: str, thinking: str = "") -> None:
        self.text += text
        self.thinking += thinking
        if self._timer is None and self._mounted:
            self._timer = self.set_timer(FLUSH_S, self.draw)

    @property
    def draw_pending(self) -> bool:
        """Streamed text is waiting to be drawn (deltas are drawn at most every
        ``FLUSH_S``, and the Markdown is still being built from the last ones)."""
        return self._timer is not None or (self._drawing is not None and not self._drawing.is_done)

    def draw(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        if not self._mounted:
            return
        if self._drawing is not None and not self._drawing.is_done:
            # one Markdown change at a time: an append reads how far the document was
            # parsed when it is called, so one called before the last finished would
            # parse the text again and show it twice
            self._timer = self.set_timer(FLUSH_S, self.draw)
            return
        body = next(iter(self.query(Markdown)), None)
        thinking = next(iter(self.query(".thinking").results(Static)), None)
        if body is None or thinking is None:
            return  # its children are gone: the finished reply is taking its place
        if self.text != self._shown:
            fresh = self.text.startswith(self._shown)
            self._drawing = body.append(self.text[len(self._shown):]) if fresh else body.update(self.text)
            self._shown = self.text
        thinking.display = bool(self.thinking)
        if self.thinking:
            thinking.update(Text(f"▸ {thinking_title(self.thinking)} …"))

    def code_blocks(self) -> list[str]:
        return [fence.code for fence in self.query(MarkdownFence)]

    def on_click(self, event: events.Click) -> None:
        node: Widget | None = event.widget
        while node is not None and node is not self:
            if isinstance(node, MarkdownFence):
                self.app.copy_to_clipboard(node.code)
                self.app.notify(f"copied the code block ({node.code.count(chr(10)) + 1} lines)")
                return
            node = node.parent  # type: ignore[assignment]

    def marked_parts(self) -> list[Markable]:
        """What find marks in: the head only (the text is searched once it ends)."""
        return list(self.query(".head").results(Markable))

    def rendered(self) -> Text:
        return rendered(self.message, self.text, self.thinking, self._head())
