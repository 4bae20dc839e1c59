"""The session picker: sessions grouped by project (this one first), each group by
recency, and a new-session entry on top. It returns the chosen session id,
:data:`NEW` for a new session, or None when dismissed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import PurePath

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from duologue.protocol.entities import Session

from ..render import ago

NEW = "\0new"


def group_by_project(sessions: list[Session], project: str) -> list[tuple[str | None, list[Session]]]:
    """This project first, then the others by their most recent session."""
    groups: dict[str | None, list[Session]] = {}
    for s in sorted(sessions, key=lambda s: s.updated_at, reverse=True):
        groups.setdefault(s.project_id, []).append(s)
    return sorted(groups.items(), key=lambda kv: (kv[0] != project, -kv[1][0].updated_at.timestamp()))


def session_prompt(s: Session, label: str, now: datetime, current: bool) -> Text:
    mark = "▸ " if current else "  "
    title = s.title if len(s.title) <= 34 else s.title[:33] + "…"
    return Text.assemble(mark, (f"{title:<34}", "bold" if current else ""),
                         (f" {label:<8}", "cyan"), (f" {s.message_count:>4} msgs", "dim"),
                         (f" {ago(s.updated_at, now):>9}", "dim"))


class SessionPicker(ModalScreen[str | None]):
    DEFAULT_CSS = """
    SessionPicker { align: center middle; }
    SessionPicker > Vertical { width: 76; max-width: 100%; height: 80%; border: round $primary;
                               background: $surface; padding: 0 1; }
    SessionPicker OptionList { height: 1fr; border: none; }
    SessionPicker #picker-help { color: $text-muted; }
    """
    BINDINGS = [Binding("escape", "dismiss_none", "Close"), Binding("ctrl+n", "new", "New session")]

    def __init__(self, sessions: list[Session], project: str, current: str,
                 label: Callable[[str], str], now: datetime) -> None:
        super().__init__()
        self.sessions = sessions
        self.project = project
        self.current = current
        self.label = label
        self.now = now

    def compose(self) -> ComposeResult:
        options: list[Option | None] = [Option(Text("+ New session in this project", style="bold green"), id=NEW)]
        for project, sessions in group_by_project(self.sessions, self.project):
            name = "this project" if project == self.project else (PurePath(project).name if project else "no project")
            where = Text.assemble((name, "bold underline"), (f"  {project or ''}", "dim"))
            where.truncate(72, overflow="ellipsis")
            options.append(None)
            options.append(Option(where, disabled=True))
            for s in sessions:
                model = "auto" if s.model == "auto" else self.label(s.current_model)
                options.append(Option(session_prompt(s, model, self.now, s.id == self.current), id=s.id))
        with Vertical():
            yield Static(Text("Sessions", style="bold"))
            yield OptionList(*options, id="picker-list")
            yield Static("enter open · ctrl+n new · esc close", id="picker-help")

    def on_mount(self) -> None:
        listing = self.query_one(OptionList)
        ids = [listing.get_option_at_index(i).id for i in range(listing.option_count)]
        listing.highlighted = ids.index(self.current) if self.current in ids else 0
        listing.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_new(self) -> None:
        self.dismiss(NEW)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
