"""The inline progress line and the collapsible task panel.

The progress line says what the session is doing (a model replying, how many tokens
so far, or how the last turn ended) and, when the session has tasks, a bar of
completed / total with the active task cut to the width left. The task panel lists
every task with its state. Both are pure renderings of a :class:`TurnState` and the
session's :class:`TaskList`, so they are the same for every attached client.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.containers import VerticalScroll
from textual.widget import Widget
from textual.widgets import Static

from duologue.protocol.entities import TaskList

BAR_CELLS = 10
_MARK = {"pending": ("○", "dim"), "in_progress": ("◐", "bold yellow"), "completed": ("●", "green")}


@dataclass
class TurnState:
    """What the progress line shows on its left."""

    running: bool = False
    model: str = ""
    output_tokens: int = 0
    estimated_s: float | None = None
    outcome: str | None = None
    """How the last turn ended: complete, cancelled, failed, interrupted (None: none yet)."""
    error: str | None = None


def task_counts(tasks: TaskList) -> tuple[int, int, str | None]:
    """(completed, total, the active task's active form or content)."""
    done = sum(t.status == "completed" for t in tasks.tasks)
    active = next((t.active_form or t.content for t in tasks.tasks if t.status == "in_progress"), None)
    return done, len(tasks.tasks), active


def _state_text(turn: TurnState, label: str) -> Text:
    if turn.running:
        eta = f" · ~{turn.estimated_s:.0f}s left" if turn.estimated_s else ""
        return Text.assemble(("● ", "bold green"), f"{label} replying · {turn.output_tokens} tok{eta}")
    if turn.outcome == "cancelled":
        return Text("■ cancelled (partial reply kept)", style="bold yellow")
    if turn.outcome in ("failed", "interrupted"):
        return Text(f"✗ {turn.outcome}: {turn.error or 'no detail'}", style="bold red")
    if turn.outcome == "refused":  # the session's cost is on the status line beside
        return Text(f"⊘ {label} refused", style="bold yellow")
    if turn.outcome == "complete":
        return Text(f"✓ {label} · {turn.output_tokens} tok", style="green")
    return Text("ready", style="dim")


def progress_text(turn: TurnState, tasks: TaskList, width: int, label: str = "") -> Text:
    """The whole line, never wider than ``width``: state, then the task bar if any."""
    if width <= 0:
        return Text("")
    text = _state_text(turn, label or turn.model)
    done, total, active = task_counts(tasks)
    if total:
        cells = BAR_CELLS if width >= 60 else 5
        filled = round(cells * done / total)
        text.append("  ")
        text.append("█" * filled, style="green")
        text.append("░" * (cells - filled), style="dim")
        text.append(f" {done}/{total}", style="bold")
        if active:
            room = width - text.cell_len - 1
            if room >= 4:
                cut = Text(" " + active, style="italic")
                cut.truncate(room + 1, overflow="ellipsis")
                text.append_text(cut)
    text.truncate(width, overflow="ellipsis")
    return text


def tasks_panel_text(tasks: TaskList) -> Text:
    done, total, _ = task_counts(tasks)
    if not total:
        return Text("no tasks yet\n\nmodels add them with their task tool; clients with tasks/update",
                    style="dim")
    text = Text.assemble(("Tasks ", "bold"), f"{done}/{total}")
    if tasks.updated_by:
        text.append(f"\nby {tasks.updated_by}", style="dim")
    for t in tasks.tasks:
        mark, style = _MARK[t.status]
        shown = t.active_form if t.status == "in_progress" and t.active_form else t.content
        text.append(f"\n{mark} ", style=style)
        text.append(shown, style="dim" if t.status == "completed" else "")
    return text


class ProgressLine(Widget):
    DEFAULT_CSS = "ProgressLine { height: 1; padding: 0 1; }"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.turn = TurnState()
        self.tasks = TaskList()
        self.label = ""

    def show(self, turn: TurnState, tasks: TaskList, label: str) -> None:
        self.turn, self.tasks, self.label = turn, tasks, label
        self.refresh()

    def render(self) -> Text:
        return progress_text(self.turn, self.tasks, self.content_size.width, self.label)


class TaskPanel(VerticalScroll):
    """The task list beside the transcript; ctrl+t shows or hides it."""

    DEFAULT_CSS = """
    TaskPanel { width: 30%; min-width: 24; max-width: 40; border-left: vkey $primary; padding: 0 1; display: none; }
    TaskPanel.open { display: block; }
    """

    def compose(self):
        yield Static(tasks_panel_text(TaskList()), id="task-list")

    def show(self, tasks: TaskList) -> None:
        self.query_one("#task-list", Static).update(tasks_panel_text(tasks))
