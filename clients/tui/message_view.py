"""A finished message of the transcript as one widget: the head naming who wrote it,
thinking (one line, opened by a click), tool calls and results one line each, the
text, and a tail for cost, refusals and failures.

One ``Static`` per message, because Textual pays per widget mounted (styles, layout)
and a session opens with hundreds of messages: a reply is Rich's Markdown with its
code highlighted (:mod:`.static_markdown`), a person's prompt is shown as written
(plain text: what they typed is not reinterpreted). A reply while it streams is a
:class:`~.live_reply.LiveReply` instead, which this replaces when it ends.

A click on a code block copies it, on the thinking line opens or closes it. A long
message from the history, or a long prompt, is folded to :data:`FOLDED_ROWS` rows
until clicked (or ctrl+g in the prompt); a reply that streamed live is left open,
since its reader was following it.
"""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.text import Text
from textual import events

from duologue.protocol.entities import Message, TextBlock

from .marks import Markable
from .message_parts import ENDED_BADLY, head_lines, is_tool_round, tail_text, thinking_title, tool_lines
from .static_markdown import Clipped, Part, drawn, split

FOLD_LINES = 40
"""A message longer than this (in lines) is folded when shown from the history."""
FOLDED_ROWS = 16

Section = tuple[str, "Part | None", RenderableType]
"""What a run of rows is ("head", "thinking", "part", ...), its Markdown part, its renderable."""


class MessageView(Markable):
    """One finished message (or a prompt), drawn as one renderable."""

    DEFAULT_CSS = """
    MessageView { height: auto; margin: 0 0 1 0; padding: 0 0 0 1; }
    MessageView.user { border-left: outer $secondary; }
    MessageView.assistant { border-left: outer $primary; }
    MessageView.failed { border-left: outer $error; }
    MessageView.refused { border-left: outer $warning; }
    MessageView.tool { border-left: none; margin: 0 0 1 1; }
    """

    def __init__(self, message: Message, label: str, via: str | None = None, *, emulator: bool = False,
                 fold: bool = True) -> None:
        tool = is_tool_round(message)
        super().__init__(classes=("tool" if tool else message.role))
        self.label = label
        self.via = via
        self.emulator = emulator
        self.tool = tool
        self.thinking_open = False
        self.live = False
        self.set_message(message, fold)

    def set_message(self, message: Message, fold: bool = False) -> None:
        self.message = message
        self.text = message.text
        self.thinking = message.thinking
        self.parts: list[Part] = split(self.text) if message.role == "assistant" else []
        lines = self.text.count("\n") + 1
        self.set_class(fold and lines > FOLD_LINES, "folded")
        self.set_class(message.status in ENDED_BADLY, "failed")
        self.set_class(message.status == "refused", "refused")
        self.redraw()

    def complete(self, message: Message) -> None:
        self.set_message(message, self.folded)

    def redraw(self) -> None:
        self.update(Group(*(r for _, _, r in self._sections())))

    @property
    def draw_pending(self) -> bool:
        return False

    def _sections(self) -> list[Section]:
        out: list[Section] = []
        if not self.tool:
            out.append(("head", None, head_lines(self.message, self.label, self.via, self.emulator)))
        if self.thinking:
            title = f"{'▾' if self.thinking_open else '▸'} {thinking_title(self.thinking)}"
            line = Text(title, style="dim")
            if self.thinking_open:
                line.append("\n" + self.thinking, style="dim italic")
            out.append(("thinking", None, line))
        body: list[Section] = [("tools", None, line) for line in tool_lines(self.message)]
        for i, part in enumerate(self.parts):
            if i:
                body.append(("gap", None, Text("")))
            body.append(("part", part, drawn(part)))
        if self.text and self.message.role != "assistant":
            body.append(("text", None, Text(self.text)))
        if self.folded:
            lines = self.text.count("\n") + 1
            out.append(("folded", None, Clipped(Group(*(r for _, _, r in body)), FOLDED_ROWS)))
            out.append(("fold", None, Text(f"⋯ {lines} lines, folded · click (or ctrl+g) to show all",
                                           style="bold")))
        else:
            out += body
        tail = tail_text(self.message)
        if tail:
            out.append(("tail", None, tail))
        return out

    # --- folding, copying, finding ---------------------------------------------------------

    @property
    def folded(self) -> bool:
        return self.has_class("folded")

    def unfold(self) -> None:
        self.remove_class("folded")
        self.redraw()

    def code_blocks(self) -> list[str]:
        return [code for part in self.parts for code in part.codes]

    def section_at(self, row: int) -> Section | None:
        """The section drawn at ``row`` of the content (from 0)."""
        width = self.content_region.width or self.size.width
        if not width:
            return None
        console = self.app.console
        options = console.options.update_width(width)
        y = 0
        for section in self._sections():
            y += len(console.render_lines(section[2], options))
            if row < y:
                return section
        return None

    def on_click(self, event: events.Click) -> None:
        if self.folded:
            self.unfold()
            return
        offset = event.get_content_offset(self)
        section = self.section_at(offset.y) if offset is not None else None
        if section is None:
            return
        kind, part, _ = section
        if kind == "thinking":
            self.thinking_open = not self.thinking_open
            self.redraw()
        elif part is not None and part.codes:
            code = part.codes[-1]
            self.app.copy_to_clipboard(code)
            self.app.notify(f"copied the code block ({code.count(chr(10)) + 1} lines)")

    @property
    def plain_text(self) -> str:
        return self.rendered().plain

    def marked_parts(self) -> list[Markable]:
        return [self]

    def rendered(self) -> Text:
        """The message as plain text, in the order shown (for search and tests)."""
        return rendered(self.message, self.text, self.thinking,
                        None if self.tool else head_lines(self.message, self.label, self.via, self.emulator))


def rendered(msg: Message, text: str, thinking: str, head: Text | None) -> Text:
    """A message as plain text: the head, thinking's size, tool lines, text, tail."""
    parts = [head] if head is not None else []
    if thinking:
        parts.append(Text(f"[{thinking_title(thinking)}]", style="dim"))
    parts += tool_lines(msg)
    body = text if text or msg.status != "complete" else \
        "".join(b.text for b in msg.content if isinstance(b, TextBlock))
    if body:
        parts.append(Text(body))
    tail = tail_text(msg)
    if tail:
        parts.append(tail)
    return Text("\n").join(parts)
