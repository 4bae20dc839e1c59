"""The terminal chat on a 10,000-message session: time to open it and to scroll to
the top, against a bare Textual app showing the same messages.

The session is generated in this process as ``attach_history`` generates its long
one (5,000 turns, sync off while generating). The chat runs headless
(``App.run_test``, 120x40) on the async client of a real daemon on the emulator.

- Open: from the app's start until the session is open and its newest message is
  laid out on screen at the bottom of the transcript (what a person sees first).
  That covers connecting, ``session/get`` of the whole session, and mounting the
  messages the chat draws (its newest ``HISTORY_SHOWN``).
- Scroll to the top: ``scroll_home`` on the transcript until the oldest drawn item
  is on screen.

Floor: a bare Textual app (the same size, a ``VerticalScroll`` of ``Static`` widgets)
mounting the same number of widgets holding the same texts, measured the same way,
with no daemon, no decoding and no styling of ours: the least a Textual chat pays
to draw those messages. Each run of ours is followed by one of the floor, so both
meet the same machine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from rich.text import Text
from textual.app import App, ComposeResult
from textual.containers import VerticalScroll
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import Static

from duologue.clients.tui import ChatApp
from duologue.clients.tui.app import HISTORY_SHOWN

from .attach_history import generate
from .fixtures import Daemon, temp_home
from .harness import Row, latency_row, ms, now_ns, p50, progress

SIZE = (120, 40)
TIMEOUT_S = 120.0


async def _until(pilot: Pilot, done: Callable[[], bool]) -> None:
    deadline = asyncio.get_running_loop().time() + TIMEOUT_S
    while not done():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("the screen never showed what was waited for")
        await pilot.pause()


def _on_screen(app: App, widget: Widget) -> bool:
    """Laid out, and inside the visible screen."""
    region = widget.region
    return bool(region.height) and app.screen.region.contains_region(region)


async def _open_and_scroll(app: App, scroller: Callable[[], VerticalScroll], ready: Callable[[], bool],
                           ) -> tuple[float, float]:
    """(ms to the newest item on screen at the bottom, ms to scroll to the top)."""
    t0 = now_ns()
    async with app.run_test(size=SIZE) as pilot:
        def newest_shown() -> bool:
            if not ready():
                return False
            view = scroller()
            items = view.children
            return bool(items) and view.scroll_y >= view.max_scroll_y and _on_screen(app, items[-1])
        await _until(pilot, newest_shown)
        t1 = now_ns()
        view = scroller()
        view.scroll_home(animate=False)
        await _until(pilot, lambda: view.scroll_y == 0 and _on_screen(app, view.children[0]))
        t2 = now_ns()
    return ms(t1 - t0), ms(t2 - t1)


class _Bare(App[None]):
    """The floor: the same texts as plain Static widgets in one scroll view."""

    def __init__(self, texts: list[str]) -> None:
        super().__init__()
        self.texts = texts

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="log"):
            yield from (Static(Text(t)) for t in self.texts)

    def on_mount(self) -> None:
        self.query_one("#log", VerticalScroll).anchor()  # kept at the bottom, as the transcript is


async def _measure(d: Daemon, sid: str, n: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"open": [], "top": [], "bare_open": [], "bare_top": []}
    async with d.client("bench-chat", timeout=120) as c:
        got = await c.latest(sid, limit=HISTORY_SHOWN)
        texts = [f"{msg.role}\n{msg.text}" for msg in got.messages]
        texts.insert(0, f"{got.session.message_count - len(got.messages)} earlier messages are not shown")
        for i in range(n + 1):  # the first round warms up (imports, caches) and is not kept
            chat = ChatApp(c, session=sid, project="/bench")
            opened, top = await _open_and_scroll(chat, lambda: chat.transcript, lambda: chat.ready)
            bare = _Bare(texts)
            b_opened, b_top = await _open_and_scroll(bare, lambda: bare.query_one("#log", VerticalScroll),
                                                     lambda: True)
            if i:
                for key, value in zip(out, (opened, top, b_opened, b_top)):
                    out[key].append(value)
            progress(f"round {i}/{n}: chat open {opened:.0f} ms, top {top:.0f} ms; "
                     f"bare open {b_opened:.0f} ms, top {b_top:.0f} ms")
    return out


def run(quick: bool) -> list[Row]:
    messages, n = (1_000, 2) if quick else (10_000, 10)
    with temp_home() as tmp:
        home = tmp / "home"
        sid = generate(home, messages, 0)
        with Daemon(home, builtin_emulator=True) as d:
            got = asyncio.run(_measure(d, sid, n))
    shown = min(messages, HISTORY_SHOWN)
    floor = f"bare Textual app mounting the same {shown} texts as Static widgets"
    return [
        latency_row(f"chat opens a {messages:,}-message session (newest message on screen)", got["open"],
                    floor, got["bare_open"], target="<= 3x floor", with_p99=False,
                    met=None if quick else p50(got["open"]) <= 3 * p50(got["bare_open"]),
                    note=f"headless run_test {SIZE[0]}x{SIZE[1]}; includes connecting and session/get of all "
                         f"{messages:,} messages; the chat draws the newest {shown}"),
        latency_row(f"chat scrolls to the top of a {messages:,}-message session", got["top"],
                    floor, got["bare_top"], target="<= 3x floor", with_p99=False,
                    met=None if quick else p50(got["top"]) <= 3 * p50(got["bare_top"])),
    ]
