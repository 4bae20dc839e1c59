"""The compact model selector in the header.

It shows every model by its short name (providers apart, ``auto`` last) with the
session's choice highlighted, and never grows past the width it is given: when the
names do not fit it shows a window around the chosen (or highlighted) one, with ``‹``
and ``›`` saying that more lie either side. Focused, it numbers the entries so one
key (1-9) switches, ←/→ move a cursor whose full name and provider the app shows on
the line below, and enter switches to it.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget

from duologue.protocol.entities import AUTO, ModelInfo

SEPARATOR = " │ "


@dataclass(frozen=True)
class Entry:
    """One choice: a catalog model, or ``auto``."""

    id: str
    label: str
    provider: str
    available: bool = True


def entries_of(models: list[ModelInfo]) -> list[Entry]:
    """Catalog order grouped by provider (first appearance), then ``auto``."""
    providers: list[str] = []
    for info in models:
        if info.provider not in providers:
            providers.append(info.provider)
    ordered = [info for p in providers for info in models if info.provider == p]
    return [Entry(i.id, i.short_name, i.provider, i.available) for i in ordered] + [Entry(AUTO, AUTO, "")]


def describe(entry: Entry, info: ModelInfo | None, number: int | None) -> str:
    """The focus line: the full name and provider of the highlighted entry."""
    key = f"{number} " if number is not None and number <= 9 else ""
    if info is None:
        return f"{key}auto · the daemon picks a model per turn and says why"
    window = f"{round(info.context_window / 1e6, 1):g}M" if info.context_window >= 1_000_000 \
        else f"{info.context_window // 1000}k"
    state = "" if info.available else " · unavailable (no API key)"
    return (f"{key}{info.display_name} · {info.provider} · {info.tier} · {window} context · "
            f"${info.pricing.input_per_mtok:g}/${info.pricing.output_per_mtok:g} per Mtok{state}")


def _pieces(entries: list[Entry], chosen: str, current: str, cursor: int | None,
            numbered: bool) -> list[tuple[str, str]]:
    """(text, style) per entry, separators folded into the following entry's text."""
    out: list[tuple[str, str]] = []
    for i, e in enumerate(entries):
        label = f"{i + 1}:{e.label}" if numbered and i < 9 else e.label
        style = "" if e.available else "dim strike"
        if e.id == chosen:
            style = "bold reverse"
        elif chosen == AUTO and e.id == current:
            style = "bold underline"
        if cursor == i:
            style = (style + " on blue").strip() if style else "bold on blue"
        sep = "" if i == 0 else (SEPARATOR if e.provider != entries[i - 1].provider else " ")
        out.append((sep + label, style))
    return out


def _render(pieces: list[tuple[str, str]], left: bool, right: bool) -> Text:
    text = Text("‹ " if left else "", style="dim")
    for i, (piece, style) in enumerate(pieces):
        if i == 0:
            piece = piece.lstrip(" │")
        text.append(piece, style=style)
    if right:
        text.append(" ›", style="dim")
    return text


def selector_text(entries: list[Entry], chosen: str, current: str, width: int,
                  cursor: int | None = None, numbered: bool = False) -> Text:
    """The selector line, at most ``width`` cells whatever the names."""
    if width <= 0 or not entries:
        return Text("")
    pieces = _pieces(entries, chosen, current, cursor, numbered)
    full = _render(pieces, False, False)
    if full.cell_len <= width:
        return full
    ids = [e.id for e in entries]
    anchor = cursor if cursor is not None else (ids.index(chosen) if chosen in ids else 0)
    lo = hi = anchor
    best = (lo, hi)
    while True:  # grow the window around the anchor, alternately right and left
        grew = False
        for lo2, hi2 in ((lo, hi + 1), (lo - 1, hi)):
            if 0 <= lo2 and hi2 < len(pieces):
                t = _render(pieces[lo2:hi2 + 1], lo2 > 0, hi2 < len(pieces) - 1)
                if t.cell_len <= width:
                    lo, hi, grew = lo2, hi2, True
                    best = (lo, hi)
        if not grew:
            break
    text = _render(pieces[best[0]:best[1] + 1], best[0] > 0, best[1] < len(pieces) - 1)
    text.truncate(width, overflow="ellipsis")
    return text


class ModelSelector(Widget, can_focus=True):
    """Short names in a line; switching is one key when focused (1-9 or enter)."""

    DEFAULT_CSS = """
    ModelSelector { width: auto; max-width: 66; height: 1; padding: 0 1; }
    ModelSelector:focus { background: $boost; }
    """
    BINDINGS = [
        Binding("left", "move(-1)", "Prev", show=False),
        Binding("right", "move(1)", "Next", show=False),
        Binding("enter", "pick", "Switch", show=True),
        Binding("escape", "leave", "Back", show=True),
        *[Binding(str(n), f"pick({n - 1})", show=False) for n in range(1, 10)],
    ]

    chosen: reactive[str] = reactive("", layout=True)
    current: reactive[str] = reactive("")
    cursor: reactive[int] = reactive(0)

    class Picked(Message):
        """The user asked to switch to ``model_id``."""

        def __init__(self, model_id: str) -> None:
            super().__init__()
            self.model_id = model_id

    class Highlighted(Message):
        """The cursor moved or focus changed: the app shows ``text`` (or clears it)."""

        def __init__(self, text: str | None) -> None:
            super().__init__()
            self.text = text

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.entries: list[Entry] = []
        self.infos: dict[str, ModelInfo] = {}

    def set_models(self, models: list[ModelInfo]) -> None:
        self.entries = entries_of(models)
        self.infos = {m.id: m for m in models}
        self.refresh(layout=True)

    def get_content_width(self, container: Size, viewport: Size) -> int:
        return selector_text(self.entries, self.chosen, self.current, 10_000, numbered=self._focused()).cell_len

    def render(self) -> Text:
        focused = self._focused()
        return selector_text(self.entries, self.chosen, self.current, self.content_size.width,
                             cursor=self.cursor if focused else None, numbered=focused)

    def _index_of_chosen(self) -> int:
        ids = [e.id for e in self.entries]
        return ids.index(self.chosen) if self.chosen in ids else 0

    def _focused(self) -> bool:
        # ``has_focus`` is set after the public focus handler runs; ask the screen
        return self.is_attached and self.screen.focused is self

    def _announce(self) -> None:
        if not self._focused() or not self.entries:
            self.post_message(self.Highlighted(None))
            return
        entry = self.entries[self.cursor]
        self.post_message(self.Highlighted(describe(entry, self.infos.get(entry.id), self.cursor + 1)))

    def on_focus(self) -> None:
        self.cursor = self._index_of_chosen()
        self._announce()
        self.refresh(layout=True)

    def on_blur(self) -> None:
        self.post_message(self.Highlighted(None))
        self.refresh(layout=True)

    def watch_cursor(self) -> None:
        self._announce()

    def action_move(self, step: int) -> None:
        if self.entries:
            self.cursor = (self.cursor + step) % len(self.entries)

    def action_pick(self, index: int | None = None) -> None:
        index = self.cursor if index is None else index
        if 0 <= index < len(self.entries):
            self.cursor = index
            self.post_message(self.Picked(self.entries[index].id))

    def action_leave(self) -> None:
        self.app.query_one("#prompt").focus()
