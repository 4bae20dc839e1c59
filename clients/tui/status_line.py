"""The chat's status line: how much of the current model's window the session fills,
and what the session has cost so far.

Context used is what the last reply's request carried plus what it wrote (its billed
prompt tokens, cached or not, and its output): where the next request starts. The
window is the current model's, from the catalog, so a switch to a smaller model shows
at once how close the session comes to its limit. The cost is the session's as
billed, kept by the daemon (``Session.cost_usd``) and grown by each completed reply;
a daemon on the emulator bills nothing, and the line says ``emulator/$0`` rather than
showing a dollar figure nobody spent.

When the daemon replicates sessions (``[sync]``, docs/sync.md) and this one is not in
sync, the line says so: the daemon is not connected to NATS, this session's changes
wait to be published, or it diverged from another machine's. In sync, nothing is
added: the state is asked for every ``SYNC_POLL_S`` (``sync/status``), not pushed.
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text
from textual.widget import Widget

from duologue.protocol.entities import Message
from duologue.protocol.methods import SyncStatusResult

from ..render import compact_tokens, format_cost

FULL_AT = 0.8
"""From this share of the window on, the meter is drawn as a warning."""
SYNC_POLL_S = 5.0


def sync_text(status: SyncStatusResult, session_id: str | None) -> str | None:
    """What the line says of ``session_id``'s replication; None when it is in sync
    or sync is not configured."""
    if not status.configured:
        return None
    if not status.connected:
        return "sync: offline"
    row = next((r for r in status.sessions if r.session_id == session_id), None)
    if row is None:
        return None
    if row.diverged_after_seq is not None:
        return f"sync: diverged after #{row.diverged_after_seq}"
    if row.missing_after_seq is not None:
        return "sync: history missing"
    return f"sync: {row.unpublished} unsent" if row.unpublished else None


def context_tokens(reply: Message) -> int | None:
    """The tokens a reply's exchange left in the context, or None without usage."""
    if reply.usage is None:
        return None
    return reply.usage.prompt_tokens + reply.usage.output_tokens


def meter_text(used: int, window: int | None, cost_usd: float, emulator: bool) -> Text:
    """``12.3k/200k ctx 6% · $0.0123``; the share is left out without a window."""
    text = Text()
    if window:
        share = used / window
        text.append(f"{compact_tokens(used)}/{compact_tokens(window)} ctx {share:.0%}",
                    style="bold yellow" if share >= FULL_AT else "")
    else:
        text.append(f"{compact_tokens(used)} ctx")
    text.append(" · ", style="dim")
    text.append("emulator/$0" if emulator else format_cost(cost_usd), style="dim" if emulator else "")
    return text


class StatusLine(Widget):
    """The meter, kept from the session's history and its events as they come."""

    DEFAULT_CSS = "StatusLine { height: 1; width: auto; padding: 0 1; }"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.used = 0
        self.window: int | None = None
        self.cost_usd = 0.0
        self.emulator = False
        self.sync: str | None = None

    def load(self, messages: Iterable[Message], cost_usd: float) -> None:
        """A session opened: its cost as the daemon keeps it, the context of its last
        reply that has usage."""
        self.cost_usd = cost_usd
        self.used = 0
        for msg in reversed(list(messages)):
            tokens = context_tokens(msg) if msg.role == "assistant" else None
            if tokens is not None:
                self.used = tokens
                break
        self.refresh(layout=True)

    def reply_completed(self, reply: Message) -> None:
        tokens = context_tokens(reply)
        if tokens is not None:
            self.used = tokens
        self.cost_usd += reply.cost_usd or 0.0
        self.refresh(layout=True)

    def model(self, window: int | None, emulator: bool) -> None:
        """The current model changed (or the catalog arrived): its window."""
        self.window, self.emulator = window, emulator
        self.refresh(layout=True)

    def sync_state(self, text: str | None) -> None:
        """The session's replication state as ``sync_text`` words it."""
        if text != self.sync:
            self.sync = text
            self.refresh(layout=True)

    def render(self) -> Text:
        text = meter_text(self.used, self.window, self.cost_usd, self.emulator)
        if self.sync:
            text.append(" · ", style="dim")
            text.append(self.sync, style="bold yellow")
        return text
