"""One message of the transcript: a head naming who wrote it, the reply as Markdown,
thinking apart and collapsed, tool calls and results one line each, and a tail for
cost, refusals and failures.

Replies are Markdown (models write fences, lists and emphasis), drawn with Textual's
``Markdown`` widget, whose fences are highlighted code blocks; a click on one copies
its code. A person's prompt is shown as written (plain text: what they typed is not
reinterpreted). Streamed text is appended to the Markdown at most every ``FLUSH_S``
seconds, and ``Markdown.append`` re-parses only from the last top-level block, so a
long reply is not parsed again per delta. A long message from the history, or a long
prompt, is folded to :data:`FOLDED_ROWS` rows until clicked (or ctrl+g in the prompt);
a reply that streamed live is left open, since its reader was following it.
"""

from __future__ import annotations

import json
from typing import Any

from rich.text import Text
from textual import events
from textual.containers import Vertical
from textual.timer import Timer
from textual.widgets import Collapsible, Markdown, Static
from textual.widgets._markdown import MarkdownFence

from duologue.protocol import images
from duologue.protocol.entities import CodeContextBlock, ImageBlock, Message, TextBlock, ToolCallBlock, ToolResultBlock

from ..render import format_cost, one_line, refusal_line

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
    MessageView .fold { color: $text-accent; display: none; }
    MessageView.folded .fold { display: block; }
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
        self._shown = ""
        """What the body was given so far (streamed text is appended to it)."""
        self._timer: Timer | None = None
        self._drawing: Any = None
        self._whole = False
        """Draw the whole text once more (the reply ended): appends parse from the last
        block, and a delta that split a fence's opening line can leave it a paragraph."""

    def compose(self):
        yield Static(classes="head")
        yield Static(classes="meta")
        with Collapsible(title="thinking", collapsed=True):
            yield Static(classes="thinking-text")
        yield Static(classes="tools")
        if self.message.role == "assistant":
            yield Markdown(classes="body")  # filled in on_mount, where drawing is tracked
        else:
            yield Static(classes="body")
        yield Static(classes="fold")
        yield Static(classes="tail")

    def on_mount(self) -> None:
        body = self.query_one(".body")
        if isinstance(body, Markdown):
            if self.text:
                self._drawing = body.update(self.text)
        else:
            body.update(Text(self.text))
        self._shown = self.text  # deltas that came before the mount are in it
        self._whole = False
        self._decorate()
        self._fold()

    # --- streaming -----------------------------------------------------------------------

    def append(self, text: str, thinking: str = "") -> None:
        self.text += text
        self.thinking += thinking
        if self._timer is None and self.is_mounted:
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
        self._classify()  # at once, even before the view is mounted and drawn
        self._whole = True
        self.draw()

    def _classify(self) -> None:
        self.set_class(self.message.status in _ENDED_BADLY, "failed")
        self.set_class(self.message.status == "refused", "refused")

    def draw(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        if not self.is_mounted:
            return
        if self._drawing is not None and not self._drawing.is_done:
            # one Markdown change at a time: an append reads how far the document was
            # parsed when it is called, so one called before the last finished would
            # parse the text again and show it twice
            self._timer = self.set_timer(FLUSH_S, self.draw)
            return
        body = self.query_one(".body")
        if self.text != self._shown or (self._whole and isinstance(body, Markdown)):
            if isinstance(body, Markdown):
                fresh = self.text.startswith(self._shown) and not self._whole
                self._drawing = body.append(self.text[len(self._shown):]) if fresh else body.update(self.text)
                self._whole = False
            else:
                body.update(Text(self.text))
            self._shown = self.text
        self._decorate()

    def _decorate(self) -> None:
        msg = self.message
        self._classify()
        head = self.query_one(".head", Static)
        head.update(self._head())
        head.display = not self.tool
        meta = self._meta()
        self.query_one(".meta", Static).update(meta)
        self.query_one(".meta").display = bool(meta)
        box = self.query_one(Collapsible)
        box.display = bool(self.thinking)
        if self.thinking:
            box.title = f"thinking · {len(self.thinking.split())} words"
            self.query_one(".thinking-text", Static).update(Text(self.thinking))
        tools = [tool_line(b) for b in msg.content if isinstance(b, (ToolCallBlock, ToolResultBlock))]
        self.query_one(".tools", Static).update(Text("\n").join(tools))
        self.query_one(".tools").display = bool(tools)
        self.query_one(".body").display = bool(self.text) or not tools
        tail = self._tail()
        self.query_one(".tail", Static).update(tail)
        self.query_one(".tail").display = bool(tail)

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

    def _meta(self) -> Text:
        lines = []
        for block in self.message.content:
            if isinstance(block, CodeContextBlock):
                where = block.path + (f":{block.range.start}-{block.range.end}" if block.range else "")
                lines.append(f"[context {where}]")
            elif isinstance(block, ImageBlock):
                lines.append(images.label(block))
        return Text("\n".join(lines), style="dim")

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

    # --- folding and copying -----------------------------------------------------------

    def _fold(self) -> None:
        lines = self.text.count("\n") + 1
        if self.may_fold and self.message.status != "streaming" and lines > FOLD_LINES:
            self.query_one(".fold", Static).update(
                Text(f"⋯ {lines} lines, folded · click here (or ctrl+g in the prompt) to show all"))
            self.add_class("folded")

    @property
    def folded(self) -> bool:
        return self.has_class("folded")

    def unfold(self) -> None:
        self.remove_class("folded")

    def code_blocks(self) -> list[str]:
        return [fence.code for fence in self.query(MarkdownFence)]

    def on_click(self, event: events.Click) -> None:
        if self.folded:
            self.unfold()
            return
        node = event.widget
        while node is not None and node is not self:
            if isinstance(node, MarkdownFence):
                self.app.copy_to_clipboard(node.code)
                self.app.notify(f"copied the code block ({node.code.count(chr(10)) + 1} lines)")
                return
            node = node.parent

    def rendered(self) -> Text:
        """The message as plain text, in the order shown (for search and tests)."""
        parts = [] if self.tool else [self._head()]
        meta = self._meta()
        if meta:
            parts.append(meta)
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
