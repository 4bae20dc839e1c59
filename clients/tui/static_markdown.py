"""A finished message's Markdown as Rich renderables (code highlighted), for one
``Static``, instead of Textual's ``Markdown`` widget, which mounts a widget per block
(about fifteen for a short reply) and is what made a long session slow to open.

The source is cut at its top-level code blocks, each part drawn as its own Rich
``Markdown``, so that the part under a click is known and its code can be copied; a
fence inside a list or a quote belongs to the part around it. The parts are drawn
with the blank line Rich puts between blocks, so the result looks as one document.
"""

from __future__ import annotations

from dataclasses import dataclass

from markdown_it import MarkdownIt
from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.markdown import Markdown
from rich.segment import Segment

CODE_THEME = "monokai"
_CODE_HINTS = ("```", "~~~", "\n    ", "\n\t")
"""Without one of these a text holds no code block (and is not parsed for them)."""


@dataclass(frozen=True)
class Part:
    """A run of the source: one top-level code block (``code`` set), or the Markdown
    between two, with the code of any block nested in it."""

    source: str
    code: str | None = None
    nested: tuple[str, ...] = ()

    @property
    def codes(self) -> tuple[str, ...]:
        return (self.code,) if self.code is not None else self.nested


def split(source: str) -> list[Part]:
    """``source`` cut before and after each top-level code block."""
    if not any(hint in source for hint in _CODE_HINTS) and not source.startswith(("    ", "\t")):
        return [Part(source)] if source.strip() else []
    lines = source.splitlines(keepends=True)
    parts: list[Part] = []
    start, nested = 0, []
    for token in MarkdownIt("commonmark").parse(source):
        if token.type not in ("fence", "code_block") or token.map is None:
            continue
        code = token.content.rstrip()
        if token.level:
            nested.append(code)
            continue
        first, end = token.map
        text = "".join(lines[start:first])
        if text.strip() or nested:
            parts.append(Part(text, nested=tuple(nested)))
        parts.append(Part("".join(lines[first:end]), code=code))
        start, nested = end, []
    rest = "".join(lines[start:])
    if rest.strip() or nested:
        parts.append(Part(rest, nested=tuple(nested)))
    return parts


def drawn(part: Part) -> RenderableType:
    """A part as Rich draws Markdown, its code highlighted."""
    return Markdown(part.source, code_theme=CODE_THEME)


class Clipped:
    """The first ``rows`` lines of a renderable (a folded message)."""

    def __init__(self, renderable: RenderableType, rows: int) -> None:
        self.renderable = renderable
        self.rows = rows

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        new_line = Segment.line()
        for line in console.render_lines(self.renderable, options, pad=False)[:self.rows]:
            yield from line
            yield new_line
