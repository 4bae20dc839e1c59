"""The chat's prompt: several lines, pastes kept whole, history, Tab completion.

Enter sends. Shift+enter and ctrl+j insert a newline: many terminals send shift+enter
as a plain enter, while ctrl+j arrives as its own key everywhere. A paste arrives whole
(Textual's bracketed ``Paste`` event), never as keys, so its newlines do not send it
line by line; one over :data:`CHIP_LINES` lines or :data:`CHIP_CHARS` characters is
shown as a chip, ``[pasted 400 lines #1]``, that ctrl+g (the app's key) expands in
place and that is sent in full. Up on the first line and down on the last walk the project's history
(:mod:`.history`). Tab completes (:mod:`.completion`) and indents where there is
nothing to complete: it never moves the focus, so no keys are lost to another widget.
Home and end move the cursor; in an empty prompt they scroll the transcript instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.widgets import TextArea

from .completion import Completion
from .history import PromptHistory

CHIP_LINES = 10
CHIP_CHARS = 2000
_CHIP = re.compile(r"\[pasted (?:\d+ lines|\d+ chars) #(\d+)\]")


def chip_label(text: str, n: int) -> str:
    lines = text.count("\n") + (0 if text.endswith("\n") else 1)
    return f"[pasted {lines} lines #{n}]" if lines > 1 else f"[pasted {len(text)} chars #{n}]"


class PromptArea(TextArea):
    """Posts :class:`Submitted` with the full text (chips expanded) on enter."""

    DEFAULT_CSS = """
    PromptArea { height: auto; max-height: 10; min-height: 3; }
    """
    BINDINGS = [
        Binding("ctrl+j,shift+enter", "newline", "Newline", key_display="^j"),  # for the footer
    ]

    class Submitted(Message):
        def __init__(self, prompt: PromptArea, text: str) -> None:
            super().__init__()
            self.prompt = prompt
            self.text = text

    class Hint(Message):
        """Something to show under the prompt (completion candidates, a usage line),
        or an empty text to clear it."""

        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    class ScrollTranscript(Message):
        """Home or end in an empty prompt: scroll the transcript to its top or end."""

        def __init__(self, where: str) -> None:
            super().__init__()
            self.where = where

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, soft_wrap=True, tab_behavior="focus", show_line_numbers=False,
                         highlight_cursor_line=False, compact=False)
        self.pastes: dict[int, str] = {}
        self.prompts: PromptHistory | None = None
        self.completer: Callable[[str], Completion | None] = lambda before: None

    # --- the text as a value, chips and all ---------------------------------------------

    @property
    def value(self) -> str:
        """The text as typed, chips as their labels."""
        return self.text

    @value.setter
    def value(self, text: str) -> None:
        self.load_text(text)
        self.move_cursor(self.document.end)

    def full_text(self) -> str:
        """The text with every chip replaced by what was pasted."""
        return _CHIP.sub(lambda m: self.pastes.get(int(m.group(1)), m.group(0)), self.text)

    def clear_prompt(self) -> None:
        self.pastes.clear()
        self.value = ""

    # --- keys ------------------------------------------------------------------------

    async def _on_key(self, event: events.Key) -> None:
        key = event.key
        handled = True
        if key == "enter":
            self.post_message(self.Submitted(self, self.full_text()))
        elif key in ("ctrl+j", "shift+enter"):
            # here, not only by the binding: a binding runs in the app's queue, after
            # the keys typed next have reached this widget
            self.action_newline()
        elif key == "tab":
            self._complete()
        elif key == "up" and self.cursor_location[0] == 0 and self.prompts is not None:
            handled = self._recall(self.prompts.older(self.text))
        elif key == "down" and self.cursor_location[0] == self.document.line_count - 1 and self.prompts:
            handled = self._recall(self.prompts.newer())
        elif key in ("home", "end") and not self.text:
            self.post_message(self.ScrollTranscript("top" if key == "home" else "bottom"))
        else:
            handled = False
        if handled:
            event.stop()
            event.prevent_default()  # TextArea's own handler (next in the MRO) must not run

    def _recall(self, entry: str | None) -> bool:
        if entry is None:
            return False  # at either end: the key moves the cursor as usual
        self.pastes.clear()
        self.value = entry
        return True

    def type_text(self, text: str) -> None:
        """Put ``text`` where the cursor is (over the selection), the cursor after it."""
        result = self.replace(text, *self.selection, maintain_selection_offset=False)
        self.move_cursor(result.end_location)

    def action_newline(self) -> None:
        self.type_text("\n")

    def action_expand_pastes(self) -> None:
        if self.pastes:
            self.value = self.full_text()
            self.pastes.clear()

    def _complete(self) -> None:
        row, col = self.cursor_location
        before = self.get_text_range((0, 0), (row, col))
        done = self.completer(before)
        if done is None:
            self.type_text(" " * (4 - col % 4))
            return
        if done.text != before[done.start:]:
            end = self.replace(done.text, self.document.get_location_from_index(done.start), (row, col),
                               maintain_selection_offset=False).end_location
            self.move_cursor(end)
        # posted after the edit's Changed (which clears a stale hint), so it stays
        self.post_message(self.Hint(done.hint))

    async def _on_paste(self, event: events.Paste) -> None:
        text = event.text.replace("\r\n", "\n").replace("\r", "\n")
        if text.count("\n") < CHIP_LINES and len(text) <= CHIP_CHARS:
            event.text = text  # TextArea's own handler, next in the MRO, inserts it
            return
        event.stop()
        event.prevent_default()
        n = max(self.pastes, default=0) + 1
        self.pastes[n] = text
        self.type_text(chip_label(text, n))
        self.focus()
