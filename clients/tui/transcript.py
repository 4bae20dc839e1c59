"""The transcript: messages labelled with the model that wrote them, a marker at
every model switch with its kind and reason, and replies that grow as they stream.

Widgets hold plain text (``rich.text.Text``, never markup), so whatever a model or a
person writes is shown as written. Streamed text is drawn at most every
``FLUSH_S`` seconds so a fast stream does not re-wrap a long reply per word.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from rich.text import Text
from textual.containers import VerticalScroll
from textual.timer import Timer
from textual.widgets import Static

from duologue.protocol.entities import CodeContextBlock, Message, ModelSwitch, TextBlock

from ..render import format_cost, refusal_line, thinking_line

FLUSH_S = 0.05
_SWITCH_STYLE = {"manual": "bold cyan", "auto": "bold magenta", "failover": "bold yellow"}

Labeler = Callable[[str | None], str]
"""A model id to the label shown above its replies (``sonnet · Claude Sonnet 5.5``)."""


def switch_text(w: ModelSwitch, label: Labeler) -> Text:
    origin = label(w.from_model) if w.from_model else "-"
    return Text(f"⇄ {origin} → {label(w.to_model)} · {w.kind}: {w.reason}", style=_SWITCH_STYLE[w.kind])


class MessageView(Static):
    """One message; an assistant reply keeps growing until it completes."""

    DEFAULT_CSS = """
    MessageView { margin: 0 0 1 0; }
    MessageView.user { padding: 0 0 0 1; border-left: outer $secondary; }
    MessageView.assistant { padding: 0 0 0 1; border-left: outer $primary; }
    MessageView.failed { border-left: outer $error; }
    """

    def __init__(self, message: Message, label: str, via: str | None = None) -> None:
        super().__init__(classes=message.role)
        self.message = message
        self.label = label
        self.via = via
        self.text = message.text
        self.thinking = message.thinking
        self._timer: Timer | None = None

    def on_mount(self) -> None:
        self.draw()

    def append(self, text: str, thinking: str = "") -> None:
        self.text += text
        self.thinking += thinking
        if self._timer is None and self.is_mounted:
            self._timer = self.set_timer(FLUSH_S, self.draw)

    @property
    def draw_pending(self) -> bool:
        """Streamed text is waiting for the next draw (deltas are drawn at most every
        ``FLUSH_S``, not one repaint per delta)."""
        return self._timer is not None

    def complete(self, message: Message) -> None:
        self.message = message
        self.text = message.text
        self.thinking = message.thinking
        self.set_class(message.status in ("failed", "interrupted", "refused"), "failed")
        self.draw()

    def draw(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        self.update(self.rendered())

    def rendered(self) -> Text:
        msg = self.message
        head = Text(self.label, style="bold" + (" cyan" if msg.role == "user" else " green"))
        if self.via:
            head.append(f" · {self.via}", style="dim")
        if msg.pinned:
            head.append(" · pinned", style="dim")
        if msg.status == "streaming":
            head.append(" …", style="dim")
        out = Text.assemble(head, "\n")
        for block in msg.content:
            if isinstance(block, CodeContextBlock):
                where = block.path + (f":{block.range.start}-{block.range.end}" if block.range else "")
                out.append(f"[context {where}]\n", style="dim")
        if self.thinking:
            out.append(thinking_line(self.thinking) + "\n", style="dim italic")
        body = self.text if self.text or msg.status != "complete" else \
            "".join(b.text for b in msg.content if isinstance(b, TextBlock))
        out.append(body)
        if msg.cost_usd:
            out.append(f"\n{format_cost(msg.cost_usd)}", style="dim")
        if msg.status == "refused":
            out.append(f"\n⊘ {refusal_line(msg)}", style="bold yellow")
        elif msg.status == "cancelled":
            out.append("\n■ cancelled (the partial reply is kept)", style="bold yellow")
        elif msg.status in ("failed", "interrupted"):
            out.append(f"\n✗ turn {msg.status}: {msg.error or 'no detail'}", style="bold red")
        return out.rstrip() or out


class SwitchMarker(Static):
    DEFAULT_CSS = "SwitchMarker { margin: 0 0 1 0; text-align: center; }"

    def __init__(self, switch: ModelSwitch, label: Labeler) -> None:
        super().__init__(switch_text(switch, label))
        self.switch = switch


class Notice(Static):
    """A line from the app itself (connection lost, an error of a request)."""

    DEFAULT_CSS = "Notice { margin: 0 0 1 0; color: $text-muted; }"


class Transcript(VerticalScroll):
    """The session's messages and switches in seq order, scrolled to the newest."""

    DEFAULT_CSS = "Transcript { padding: 0 1; }"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.label: Labeler = lambda model: model or "assistant"
        """Labels replies (long form)."""
        self.short: Labeler = lambda model: model or "-"
        """Names models in switch markers."""
        self.views: dict[str, MessageView] = {}
        self.switches: list[ModelSwitch] = []

    def on_mount(self) -> None:
        self.anchor()  # follow the newest line until the user scrolls up

    def _add(self, *widgets: Static) -> None:
        self.query(".hint").remove()  # the empty-session hint goes with the first item
        self.mount_all(widgets)

    def load(self, messages: list[Message], switches: Iterable[ModelSwitch], hidden: int = 0) -> None:
        """Replace everything with a session's history (``hidden`` older messages left out)."""
        self.remove_children()
        self.views = {}
        self.switches = list(switches)
        items: list[Static] = []
        pending = sorted(self.switches, key=lambda w: w.seq)
        if hidden and messages:
            items.append(Notice(Text(f"{hidden} earlier messages are not shown; "
                                     "`duologue show` prints the whole session", style="dim")))
            pending = [w for w in pending if w.seq > messages[0].seq]
        for msg in messages:
            while pending and pending[0].seq < msg.seq:
                items.append(SwitchMarker(pending.pop(0), self.short))
            items.append(self._view(msg))
        items.extend(SwitchMarker(w, self.short) for w in pending)
        if not items:
            items.append(Notice("A new session: type below and press enter.", classes="hint"))
        self._add(*items)

    def _view(self, msg: Message, via: str | None = None) -> MessageView:
        view = MessageView(msg, "you" if msg.role == "user" else self.label(msg.model), via)
        self.views[msg.id] = view
        return view

    def message_created(self, msg: Message, via: str | None = None) -> None:
        if msg.id in self.views:
            self.views[msg.id].complete(msg)
            return
        self._add(self._view(msg, via))

    def delta(self, message_id: str, text: str, thinking: str = "") -> None:
        view = self.views.get(message_id)
        if view is not None:
            view.append(text, thinking)

    def message_completed(self, msg: Message) -> None:
        view = self.views.get(msg.id)
        if view is None:
            self.message_created(msg)
        else:
            view.complete(msg)

    def switched(self, switch: ModelSwitch) -> None:
        self.switches.append(switch)
        self._add(SwitchMarker(switch, self.short))

    def notice(self, text: str, style: str = "") -> None:
        self._add(Notice(Text(text, style=style)))

    def pending(self, text: str) -> Static:
        """A prompt sent but not acknowledged yet, shown until it is (remove the widget)."""
        widget = Notice(Text(f"⧗ pending, not yet received by the daemon: {text}", style="bold yellow"))
        self._add(widget)
        return widget

    def plain(self) -> str:
        """Everything shown, as text (for tests and copying)."""
        parts = []
        for child in self.children:
            if isinstance(child, MessageView):
                parts.append(child.rendered().plain)
            elif isinstance(child, Static):
                content = child.content
                parts.append(content.plain if isinstance(content, Text) else str(content))
        return "\n\n".join(parts)
