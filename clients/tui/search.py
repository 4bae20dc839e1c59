"""Finding text in the transcript (ctrl+f, or ``/find TEXT``).

A bar over the prompt takes the words; every place they are shown (ignoring case) is
marked, the current one more, and the bar counts the places ("2/5"). The current
one's line is scrolled into view (a folded message holding it opens). A reply still
streaming is searched once it ends.
Enter or down goes to the next match, up to the previous one, escape closes the bar
and gives the focus back to the prompt. The prompt is left as it was: searching does
not lose a draft.
"""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.containers import Horizontal
from textual.widget import Widget
from textual.widgets import Input, Static

from .marks import Markable, count, mark_all, match_row
from .message_view import MessageView
from .transcript import Transcript

Match = tuple[Widget, int]
"""An item of the transcript and which of its matches (from 0)."""


def find(transcript: Transcript, query: str) -> list[Match]:
    """Every match of ``query`` (case ignored) in the transcript, top to bottom."""
    return [(item, k) for item, parts in transcript.markables()
            for k in range(sum(count(part.plain_text, query) for part in parts))]


class FindBar(Horizontal):
    DEFAULT_CSS = """
    FindBar { height: 1; display: none; background: $boost; }
    FindBar.open { display: block; }
    FindBar > Input { width: 1fr; }
    FindBar > Static { width: auto; height: 1; padding: 0 1; color: $text-muted; }
    """

    def __init__(self, transcript: Transcript, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.transcript = transcript
        self.matches: list[Match] = []
        self.current = -1

    def compose(self):
        yield Input(placeholder="find in the transcript…", id="find-input", compact=True)
        yield Static("enter/↓ next · ↑ previous · esc closes", id="find-count")

    @property
    def input(self) -> Input:
        return self.query_one("#find-input", Input)

    def open(self, query: str = "") -> None:
        self.add_class("open")
        if query:
            self.input.value = query  # its Changed event runs the search
        # at once, not after a refresh as focus() does: the keys typed next are the query
        self.app.set_focus(self.input)

    def close(self) -> None:
        self._mark([], -1)
        self.remove_class("open")

    def search(self, query: str) -> None:
        found = find(self.transcript, query)
        self._mark(found, len(found) - 1 if found else -1)  # the newest match first

    def step(self, forward: bool) -> None:
        if self.matches:
            self._mark(self.matches, (self.current + (1 if forward else -1)) % len(self.matches))

    def _mark(self, found: list[Match], current: int) -> None:
        needle = self.input.value if found else ""
        items = {item: None for item, _ in [*self.matches, *found]}  # in order, once each
        self.matches, self.current = found, current
        at = found[current] if found else None
        for item, parts in self.transcript.markables():
            if item in items:
                mark_all(parts, needle, at[1] if at is not None and at[0] is item else None)
        count = self.query_one("#find-count", Static)
        if not self.input.value:
            count.update("enter/↓ next · ↑ previous · esc closes")
        elif not found:
            count.update(Text("no match", style="bold red"))
        else:
            count.update(f"{current + 1}/{len(found)} · ↓ next ↑ previous · esc")
            self._show(*found[current], needle)

    def _show(self, item: Widget, k: int, needle: str) -> None:
        """Scroll the current match into view: its line, near the top (a folded message
        whose match is folded away opens)."""
        t = self.transcript
        t.release_anchor()
        row = match_row(item, needle, k) if isinstance(item, Markable) else None
        if row is None and isinstance(item, MessageView) and item.folded:
            item.unfold()
            row = match_row(item, needle, k)
        if row is None:
            t.scroll_to_widget(item, animate=False, top=True)
        else:
            t.scroll_to(y=max(item.virtual_region.y + item.styles.gutter.top + row - 2, 0), animate=False)

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.search(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.step(forward=True)

    def on_key(self, event: events.Key) -> None:
        if event.key in ("up", "down", "escape"):
            event.stop()
            event.prevent_default()
            if event.key == "escape":
                self.close()
                self.app.query_one("#prompt").focus()
            else:
                self.step(forward=event.key == "down")
