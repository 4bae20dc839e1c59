"""The stream writer: one reply's blocks as they arrive, committed in batches.

While the reply streams, text is committed at most every ``CHECKPOINT_S`` as
``message/delta`` events, and no later than ``CHECKPOINT_S`` after it arrived: a
timer flushes what waits when no further chunk comes to do it, so a client sees
text a few milliseconds after its arrival whatever the provider's spacing.

A checkpoint appends its deltas and nothing else: the message record is written
whole when the reply opens (empty, ``streaming``) and when it ends, never rewritten
in between, so a reply costs disk and time linear in its length. The store rebuilds
a streaming reply's text from its deltas (``store/streams.py``), so a crash keeps
what arrived and the restart marks the reply interrupted with it.

The reply is opened (``open_soon``) in a commit of its own while the provider builds
and sends the request: the SDK works on its own thread (``providers/offloop``) and
LMDB lets go of the interpreter while it syncs, so the opening costs the first token
nothing and the first text's checkpoint appends its delta alone. If that commit is
refused, the first text (or the end) opens the reply instead. A checkpoint's commit is not durable
(``records.Change.durable``): it syncs its data but leaves the metadata page to the
next durable commit, so a delta reaches clients after one sync rather than two; a
machine crash may lose the last checkpoint's text, never what came before it. A
commit the store refuses (a full disk) leaves the writer as it was, so the same end
can be written again later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import msgspec

from duologue.protocol import methods as m
from duologue.protocol.entities import (
    ContentBlock,
    Message,
    ModelInfo,
    SwitchKind,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
    Usage,
)

from ..ids import new_id
from ..metrics import Metrics
from ..providers.base import TextDelta, TextSignature, ThinkingDelta, ThinkingDone, ToolCallEvent
from ..sessions import Draft, Sessions
from ..store import StoreWriteError
from .outcome import Outcome

log = logging.getLogger(__name__)

CHECKPOINT_S = 0.002
"""The least time between two checkpoints of a reply. Short: a chunk that arrives
just after a checkpoint waits this long, so at a provider's usual 10 ms spacing a
longer gap would hold nearly every chunk back by a whole gap (the timer and the
chunks fall into step); long enough that a burst of chunks read at once is one
commit, not one sync each."""
REPORT_INTERVAL_S = 0.1


@dataclass
class Opening:
    """A reply not committed yet, and what brought its model (a switch to record
    with it in its first round)."""

    model: ModelInfo
    reason: str
    kind: SwitchKind
    switch: bool
    id: str = field(default_factory=new_id)


class ReplyWriter:
    """The blocks of one reply as they arrive, committed in batches.

    Blocks keep the order the model produced them in (thinking, text, calls), with
    their side data: that order and those bytes are what the same model wants back.
    Thinking text goes out as ``message/delta`` with ``thinking`` set, never mixed
    into the reply's text.
    """

    def __init__(self, sessions: Sessions, metrics: Metrics, session_id: str, turn_id: str, opening: Opening,
                 on_checkpoint: Callable[[int], None]):
        """``on_checkpoint`` is called after each checkpoint with the tokens streamed
        so far (roughly: four characters a token); the turn reports progress."""
        self._sessions = sessions
        self._metrics = metrics
        self._session_id = session_id
        self._turn_id = turn_id
        self._opening = opening
        self._on_checkpoint = on_checkpoint
        self.output_tokens = 0
        self._reply: Message | None = None
        self._opened = False
        """Whether the reply's opening has been stored."""
        self._blocks: list[ContentBlock] = []
        self._text: list[str] = []
        """Text of the block being written (the last one, when it is a TextBlock)."""
        self._thinking: list[str] = []
        """Thinking text streamed for the block not yet complete."""
        self.calls: list[ToolCallEvent] = []
        self._after_text = False
        self._pending: list[tuple[str, str]] = []
        self._last_flush = 0.0  # the first text is committed at once: time to first token
        self._last_report = 0.0
        self._timer: asyncio.TimerHandle | None = None
        """The checkpoint due for text waiting since the last one, when no chunk came."""
        self._opening_due: asyncio.Handle | None = None
        self._ended = False
        self._started = time.monotonic()
        self.ttft_ms: float | None = None

    def start(self) -> float:
        """The provider call begins: time to first token counts from here."""
        self._started = time.monotonic()
        return self._started

    def open_soon(self) -> None:
        """Open the reply once the caller next yields to the loop: called just before
        the provider stream is iterated, so the opening's commit runs while the
        request is built and sent."""
        self._opening_due = asyncio.get_running_loop().call_soon(self._open_now)

    def _open_now(self) -> None:
        """The early opening. A refused commit is not raised (a loop callback has
        nobody to raise to): the first text or the end opens the reply instead."""
        self._opening_due = None
        if self._ended or self._opened:
            return
        opened = self._draft()
        if opened is None:
            return
        try:
            with self._undone_if_refused():
                self._sessions.commit(opened[0], durable=False, current_model=self._opening.model.id)
        except StoreWriteError as exc:
            log.warning("turn %s: the reply could not be opened early (%s); its first text opens it",
                        self._turn_id, exc)

    def add(self, event: object) -> None:
        follows_text, self._after_text = self._after_text, isinstance(event, TextDelta) and bool(event.text)
        if isinstance(event, TextDelta):
            self._add_text(event.text)
        elif isinstance(event, ThinkingDelta):
            self._thinking.append(event.text)
            self._queue("thinking", event.text)
        elif isinstance(event, ThinkingDone):
            self._close_text()
            self._thinking.clear()
            self._blocks.append(ThinkingBlock(text=event.text, signature=event.signature, redacted=event.redacted))
        elif isinstance(event, TextSignature):
            self._close_text(event.signature, own_text=follows_text)
        elif isinstance(event, ToolCallEvent):
            self._close_text()
            self.calls.append(event)
            self._blocks.append(ToolCallBlock(id=event.id, name=event.name, input=dict(event.input),
                                              signature=event.signature))

    def _add_text(self, text: str) -> None:
        if not text:
            return
        self._text.append(text)
        self._queue("text", text)

    def _queue(self, channel: str, text: str) -> None:
        if not text:
            return
        now = time.monotonic()
        if self.ttft_ms is None:
            self.ttft_ms = (now - self._started) * 1000
        self._pending.append((channel, text))
        self.output_tokens += max(1, len(text) // 4)
        wait = CHECKPOINT_S - (now - self._last_flush)
        if wait <= 0:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(wait, self._checkpoint_due)

    def _checkpoint_due(self) -> None:
        """The timer's checkpoint. A refused commit is not raised here (a loop
        callback has nobody to raise to): the text stays pending, and the next chunk
        or the reply's end writes it again and ends the reply failed if the store
        still refuses, as a checkpoint on arrival does."""
        self._timer = None
        if self._ended:
            return
        try:
            self.flush()
        except StoreWriteError as exc:
            log.warning("turn %s: a timed checkpoint could not be stored (%s); the next write retries",
                        self._turn_id, exc)

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _stop_opening(self) -> None:
        if self._opening_due is not None:
            self._opening_due.cancel()
            self._opening_due = None

    def _close_text(self, signature: str | None = None, own_text: bool = False) -> None:
        """End the text block being written. A signature belongs to the part that
        carried it (Gemini's last text part when it follows that part's text, else an
        empty part of its own), which stays a block of its own: Google asks that a
        signed part never be merged with others."""
        if signature is not None:
            signed = self._text.pop() if own_text and self._text else ""
            self._close_text()
            self._blocks.append(TextBlock(text=signed, signature=signature))
        elif self._text:
            self._blocks.append(TextBlock(text="".join(self._text)))
            self._text.clear()

    def _content(self) -> list[ContentBlock]:
        content = list(self._blocks)
        if self._thinking:
            content.append(ThinkingBlock(text="".join(self._thinking)))  # unsigned until it completes
        if self._text:
            content.append(TextBlock(text="".join(self._text)))
        return content

    def _message(self, reply: Message) -> Message:
        return msgspec.structs.replace(reply, content=self._content())

    @contextlib.contextmanager
    def _undone_if_refused(self) -> Iterator[None]:
        """A commit the store refuses leaves the stream as before it: its deltas
        pending, and a reply opened in that draft not open yet."""
        pending, opened = list(self._pending), self._opened
        try:
            yield
        except StoreWriteError:
            self._pending, self._opened = pending + self._pending, opened
            if not opened:
                self._reply = None
            raise
        self._opened = True

    def _draft(self) -> tuple[Draft, Message] | None:
        """A draft for the next commit, opening the reply in it if it is not yet."""
        session = self._sessions.store.get_session(self._session_id)
        if session is None:
            return None
        draft = self._sessions.draft(session)
        if self._reply is None:
            self._reply = self._open(draft)
        return draft, self._reply

    def _open(self, draft: Draft) -> Message:
        """Add the reply (and the switch that brought its model, if any) to a draft."""
        opening, session = self._opening, draft.session
        if opening.switch and opening.model.id != session.current_model:
            self._sessions.record_switch(draft, opening.model.id, opening.reason, opening.kind)
            self._metrics.record_switch(opening.model.id)
        return draft.add_message(lambda seq: Message(
            id=opening.id, session_id=session.id, seq=seq, role="assistant", content=[],
            created_at=draft.now, model=opening.model.id, status="streaming", turn_id=self._turn_id))

    def finish(self, outcome: Outcome, *, usage: Usage | None, latency_ms: float,
               stop_reason: str | None) -> None:
        """Commit the final record; text not yet checkpointed goes out as a last
        delta in the same transaction, saving a sync per turn. No timed checkpoint
        follows, even when the store refuses this (the end is written again instead)."""
        self._ended = True
        self._stop_timer()
        self._stop_opening()
        opened = self._draft()
        if opened is None:
            return
        draft, reply = opened
        with self._undone_if_refused():
            self._commit_final(draft, reply, outcome, usage=usage, latency_ms=latency_ms, stop_reason=stop_reason)

    def _commit_final(self, draft: Draft, reply: Message, outcome: Outcome, *, usage: Usage | None,
                      latency_ms: float, stop_reason: str | None) -> None:
        self._emit_pending(draft, reply)
        model = self._opening.model
        cost = self._metrics.cost_of(model, usage) if usage is not None else None
        final = msgspec.structs.replace(
            self._message(reply), status=outcome.status, usage=usage, ttft_ms=self.ttft_ms,
            latency_ms=latency_ms, stop_reason=stop_reason, error=outcome.error_text,
            refusal=outcome.refusal, cost_usd=cost)
        draft.messages.append(final)
        draft.emit(m.MessageCompleted, message=final)
        self._sessions.commit(draft, current_model=model.id,
                                    cost_usd=draft.session.cost_usd + (cost or 0.0))

    def _emit_pending(self, draft: Draft, reply: Message) -> None:
        """One delta per run of the same channel (text or thinking), in order."""
        pending, self._pending = self._pending, []
        runs: list[tuple[str, list[str]]] = []
        for channel, text in pending:
            if runs and runs[-1][0] == channel:
                runs[-1][1].append(text)
            else:
                runs.append((channel, [text]))
        for channel, texts in runs:
            if channel == "thinking":
                draft.emit_delta(reply, "", thinking="".join(texts))
            else:
                draft.emit_delta(reply, "".join(texts))

    def flush(self) -> None:
        """Commit the pending text as delta events (the message record is left as it
        was opened: its text is the deltas')."""
        self._stop_timer()
        if not self._pending:
            return
        opened = self._draft()
        if opened is None:
            self._pending.clear()
            return
        draft, reply = opened
        with self._undone_if_refused():
            self._emit_pending(draft, reply)
            self._sessions.commit(draft, durable=False, current_model=self._opening.model.id)
        self._last_flush = time.monotonic()
        if self._last_flush - self._last_report >= REPORT_INTERVAL_S:
            self._last_report = self._last_flush
            self._on_checkpoint(self.output_tokens)
