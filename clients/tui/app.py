"""`duologue chat` on a terminal: a Textual app attached to the daemon like any client.

The screen, top to bottom: a red banner when the daemon answers from the emulator;
the session title and the compact model selector; the transcript (replies labelled
with their model, a marker at every switch) beside the collapsible task panel; the
progress line; the prompt; the keys. Everything shown comes from session events, so
what another attached client sends or switches appears here as it happens.

The app is this module (layout, sessions, the user's actions) and two parts of it by
idea: :mod:`.daemon_events` (what the session's events draw) and :mod:`.sending`
(prompts sent, pending and kept in drafts); the keys that move around the
transcript are :mod:`.navigation`'s.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from pathlib import PurePath
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Footer, Static

from duologue.protocol.entities import AUTO, ModelInfo, Session, TaskList
from duologue.protocol.errors import ErrorCode, RpcError

from .. import render
from ..rpc.client import AsyncClient, DaemonUnavailable
from ..code_context import ContextArgError
from ..drafts import Drafts
from .commands import COMMANDS, run_command
from .daemon_events import DaemonEvents
from .completion import complete
from .feed import SessionFeed
from .history import PromptHistory
from .model_selector import ModelSelector
from .navigation import TranscriptKeys
from .picker import NEW, SessionPicker
from .progress import ProgressLine, TaskPanel, TurnState
from .session_commands import run_session_command
from .status_line import SYNC_POLL_S, StatusLine, sync_text
from .prompt import PromptArea
from .search import FindBar
from .sending import Sending
from .transcript import Transcript

EMULATOR_BANNER = "⚠ EMULATOR · replies are simulated offline, not by a real model · /help"
HISTORY_SHOWN = 200
"""Messages drawn when a session opens; `duologue show` prints them all. A finished
message is one widget, so 200 open within 3x a bare Textual app of as many Statics
(bench/chat_open.py); as Textual Markdown views (fifteen widgets each) they took 23x."""

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class ChatApp(DaemonEvents, Sending, TranscriptKeys):
    TITLE = "duologue"
    ENABLE_COMMAND_PALETTE = False
    CSS = """
    #banner { background: $error; color: $text; text-style: bold; height: 1; padding: 0 1; display: none;
              text-wrap: nowrap; text-overflow: ellipsis; }
    #banner.on { display: block; }
    #header { height: 1; background: $panel; }
    #title { width: 1fr; height: 1; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis; }
    #model-info { height: 1; padding: 0 1; background: $boost; display: none; text-wrap: nowrap;
                  text-overflow: ellipsis; }
    #model-info.on { display: block; }
    #body { height: 1fr; }
    #transcript { width: 1fr; }
    #status-row { height: 1; background: $panel; }
    #progress { width: 1fr; }
    #prompt { border: tall $primary 40%; }
    #hint { height: auto; max-height: 3; padding: 0 1; color: $text-muted; display: none; }
    #hint.on { display: block; }
    """
    BINDINGS = [
        Binding("ctrl+n", "new_session", "New", show=False),
        Binding("ctrl+o", "pick_session", "Sessions"),
        Binding("f2,ctrl+s", "focus_models", "Model"),
        Binding("escape", "cancel(True)", "Cancel"),
        Binding("ctrl+c", "cancel", "Cancel", show=False, priority=True),
        Binding("ctrl+t", "toggle_tasks", "Tasks", show=False),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    def __init__(self, client: AsyncClient, *, session: str | None = None, project: str = "",
                 clock: Clock = _utcnow) -> None:
        super().__init__()
        self.client = client
        self.initial_session = session
        self.project = project
        self.clock = clock
        self.session: Session | None = None
        self.models: dict[str, ModelInfo] = {}
        self.tasks = TaskList()
        self.turn = TurnState()
        self.running: set[str] = set()
        self.tasks_open: bool | None = None
        """None follows the tasks (open when there are some); ctrl+t makes it explicit."""
        self.emulator = False
        self.key_hint = ""
        self.ready = False
        self._inflight: list[str] = []
        self.pending: list[dict[str, Any]] = []
        """Prompts sent but not acknowledged yet (the daemon may be away): shown marked
        pending, and kept in the session's draft on disk until acknowledged."""
        self.drafts = Drafts(client.paths.state_dir)
        self.feed = SessionFeed(client, self)

    # --- layout -------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(EMULATOR_BANNER, id="banner")
        with Horizontal(id="header"):
            yield Static("", id="title")
            yield ModelSelector(id="models")
        yield Static("", id="model-info")
        transcript = Transcript(id="transcript")
        with Horizontal(id="body"):
            yield transcript
            yield TaskPanel(id="tasks")
        with Horizontal(id="status-row"):
            yield ProgressLine(id="progress")
            yield StatusLine(id="status")
        yield FindBar(transcript, id="find")
        yield Static("", id="hint")
        yield PromptArea(id="prompt")
        yield Footer(compact=True)

    @property
    def selector(self) -> ModelSelector:
        return self.query_one(ModelSelector)

    def short(self, model: str | None) -> str:
        info = self.models.get(model or "")
        return info.short_name if info else (model or "-")

    def long(self, model: str | None) -> str:
        info = self.models.get(model or "")
        return f"{info.short_name} · {info.display_name}" if info else (model or "assistant")

    async def on_mount(self) -> None:
        self.transcript.label, self.transcript.short = self.long, self.short
        self.prompt.prompts = PromptHistory(self.client.paths.state_dir, self.project)
        self.prompt.completer = lambda before: complete(before, COMMANDS, self.root)
        self.prompt.focus()
        self.run_worker(self.feed.run(), name="feed", group="feed")
        self._spawn(self._start(), "cannot start")

    async def _start(self) -> None:
        hello = self.client.hello_result
        # the providers' key variables are in the status, asked for only when needed
        status = await self.client.status() if hello is None or hello.emulator else None
        self.emulator = status is not None and status.emulator
        if status is not None and status.emulator:
            self.key_hint = render.key_hint(status.providers)
        self.query_one("#banner").set_class(self.emulator, "on")
        self.transcript.emulator = self.emulator
        catalog = await self.client.list_models()
        self.models = {info.id: info for info in catalog.models}
        self.selector.set_models(catalog.models)
        await self.open_session(self.initial_session)
        self._sync_poll = self.set_interval(SYNC_POLL_S, self._poll_sync)
        self._poll_sync()

    def _poll_sync(self) -> None:
        self.run_worker(self._show_sync(), group="sync", exclusive=True)

    async def _show_sync(self) -> None:
        """Whether this session is in sync, on the status line; polling stops when
        the daemon does not replicate. A daemon away is told elsewhere."""
        try:
            status = await self.client.sync_status()
        except (RpcError, DaemonUnavailable, TimeoutError):
            return
        if not status.configured:
            self._sync_poll.stop()
        for line in self.query(StatusLine):  # none while the app closes
            line.sync_state(sync_text(status, self.session.id if self.session else None))

    def background(self, work: Awaitable[Any], what: str) -> None:
        """Run a request of a command in the background, as the app's own are."""
        self._spawn(work, what)

    def _spawn(self, work: Awaitable[Any], what: str) -> None:
        """Run a request in the background; its failure becomes a red line, not a crash."""
        async def guarded() -> None:
            try:
                await work
            except RpcError as exc:
                self.error_line(f"{what}: {exc.message}")
            except (DaemonUnavailable, ContextArgError, TimeoutError) as exc:
                self.error_line(f"{what}: {exc or type(exc).__name__}")
        self.run_worker(guarded(), group="requests")

    def error_line(self, text: str) -> None:
        self.transcript.notice(f"✗ {text}", style="bold red")

    # --- sessions -----------------------------------------------------------------------

    async def open_session(self, session_id: str | None) -> None:
        c = self.client
        if session_id is None:
            page = await c.list_sessions(project_id=self.project or None, limit=1)
            session_id = page.sessions[0].id if page.sessions else None
        if session_id is None:
            session_id = (await c.create_session(project_id=self.project or None)).id
        old = self.session.id if self.session else None
        got = await c.latest(session_id, HISTORY_SHOWN)
        self.feed.follow(got.session.id, got.session.last_seq)
        self.session, self.tasks = got.session, got.tasks
        self.running.clear()
        self.turn = TurnState(model=got.session.current_model)
        self.query_one(StatusLine).load(got.messages, got.session.cost_usd)
        self.transcript.load(got.messages, got.switches,
                             hidden=max(got.session.message_count - len(got.messages), 0))
        self._show_session()
        self._show_tasks()
        if old and old != session_id:
            await c.detach(old)
        await c.attach(session_id, since_seq=got.session.last_seq)
        self._restore_draft(got)
        self.ready = True

    def on_prompt_area_hint(self, event: PromptArea.Hint) -> None:
        self.show_hint(event.text)

    def show_hint(self, text: str) -> None:
        """A line under the prompt: completion candidates, a command's usage."""
        for hint in self.query("#hint").results(Static):  # none while the screen goes
            hint.update(Text(text))
            hint.set_class(bool(text), "on")

    def _show_session(self) -> None:
        s = self.session
        if s is None:
            return
        where = PurePath(s.project_id).name if s.project_id else ""
        self.query_one("#title", Static).update(
            Text.assemble((s.title, "bold"), (f"  {where}" if where else "", "dim")))
        self.selector.chosen, self.selector.current = s.model, s.current_model
        info = self.models.get(s.current_model)
        self.query_one(StatusLine).model(info.context_window if info else None, self.emulator)
        self.prompt.placeholder = (
            f"Message {'auto' if s.model == AUTO else self.short(s.current_model)}… "
            "(enter sends · tab completes /commands and @files · /help)")
        self._show_progress()

    def _show_progress(self) -> None:
        self.turn.running = bool(self.running)
        self.query_one(ProgressLine).show(self.turn, self.tasks, self.short(self.turn.model))

    def _show_tasks(self) -> None:
        self.query_one(TaskPanel).show(self.tasks)
        is_open = self.tasks_open if self.tasks_open is not None else bool(self.tasks.tasks)
        self.query_one(TaskPanel).set_class(is_open, "open")
        self._show_progress()

    async def _new_session(self, title: str | None = None) -> None:
        s = await self.client.create_session(project_id=self.project or None, title=title)
        await self.open_session(s.id)

    async def _pick(self) -> None:
        page = await self.client.list_sessions(limit=500)
        choice = await self.push_screen_wait(SessionPicker(
            page.sessions, self.project, self.session.id if self.session else "", self.short, self.clock()))
        if choice == NEW:
            await self._new_session()
        elif choice:
            await self.open_session(choice)
        self.prompt.focus()

    # --- what the user does -------------------------------------------------------------

    def command(self, line: str) -> None:
        if not run_session_command(self, line):
            run_command(self, line)

    def put_in_prompt(self, text: str) -> None:
        """Replace the draft with ``text``, the cursor at its end (``/edit``)."""
        self.prompt.value = text
        self.prompt.focus()

    def switch(self, model: str) -> None:
        if self.session is None:
            return
        sid = self.session.id

        async def switch() -> None:
            result = await self.client.switch_model(sid, model)
            if self.session and self.session.id == sid:
                self.session = result.session
                self._show_session()
            if result.switch is None:
                self.notify(f"already on {self.short(result.session.current_model)}")
        self._spawn(switch(), f"cannot switch to {model}")

    def on_model_selector_picked(self, event: ModelSelector.Picked) -> None:
        self.switch(event.model_id)
        self.prompt.focus()

    def on_model_selector_highlighted(self, event: ModelSelector.Highlighted) -> None:
        info = self.query_one("#model-info", Static)
        info.update(Text(event.text or ""))
        info.set_class(event.text is not None, "on")

    def action_focus_models(self) -> None:
        self.selector.focus()

    def action_cancel(self, quiet: bool = False) -> None:
        if self.session is None:
            return
        if not self.running:
            if not quiet:
                self.notify("nothing is running · ctrl+q quits")
            return
        sid = self.session.id

        async def cancel() -> None:
            try:
                await self.client.cancel(sid)
            except RpcError as exc:
                if exc.code != ErrorCode.NOTHING_TO_CANCEL:
                    raise
        self._spawn(cancel(), "cannot cancel")

    def action_toggle_tasks(self) -> None:
        self.tasks_open = not self.query_one(TaskPanel).has_class("open")
        self._show_tasks()

    def action_new_session(self, title: str | None = None) -> None:
        self._spawn(self._new_session(title), "cannot create a session")

    def action_pick_session(self) -> None:
        self._spawn(self._pick(), "cannot list sessions")


async def run_tui(client: AsyncClient, session: str | None, project: str) -> int:
    """Run the app until the user quits (the daemon and the session stay)."""
    await ChatApp(client, session=session, project=project).run_async()
    return 0
