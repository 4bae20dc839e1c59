"""Driving the Textual chat in tests: waiting on its state, reading its screen as
text, and comparing that text with the snapshots kept in tests/tui/snapshots/.

A snapshot is the plain text of the whole screen (what a person would read on a
monochrome terminal) plus, beside it, an SVG of the same screen with colours for
reviewers. Only the text is compared: colours and cursor blink vary with Textual's
theme and timing, the layout and the words must not. Regenerate after an intended
change with ``DUOLOGUE_UPDATE_SNAPSHOTS=1 .venv/bin/pytest tests/tui`` and review
the diff.
"""

from __future__ import annotations

import io
import os
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from pathlib import Path

from rich.cells import cell_len
from rich.console import Console
from textual.app import App
from textual.pilot import Pilot

from duologue.clients.tui.live_reply import LiveReply

SNAPSHOTS = Path(__file__).parent / "tui" / "snapshots"
UPDATE = os.environ.get("DUOLOGUE_UPDATE_SNAPSHOTS") == "1"
PROJECT = "/home/ada/src/cache"
"""The project every chat test works in (a fixed string, so screens do not vary)."""
FROZEN = datetime(2000, 1, 1, tzinfo=timezone.utc)
"""A clock frozen before anything a test creates, so every relative time reads "just now"."""
_ULID = re.compile(r"\b[0-9A-HJKMNP-TV-Z]{26}\b")


def replies(app: App) -> list:
    """The assistant replies shown, oldest first (``MessageView``, or ``LiveReply`` while streaming)."""
    return [v for v in app.transcript.views.values() if v.message.role == "assistant"]


def rows(widget) -> list[str]:
    """The rows a widget draws (with its border and padding), as text."""
    return ["".join(seg.text for seg in strip) for strip in widget.render_lines(widget.content_region.reset_offset)]


def turn_done(app: App, n: int = 1) -> Callable[[], bool]:
    """A predicate: the ``n``-th reply has ended and no turn is running."""
    return lambda: (len(replies(app)) >= n and replies(app)[n - 1].message.status != "streaming"
                    and not app.running)


async def until(pilot: Pilot, predicate: Callable[[], object], timeout: float = 90.0,
                what: str = "condition") -> None:
    """Let the app run until ``predicate()`` holds; fail with ``what`` after ``timeout``
    (a bound on a hang: a first turn imports a provider SDK, which takes tens of
    seconds on a loaded machine)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await pilot.pause(0.02)


@asynccontextmanager
async def open_app(make_app: Callable[..., App], client: object, *, size: tuple[int, int] = (80, 24),
                   **kwargs: object) -> AsyncIterator[tuple[App, Pilot]]:
    """The chat app on ``client``, running headless at ``size``, once its session is open."""
    app = make_app(client, **kwargs)
    async with app.run_test(size=size) as pilot:
        await until(pilot, lambda: app.ready, what="the session to open")
        yield app, pilot


async def settle(pilot: Pilot) -> None:
    """Let the stream's draw timers fire, then pending layout and refreshes run."""
    def drawn() -> bool:  # on every screen: a picker's snapshot shows the chat below it
        return not any(view.draw_pending for screen in pilot.app.screen_stack for view in screen.query(LiveReply))

    await until(pilot, drawn, what="streamed text to be drawn")
    await pilot.pause()
    await pilot.wait_for_scheduled_animations()
    await pilot.pause()


def _render(app: App, svg: bool) -> str:
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True,
                      color_system="truecolor", record=True, legacy_windows=False, safe_box=False)
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    if svg:
        return console.export_svg(title="duologue chat")
    return console.export_text(styles=False)


def screen_text(app: App) -> str:
    """The screen as plain text, one line per row, trailing blanks removed,
    session ids masked."""
    lines = [_ULID.sub("<session-id>", line.rstrip()) for line in _render(app, False).splitlines()]
    return "\n".join(lines).rstrip("\n") + "\n"


def assert_snapshot(app: App, name: str) -> None:
    text = screen_text(app)
    width = app.size.width
    assert all(cell_len(line) <= width for line in text.splitlines()), "a line overflows the screen"
    path = SNAPSHOTS / f"{name}.txt"
    if UPDATE or not path.exists():
        SNAPSHOTS.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        (SNAPSHOTS / f"{name}.svg").write_text(_render(app, True), encoding="utf-8")
        if not UPDATE:
            raise AssertionError(f"snapshot {path.name} did not exist and was written; review and rerun")
        return
    expected = path.read_text(encoding="utf-8")
    if text != expected:
        import difflib
        diff = "\n".join(difflib.unified_diff(expected.splitlines(), text.splitlines(), "kept", "now",
                                              lineterm=""))
        raise AssertionError(f"screen differs from snapshot {path.name} "
                             f"(DUOLOGUE_UPDATE_SNAPSHOTS=1 regenerates it):\n{diff}")
