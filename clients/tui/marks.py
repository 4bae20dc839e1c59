"""Matched words picked out in what a widget draws (find, ctrl+f).

:class:`Marked` wraps any Rich renderable: it renders it as it would be drawn, then
styles each stretch of a drawn line that matches the words (case ignored), the
current match more strongly. Marking what is drawn, not the source, means Markdown
syntax never shifts a mark; a match wrapped across two lines is left unmarked.
:class:`Markable` is a ``Static`` that keeps what it was given, so marks come and go
without the caller drawing it again.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.measure import Measurement
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.visual import VisualType
from textual.widgets import Static

MATCH = Style(color="#000000", bgcolor="#d7af00")
CURRENT = Style(color="#000000", bgcolor="#ff8700", bold=True)
"""Fixed colours (not the theme's): a mark reads the same on a dark or a light theme."""


def count(text: str, needle: str) -> int:
    """How many times ``needle`` is in ``text`` (case ignored, not overlapping)."""
    return len(re.findall(re.escape(needle), text, re.IGNORECASE)) if needle else 0


class Marked:
    """``renderable`` with every drawn match of ``needle`` styled; the ``current``-th
    (counted in drawing order, from 0) as the current match."""

    def __init__(self, renderable: RenderableType, needle: str, current: int | None) -> None:
        self.renderable = renderable
        self.pattern = re.compile(re.escape(needle), re.IGNORECASE)
        self.current = current

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement.get(console, options, self.renderable)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        seen = 0
        new_line = Segment.line()
        for line in console.render_lines(self.renderable, options, pad=False):
            text = Text.assemble(*((seg.text, seg.style) for seg in line if not seg.control), end="")
            for found in self.pattern.finditer(text.plain):
                text.stylize(CURRENT if seen == self.current else MATCH, found.start(), found.end())
                seen += 1
            yield from text.render(console)
            yield new_line


class Markable(Static):
    """A ``Static`` whose drawn matches of a search can be marked (:meth:`mark`)."""

    def __init__(self, content: VisualType = "", **kwargs) -> None:
        super().__init__(content, **kwargs)
        self.base: VisualType = content
        self._needle = ""
        self._current: int | None = None

    @property
    def plain_text(self) -> str:
        """What it shows, as plain text (what find searches)."""
        base = self.base
        return base.plain if isinstance(base, Text) else str(base) if isinstance(base, str) else ""

    def update(self, content: VisualType = "", *, layout: bool = True) -> None:
        self.base = content
        super().update(self._shown(), layout=layout)

    def mark(self, needle: str, current: int | None = None) -> None:
        """Mark ``needle`` (nothing when empty), the ``current``-th match most."""
        if (needle, current) != (self._needle, self._current):
            self._needle, self._current = needle, current
            super().update(self._shown())

    def _shown(self) -> VisualType:
        if not self._needle:
            return self.base
        base = Text(self.base) if isinstance(self.base, str) else self.base
        return Marked(base, self._needle, self._current)  # type: ignore[arg-type]


def mark_all(widgets: Iterable[Markable], needle: str, current: int | None) -> None:
    """Mark ``needle`` across ``widgets`` in order, the ``current``-th match (counted
    across them all by their plain text) as the current one."""
    left = current
    for widget in widgets:
        here = count(widget.plain_text, needle)
        widget.mark(needle, left if left is not None and 0 <= left < here else None)
        if left is not None:
            left -= here


def match_row(widget: Markable, needle: str, k: int) -> int | None:
    """The row of ``widget``'s content where its ``k``-th drawn match is (from 0), or
    None when it is not drawn (folded away, or wrapped across two lines)."""
    width = widget.content_region.width
    if not width or not needle:
        return None
    console = widget.app.console
    base = Text(widget.base) if isinstance(widget.base, str) else widget.base
    pattern = re.compile(re.escape(needle), re.IGNORECASE)
    seen = 0
    for row, line in enumerate(console.render_lines(base, console.options.update_width(width), pad=False)):
        seen += len(pattern.findall("".join(seg.text for seg in line if not seg.control)))
        if seen > k:
            return row
    return None
