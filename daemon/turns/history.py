"""The incremental history of a session: what a round sends, without re-reading it all.

Without it every round reads the whole session from the store, selects its turns,
counts its tokens and prepares and encodes it for the provider, so a session's
lifetime cost grows with the square of its length. Here each recently used session
keeps, in memory:

- its messages in seq order, and their token counts, kept current by every commit
  (``Sessions.watch``: commit is the one write path);
- its *settled start*: ``settled_history`` of the messages before the running turn's
  first message, extended turn by turn, with its token total;
- per target model and encoding (each adapter's own ``encode`` of a prepared turn),
  the encoded turns of a settled start that ``preparation.settled`` allows to stand
  apart (it ends on an assistant turn that calls no tool).

A round then selects, prepares and encodes only what came after. The result is the
same values the from-scratch path gives (tests/daemon/test_history_cache.py grows
random sessions and compares at every step), so the requests are byte-identical.

Invalidation: a commit that rewrites a message inside the settled start (a pin, a
recovered reply), a message joining a turn of the settled start, or anything that
is not an append or an in-place rewrite drops the settled start (rebuilt at the next
round); a session whose ``last_seq`` is not the one the cache saw last (an import's
undo truncated it) or that is deleted is dropped whole. When the window fitter
replaces the older part by a summary, the round sends the fitted list and the
adapters prepare it from scratch. Memory is bounded: the least recently used
sessions go first, past ``MAX_SESSIONS`` or ``MAX_MESSAGES`` in all.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from duologue.protocol.entities import Message, Session

from ..providers.preparation import Turn, finish_turns, prepare_span, settled
from ..routing import message_tokens
from ..store import Store
from .request import history_for, settled_history

_E = TypeVar("_E")

MAX_SESSIONS = 64
MAX_MESSAGES = 100_000
"""Messages held in all, over the sessions kept (the one in use is always kept)."""


@dataclass
class _Encoded:
    """One target's encoding of the first ``count`` messages of the settled start."""

    count: int = 0
    values: list[Any] = field(default_factory=list)


class SessionHistory:
    """One session's messages as stored, and what of them is settled and prepared."""

    def __init__(self, messages: list[Message], last_seq: int):
        self.last_seq = last_seq
        self.messages = messages
        self.seqs = [msg.seq for msg in messages]
        self.tokens = {msg.seq: message_tokens(msg) for msg in messages}
        self.total_tokens = sum(self.tokens.values())
        self.first: dict[str, int] = {}
        """Index of each turn's first message."""
        for index, msg in enumerate(messages):
            if msg.turn_id:
                self.first.setdefault(msg.turn_id, index)
        self.broken = False
        """Set by a change the mirror cannot follow: the session is read again."""
        self.generation = 0
        self._unsettle()

    def _unsettle(self) -> None:
        self.generation += 1
        self.settled_count = 0
        """``messages[:settled_count]`` are whole ended turns, selected in ``selected``."""
        self.selected: list[Message] = []
        self.selected_tokens = 0
        self.encoded: dict[tuple[str, Callable[[Turn], Any]], _Encoded] = {}

    def apply(self, messages: list[Message], last_seq: int) -> None:
        """A commit's messages: new ones are appended, rewritten ones replaced."""
        for msg in messages:
            index = bisect_left(self.seqs, msg.seq)
            tokens = message_tokens(msg)
            if index < len(self.seqs) and self.seqs[index] == msg.seq:
                if self.messages[index].turn_id != msg.turn_id:
                    self.broken = True
                    return
                self.messages[index] = msg
                if index < self.settled_count:
                    self._unsettle()
                self.total_tokens += tokens - self.tokens[msg.seq]
            elif index == len(self.seqs):
                self.messages.append(msg)
                self.seqs.append(msg.seq)
                if msg.turn_id:
                    self.first.setdefault(msg.turn_id, index)
                self.total_tokens += tokens
            else:
                self.broken = True
                return
            self.tokens[msg.seq] = tokens
        self.last_seq = last_seq

    def before_last(self) -> tuple[int, int]:
        """How many messages come before the last one, and their tokens (what the
        auto policy weighs beside the prompt)."""
        if not self.messages:
            return 0, 0
        return len(self.messages) - 1, self.total_tokens - self.tokens[self.seqs[-1]]

    def view(self, prompt: Message) -> HistoryView:
        """The history of the turn of ``prompt``, its settled start brought up to the
        first message of the earliest turn that still has a message from there on."""
        start = bisect_left(self.seqs, prompt.seq)
        start = min(start, self.first.get(prompt.turn_id or "", start))
        while True:
            turns = {msg.turn_id for msg in self.messages[start:] if msg.turn_id}
            earliest = min((self.first[t] for t in turns), default=start)
            if earliest >= start:
                break
            start = earliest
        if start < self.settled_count:  # a message joined a settled turn
            self._unsettle()
        if start > self.settled_count:
            more = settled_history(self.messages[self.settled_count:start])
            self.selected.extend(more)
            self.selected_tokens += sum(self.tokens[msg.seq] for msg in more)
            self.settled_count = start
        rest = history_for(self.messages[start:], prompt)
        return HistoryView(self, self.generation, self.selected + rest, len(self.selected),
                           self.selected_tokens + sum(self.tokens[msg.seq] for msg in rest))


class HistoryView:
    """What one round sends: ``messages`` (``history_for`` of the whole session) and
    their ``tokens``, and their encoding for a target (``PreparedHistory``)."""

    def __init__(self, history: SessionHistory, generation: int, messages: list[Message],
                 settled_count: int, tokens: int):
        self._history = history
        self._generation = generation
        self.messages = messages
        self._settled = settled_count
        """``messages[:_settled]`` is the session's settled start as of this view."""
        self.tokens = tokens

    def encoded(self, target: str, encode: Callable[[Turn], _E], thinking_continuation: bool) -> list[_E]:
        history = self._history
        done = history.encoded.setdefault((target, encode), _Encoded())
        if history.generation != self._generation or done.count > self._settled:
            done = _Encoded()  # the settled start changed since this view was taken
        else:
            self._extend(done, target, encode)
        rest = prepare_span(self.messages[done.count:], target)
        if done.values and (not rest or rest[0].role != "user"):
            rest = prepare_span(self.messages, target)  # the rest does not stand apart: prepared whole
            done = _Encoded()
        tail = finish_turns(rest, thinking_continuation=thinking_continuation)
        return [*done.values, *map(encode, tail)]

    def _extend(self, done: _Encoded, target: str, encode: Callable[[Turn], Any]) -> None:
        """Take the settled messages not yet encoded for ``target`` into ``done`` when
        they stand apart from what follows (``preparation.settled``)."""
        if done.count >= self._settled:
            return
        more = prepare_span(self.messages[done.count:self._settled], target)
        if not more:
            done.count = self._settled
            return
        if (not done.values or more[0].role == "user") and settled(more):
            done.values.extend(map(encode, more))
            done.count = self._settled


class Histories:
    """The sessions' incremental histories, least recently used dropped first."""

    def __init__(self, store: Store, max_sessions: int = MAX_SESSIONS, max_messages: int = MAX_MESSAGES):
        self.store = store
        self.max_sessions = max_sessions
        self.max_messages = max_messages
        self._kept: OrderedDict[str, SessionHistory] = OrderedDict()
        self._held = 0

    def view(self, session: Session, prompt: Message) -> HistoryView:
        return self.of(session).view(prompt)

    def of(self, session: Session) -> SessionHistory:
        """The session's history as stored now, read from the store when not kept."""
        history = self._kept.get(session.id)
        if history is None or history.broken or history.last_seq != session.last_seq:
            self.forget(session.id)
            history = SessionHistory(self.store.messages(session.id), session.last_seq)
            self._kept[session.id] = history
            self._held += len(history.messages)
            self._trim(session.id)
        self._kept.move_to_end(session.id)
        return history

    def committed(self, previous: Session, session: Session, messages: list[Message]) -> None:
        """Follow a commit (``Sessions.watch``) of a session kept here."""
        history = self._kept.get(session.id)
        if history is None:
            return
        if history.last_seq != previous.last_seq:
            self.forget(session.id)
            return
        held = len(history.messages)
        history.apply(messages, session.last_seq)
        self._held += len(history.messages) - held
        if history.broken:
            self.forget(session.id)
        else:
            self._trim(session.id)

    def forget(self, session_id: str) -> None:
        history = self._kept.pop(session_id, None)
        if history is not None:
            self._held -= len(history.messages)

    def _trim(self, keep: str) -> None:
        while len(self._kept) > 1 and (len(self._kept) > self.max_sessions or self._held > self.max_messages):
            oldest = next(iter(self._kept))
            if oldest == keep:
                self._kept.move_to_end(keep)
                oldest = next(iter(self._kept))
            self.forget(oldest)
