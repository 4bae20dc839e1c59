"""A finished message's body as one widget: Rich's Markdown (code highlighted) in a
``Static``, instead of Textual's ``Markdown`` widget, which mounts a widget per block
(about fifteen for a short reply) and is what made a long session slow to open.

The source is cut at its top-level code blocks, each part drawn as its own Rich
``Markdown``, so that the part under a click is known and its code can be copied; a
fence inside a list or a quote belongs to the part around it. The parts are drawn
with the blank line Rich puts between blocks, so the result looks as one document.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markdown_it import MarkdownIt
from rich.console import Group, RenderableType
from rich.markdown import Markdown
from rich.text import Text

from .marks import Markable

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


def render_parts(parts: Sequence[Part]) -> list[RenderableType]:
    """Each part's renderable, a blank line between two."""
    out: list[RenderableType] = []
    for part in parts:
        if out:
            out.append(Text(""))
        out.append(Markdown(part.source, code_theme=CODE_THEME))
    return out


class Body(Markable):
    """A message's text: a person's as written, a reply as Markdown; with lines
    (tool calls and results) above it."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.parts: list[Part] = []
        self.above: list[Text] = []
        self.plain = ""

    def show(self, text: str, *, markdown: bool, above: Sequence[Text] = ()) -> None:
        self.above = list(above)
        self.parts = split(text) if markdown else []
        self.plain = "\n".join([*(line.plain for line in self.above), text]) if text else \
            "\n".join(line.plain for line in self.above)
        drawn: list[RenderableType] = list(self.above)
        if markdown:
            drawn += render_parts(self.parts)
        elif text:
            drawn.append(Text(text))
        self.update(Group(*drawn) if len(drawn) != 1 else drawn[0])

    @property
    def text(self) -> str:
        return self.plain

    def code_blocks(self) -> list[str]:
        return [code for part in self.parts for code in part.codes]

    def code_at(self, row: int) -> str | None:
        """The code under ``row`` of the drawn body (from 0): the block's own, or the
        last nested in the part there; None off every code block."""
        width = self.content_region.width or self.size.width
        if not width or not self.parts:
            return None
        console = self.app.console
        options = console.options.update_width(width)
        y = sum(len(console.render_lines(line, options)) for line in self.above)
        for part, renderable in zip(self.parts, render_parts(self.parts)[::2]):
            height = len(console.render_lines(renderable, options))
            if y <= row < y + height:
                return part.codes[-1] if part.codes else None
            y += height + 1
        return None

