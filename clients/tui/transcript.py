"""The transcript: messages labelled with the model that wrote them, a marker at
every model switch with its kind and reason, and replies that grow as they stream.

Markers and notices hold plain text (``rich.text.Text``, never markup), so whatever a
model or a person writes is shown as written; a message is a
:class:`~.message_view.MessageView` (one static widget, replies as Markdown), a
reply while it streams a :class:`~.live_reply.LiveReply`, replaced when it ends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from rich.text import Text
from textual.containers import VerticalScroll
from textual.widget import Widget

from duologue.protocol.entities import Message, ModelSwitch

from .marks import Markable
from .live_reply import LiveReply
from .message_view import MessageView

View = MessageView | LiveReply

_SWITCH_STYLE = {"manual": "bold cyan", "auto": "bold magenta", "failover": "bold yellow"}

Labeler = Callable[[str | None], str]
"""A model id to the label shown above its replies (``sonnet · Claude Sonnet 5.5``)."""


def switch_text(w: ModelSwitch, label: Labeler) -> Text:
    origin = label(w.from_model) if w.from_model else "-"
    return Text(f"⇄ {origin} → {label(w.to_model)} · {w.kind}: {w.reason}", style=_SWITCH_STYLE[w.kind])


class SwitchMarker(Markable):
    DEFAULT_CSS = "SwitchMarker { margin: 0 0 1 0; text-align: center; }"

    def __init__(self, switch: ModelSwitch, label: Labeler) -> None:
        super().__init__(switch_text(switch, label))
        self.switch = switch


class Notice(Markable):
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
        self.views: dict[str, View] = {}
        self.switches: list[ModelSwitch] = []
        self.emulator = False
        """The daemon answers from its emulator: every reply says so in its head."""

    def on_mount(self) -> None:
        self.anchor()  # follow the newest line until the user scrolls up

    def _add(self, *widgets: Widget) -> None:
        self.query(".hint").remove()  # the empty-session hint goes with the first item
        self.mount_all(widgets)

    def load(self, messages: list[Message], switches: Iterable[ModelSwitch], hidden: int = 0) -> None:
        """Replace everything with a session's history (``hidden`` older messages left out)."""
        self.remove_children()
        self.views = {}
        self.switches = list(switches)
        items: list[Widget] = []
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

    def _view(self, msg: Message, via: str | None = None, fold: bool = True) -> View:
        label = "you" if msg.role == "user" else self.label(msg.model)
        view: View
        if msg.role == "assistant" and msg.status == "streaming":
            view = LiveReply(msg, label, emulator=self.emulator)
        else:
            view = MessageView(msg, label, via, emulator=self.emulator, fold=fold)
        self.views[msg.id] = view
        return view

    def _complete(self, view: View, msg: Message) -> None:
        if isinstance(view, MessageView):
            view.complete(msg)
        elif msg.status == "streaming":
            view.message = msg
        else:
            # the reply ended: one static widget takes the place of the live Markdown's
            done = MessageView(msg, view.label, emulator=self.emulator, fold=False)
            self.views[msg.id] = done
            self.mount(done, before=view) if view.parent is self else self.mount(done)
            view.remove()

    def message_created(self, msg: Message, via: str | None = None) -> None:
        if msg.id in self.views:
            self._complete(self.views[msg.id], msg)
            return
        # a reply streaming live stays open: its reader is following it
        self._add(self._view(msg, via, fold=msg.role == "user"))

    def delta(self, message_id: str, text: str, thinking: str = "") -> None:
        view = self.views.get(message_id)
        if isinstance(view, LiveReply):
            view.append(text, thinking)

    def message_completed(self, msg: Message) -> None:
        view = self.views.get(msg.id)
        if view is None:
            self.message_created(msg)
        else:
            self._complete(view, msg)

    def switched(self, switch: ModelSwitch) -> None:
        self.switches.append(switch)
        self._add(SwitchMarker(switch, self.short))

    def notice(self, text: str, style: str = "") -> None:
        self._add(Notice(Text(text, style=style)))

    def pending(self, text: str) -> Notice:
        """A prompt sent but not acknowledged yet, shown until it is (remove the widget)."""
        lines = text.splitlines() or [""]
        shown = lines[0][:200] + (f" … ({len(lines)} lines)" if len(lines) > 1 else "")
        widget = Notice(Text(f"⧗ pending, not yet received by the daemon: {shown}", style="bold yellow"))
        self._add(widget)
        return widget

    # --- moving around --------------------------------------------------------------------

    def jump_switch(self, forward: bool) -> SwitchMarker | None:
        """Scroll the next (or previous) switch marker to the top of the view."""
        top = self.scroll_y
        markers = list(self.query(SwitchMarker))
        if forward:
            target = next((w for w in markers if w.virtual_region.y > top + 0.5), None)
        else:
            target = next((w for w in reversed(markers) if w.virtual_region.y < top - 0.5), None)
        if target is not None:
            self.release_anchor()
            self.scroll_to(y=target.virtual_region.y, animate=False)
        return target

    def unfold_last(self) -> MessageView | None:
        """Open the newest folded message and bring it into view."""
        view = next((v for v in reversed(list(self.query(MessageView))) if v.folded), None)
        if view is not None:
            view.unfold()
            self.release_anchor()
            self.scroll_to_widget(view, animate=False, top=True)
        return view

    def last_code_block(self) -> str | None:
        for view in reversed([w for w in self.children if isinstance(w, (MessageView, LiveReply))]):
            blocks = view.code_blocks()
            if blocks:
                return blocks[-1]
        return None

    def items(self) -> list[tuple[Widget, str]]:
        """Every message, marker and notice shown, with its text, top to bottom."""
        return [(child, child.rendered().plain if isinstance(child, LiveReply) else child.plain_text)
                for child in self.children if isinstance(child, (LiveReply, Markable))]

    def markables(self) -> list[tuple[Widget, list[Markable]]]:
        """Every item shown with the widgets find marks words in, top to bottom."""
        return [(child, child.marked_parts() if isinstance(child, LiveReply) else [child])
                for child in self.children if isinstance(child, (LiveReply, Markable))]

    def plain(self) -> str:
        """Everything shown, as text (for tests and copying)."""
        return "\n\n".join(text for _, text in self.items())
