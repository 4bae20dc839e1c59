"""One message of the transcript: a head naming who wrote it, the reply as Markdown,
thinking apart and collapsed, tool calls and results one line each, and a tail for
cost, refusals and failures.

A message is drawn with as few widgets as it needs, since Textual pays per widget
mounted and a session opens with many messages: a head, a body, and a thinking box,
a fold line or a tail only when it has them. The body of a finished message is one
``Static`` of Rich Markdown (:mod:`.static_markdown`); only a reply while it streams
is Textual's ``Markdown`` widget, whose ``append`` re-parses from the last top-level
block, so a long reply is not parsed again per delta (deltas are appended at most
every ``FLUSH_S`` seconds). When the reply ends its static form replaces it. A
person's prompt is shown as written (plain text: what they typed is not
reinterpreted). A click on a code block copies it. A long message from the history,
or a long prompt, is folded to :data:`FOLDED_ROWS` rows until clicked (or ctrl+g in
the prompt); a reply that streamed live is left open, since its reader was following it.
"""

from __future__ import annotations

import json
from typing import Any

from rich.text import Text
from textual import events
from textual.containers import Vertical
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Collapsible, Markdown, Static
from textual.widgets._markdown import MarkdownFence

from duologue.protocol.entities import CodeContextBlock, Message, TextBlock, ToolCallBlock, ToolResultBlock

from ..render import format_cost, one_line, refusal_line
from .marks import Markable
from .static_markdown import Body

FLUSH_S = 0.05
FOLD_LINES = 40
"""A message longer than this (in lines) is folded when shown from the history."""
FOLDED_ROWS = 16
_ENDED_BADLY = ("failed", "interrupted")


def tool_line(block: ToolCallBlock | ToolResultBlock) -> Text:
    """A tool call or result as one line, its arguments or output cut to fit."""
    if isinstance(block, ToolCallBlock):
        args = json.dumps(block.input, ensure_ascii=False, sort_keys=True)
        return Text(f"⚙ {block.name} {one_line(args)[:200]}", style="dim")
    lines = block.content.splitlines()
    first = one_line(lines[0])[:160] if lines else "(empty)"
    more = f" (+{len(lines) - 1} lines)" if len(lines) > 1 else ""
    if block.is_error:
        return Text(f"↳ {block.name} failed: {first}{more}", style="red")
    return Text(f"↳ {block.name}: {first}{more}", style="dim")


def is_tool_round(msg: Message) -> bool:
    """A user-side message the daemon wrote with tool results only: not a prompt."""
    return msg.role == "user" and bool(msg.content) and all(isinstance(b, ToolResultBlock) for b in msg.content)


class MessageView(Vertical):
    """One message; an assistant reply keeps growing until it completes."""

    DEFAULT_CSS = """
    MessageView { height: auto; margin: 0 0 1 0; padding: 0 0 0 1; }
    MessageView.user { border-left: outer $secondary; }
    MessageView.assistant { border-left: outer $primary; }
    MessageView.failed { border-left: outer $error; }
    MessageView.refused { border-left: outer $warning; }
    MessageView.tool { border-left: none; margin: 0 0 1 1; }
    MessageView > Markdown { padding: 0; margin: 0; }
    MessageView > Markdown MarkdownFence { margin: 0 0 1 0; }
    MessageView > Markdown > *:last-child { margin-bottom: 0; }
    MessageView.folded > .body { max-height: 16; overflow-y: hidden; }
    MessageView > .fold { color: $text-accent; }
    MessageView Collapsible { border-top: none; padding: 0; margin: 0; background: transparent; }
    MessageView Collapsible > Contents { padding: 0 0 0 2; }
    MessageView .thinking-text { color: $text-muted; text-style: italic; }
    """

    def __init__(self, message: Message, label: str, via: str | None = None, *, emulator: bool = False,
                 fold: bool = True) -> None:
        tool = is_tool_round(message)
        super().__init__(classes=("tool" if tool else message.role))
        self.message = message
        self.label = label
        self.via = via
        self.emulator = emulator
        self.text = message.text
        self.thinking = message.thinking
        self.tool = tool
        self.may_fold = fold
        self.live = message.role == "assistant" and message.status == "streaming"
        """Drawn by Textual's Markdown while it streams; static once it ends."""
        self._shown = ""
        """What the live Markdown was given so far (streamed text is appended to it)."""
        self._timer: Timer | None = None
        self._drawing: Any = None
        self._stale = False
        """Changed since it was composed (deltas or the end came before the mount)."""
        self._mounted = False
        """Its on_mount ran. Not ``is_mounted``, which Textual sets only after the Mount
        event's dispatch, so a change coming in between would never be drawn."""
        self._classify()

    def compose(self):
        self._stale = False
        if not self.tool:
            yield Markable(self._head_lines(), classes="head")
        if self.thinking:
            yield self._thinking_box()
        if self.live:
            yield Markdown(classes="body")  # filled in on_mount, where drawing is tracked
        else:
            yield self._fill(Body(classes="body"))
        lines = self.text.count("\n") + 1
        if self.may_fold and lines > FOLD_LINES:
            self.add_class("folded")
            yield Static(Text(f"⋯ {lines} lines, folded · click here (or ctrl+g in the prompt) to show all"),
                         classes="fold")
        tail = self._tail()
        if tail:
            yield Markable(tail, classes="tail")

    def on_mount(self) -> None:
        self._mounted = True
        if self.live and self.text:
            self._drawing = self.query_one(Markdown).update(self.text)
            self._shown = self.text
        if self._stale:
            self.draw()

    def _fill(self, body: Body) -> Body:
        tools = [tool_line(b) for b in self.message.content if isinstance(b, (ToolCallBlock, ToolResultBlock))]
        body.show(self.text, markdown=self.message.role == "assistant", above=tools)
        return body

    def _thinking_box(self) -> Collapsible:
        return Collapsible(Static(Text(self.thinking), classes="thinking-text"), title=self._thinking_title(),
                           collapsed=True)

    def _thinking_title(self) -> str:
        return f"thinking · {len(self.thinking.split())} words"

    # --- streaming -----------------------------------------------------------------------

    def append(self, text: str, thinking: str = "") -> None:
        self.text += text
        self.thinking += thinking
        self._stale = True
        if self._timer is None and self._mounted:
            self._timer = self.set_timer(FLUSH_S, self.draw)

    @property
    def draw_pending(self) -> bool:
        """Streamed text is waiting to be drawn (deltas are drawn at most every
        ``FLUSH_S``, and the Markdown is still being built from the last ones)."""
        return self._timer is not None or (self._drawing is not None and not self._drawing.is_done)

    def complete(self, message: Message) -> None:
        self.message = message
        self.text = message.text
        self.thinking = message.thinking
        self.live = message.role == "assistant" and message.status == "streaming"
        self._classify()  # at once, even before the view is mounted and drawn
        self._stale = True
        self.draw()

    def _classify(self) -> None:
        self.set_class(self.message.status in _ENDED_BADLY, "failed")
        self.set_class(self.message.status == "refused", "refused")

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
        self._stale = False
        body = self.query_one(".body")
        if self.live and isinstance(body, Markdown):
            if self.text != self._shown:
                fresh = self.text.startswith(self._shown)
                self._drawing = body.append(self.text[len(self._shown):]) if fresh else body.update(self.text)
                self._shown = self.text
        elif isinstance(body, Body):
            self._fill(body)
        else:
            # the reply ended: its static form takes the live Markdown's place
            self.mount(self._fill(Body(classes="body")), before=body)
            body.remove()
        self._decorate()

    def _decorate(self) -> None:
        if not self.tool:
            self.query_one(".head", Markable).update(self._head_lines())
        boxes = self.query(Collapsible)
        if self.thinking and not boxes:
            self.mount(self._thinking_box(), before=self.query_one(".body"))
        elif self.thinking:
            box = boxes.first()
            box.title = self._thinking_title()
            box.query_one(".thinking-text", Static).update(Text(self.thinking))
        tail, tails = self._tail(), self.query(".tail")
        if tail and tails:
            tails.first(Markable).update(tail)
        elif tail:
            self.mount(Markable(tail, classes="tail"))
        else:
            tails.remove()

    def _head_lines(self) -> Text:
        """The head and, under it, the code context the prompt attached."""
        meta = self._meta()
        return Text("\n").join([self._head(), meta]) if meta else self._head()

    def _head(self) -> Text:
        msg = self.message
        head = Text(self.label, style="bold" + (" cyan" if msg.role == "user" else " green"))
        if self.emulator and msg.role == "assistant":
            head.append(" · EMULATOR", style="bold reverse red")
        if self.via:
            head.append(f" · {self.via}", style="dim")
        if msg.pinned:
            head.append(" · pinned", style="dim")
        if msg.status == "streaming":
            head.append(" …", style="dim")
        elif msg.status != "complete":
            head.append(f" · {msg.status}", style="bold yellow" if msg.status in ("refused", "cancelled")
                        else "bold red")
        return head

    def _meta(self) -> Text | None:
        lines = []
        for block in self.message.content:
            if isinstance(block, CodeContextBlock):
                where = block.path + (f":{block.range.start}-{block.range.end}" if block.range else "")
                lines.append(f"[context {where}]")
        return Text("\n".join(lines), style="dim") if lines else None

    def _tail(self) -> Text:
        msg = self.message
        lines = [Text(format_cost(msg.cost_usd), style="dim")] if msg.cost_usd else []
        if msg.status == "refused":
            lines.append(Text(f"⊘ {refusal_line(msg)}", style="bold yellow"))
        elif msg.status == "cancelled":
            lines.append(Text("■ cancelled (the partial reply is kept)", style="bold yellow"))
        elif msg.status in _ENDED_BADLY:
            lines.append(Text(f"✗ turn {msg.status}: {msg.error or 'no detail'}", style="bold red"))
        return Text("\n").join(lines)

    # --- folding, copying, finding ---------------------------------------------------------

    @property
    def folded(self) -> bool:
        return self.has_class("folded")

    def unfold(self) -> None:
        self.remove_class("folded")
        self.query(".fold").remove()

    def code_blocks(self) -> list[str]:
        body = self.query_one(".body")
        if isinstance(body, Body):
            return body.code_blocks()
        return [fence.code for fence in body.query(MarkdownFence)]

    def on_click(self, event: events.Click) -> None:
        if self.folded:
            self.unfold()
            return
        code = self._code_under(event)
        if code is not None:
            self.app.copy_to_clipboard(code)
            self.app.notify(f"copied the code block ({code.count(chr(10)) + 1} lines)")

    def _code_under(self, event: events.Click) -> str | None:
        node: Widget | None = event.widget
        if isinstance(node, Body):
            offset = event.get_content_offset(node)
            return node.code_at(offset.y) if offset is not None else None
        while node is not None and node is not self:
            if isinstance(node, MarkdownFence):
                return node.code
            node = node.parent  # type: ignore[assignment]
        return None

    def marked_parts(self) -> list[Markable]:
        """What find marks in, top to bottom (a reply still streaming: its head only)."""
        return [w for w in self.children if isinstance(w, Markable)]

    def rendered(self) -> Text:
        """The message as plain text, in the order shown (for search and tests)."""
        parts = [] if self.tool else [self._head_lines()]
        if self.thinking:
            parts.append(Text(f"[thinking · {len(self.thinking.split())} words]", style="dim"))
        parts += [tool_line(b) for b in self.message.content if isinstance(b, (ToolCallBlock, ToolResultBlock))]
        body = self.text if self.text or self.message.status != "complete" else \
            "".join(b.text for b in self.message.content if isinstance(b, TextBlock))
        if body:
            parts.append(Text(body))
        tail = self._tail()
        if tail:
            parts.append(tail)
        return Text("\n").join(parts)
