"""The rules a client follows on sequence numbers, written once and doing no I/O.

docs/protocol.md section 4 states the rules; :class:`Subscriptions` is them. A client
tells it what happened (an attach is on its way or was answered, a notification
arrived, the connection came back, the daemon said who it is) and it answers what to
do: deliver the notification, skip it, or attach sessions again from a seq. It never
touches a socket, as h11 never does for HTTP, so the CLI, the terminal chat, the
language server and the tests drive the same object and a rule is fixed in one place.

It is not thread-safe and need not be: a client feeds it from one task.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import msgspec

from .jsonrpc import Incoming
from .methods import EVENT_TYPES, NOTIFICATIONS, ClientDropped, SessionDeleted, SessionForked

SkipReason = Literal["duplicate", "not_followed", "unknown", "awaiting_replay"]
"""Why a notification is not passed on: already passed on; of a session this client
does not follow; of a method this client cannot read; beyond a gap that an attach
already asked for is about to fill."""

ReattachCause = Literal["gap", "dropped", "reconnected", "restarted", "forked"]
"""What made the subscriptions incomplete: seqs skipped, a ``client/dropped`` notice,
a new connection to the same daemon, a daemon with a new ``instance_id``, or a
``session/forked`` notice (the seqs after ``after_seq`` now hold another device's
events, so what was passed on there no longer stands)."""


@dataclass(frozen=True)
class Deliver:
    """Pass the notification on: it is new, and stored ones come in seq order."""

    notification: object


@dataclass(frozen=True)
class Skip:
    """Drop the notification; ``reason`` is for logs and tests."""

    reason: SkipReason


@dataclass(frozen=True)
class Resume:
    """One ``session/attach`` to send. ``since_seq`` is None only for a session of
    which nothing was seen yet (its live-only attach was never answered)."""

    session_id: str
    since_seq: int | None


@dataclass(frozen=True)
class Reattach:
    """Attach each of ``sessions`` again; report each answer with
    :meth:`Subscriptions.attached`, or :meth:`Subscriptions.unfollow` the session
    when the daemon refuses it. Until then a gap in those sessions is not asked for
    twice: the replay will fill it."""

    sessions: tuple[Resume, ...]
    cause: ReattachCause


Decision = Deliver | Skip | Reattach


class _Placement(msgspec.Struct):
    """Where a notification this client cannot read stands, when it says."""

    session_id: str | None = None
    seq: int | None = None


_placement = msgspec.json.Decoder(_Placement)


@dataclass
class _Followed:
    last_seq: int | None
    """The newest stored seq passed on, or the seq attached from; None while a live-only
    attach is unanswered (its answer, or the first event, sets it)."""
    replaying: bool
    """An attach was sent and its replay is to come."""
    unreadable: set[int] = field(default_factory=set)
    """Seqs above ``last_seq`` of notifications this client cannot read: events a
    newer daemon stores that this client does not know, so skipping them is no gap."""


class Subscriptions:
    """The sessions a client follows, the last seq seen of each, and the daemon instance
    it follows them on."""

    def __init__(self) -> None:
        self._followed: dict[str, _Followed] = {}
        self.instance_id = ""
        """The daemon's ``instance_id`` as last seen; empty until one is seen."""

    # --- what the client does ------------------------------------------------------------

    def follow(self, session_id: str, since_seq: int | None) -> None:
        """The client is sending ``session/attach`` with this ``since_seq``: from now on
        the session's events count from there (None: live only, from the answer's
        ``last_seq``). Attaching a followed session again starts it over, so a replay
        the client asks for is delivered even where it repeats what was passed on."""
        self._followed[session_id] = _Followed(last_seq=since_seq, replaying=True)

    def attached(self, session_id: str, last_seq: int) -> None:
        """The attach was answered; ``last_seq`` is the session's newest seq then."""
        followed = self._followed.get(session_id)
        if followed is None:
            return
        if followed.last_seq is None:
            followed.last_seq = last_seq
        followed.replaying = False

    def unfollow(self, session_id: str) -> None:
        """The client detached, or the daemon refused to attach the session again."""
        self._followed.pop(session_id, None)

    def follows(self, session_id: str) -> bool:
        return session_id in self._followed

    def last_seq(self, session_id: str) -> int | None:
        """The seq a reattach of the session would start from."""
        followed = self._followed.get(session_id)
        return None if followed is None else followed.last_seq

    @property
    def sessions(self) -> list[str]:
        return list(self._followed)

    # --- what happens ---------------------------------------------------------------------

    def receive(self, notification: object) -> Decision:
        """What to do with a notification: a typed one from the method table, or an
        :class:`~.jsonrpc.Incoming` this client could not read."""
        if isinstance(notification, ClientDropped):
            dropped = [sid for sid in notification.session_ids if sid in self._followed]
            return self._reattach(dropped, "dropped") if dropped else Skip("not_followed")
        method = EVENT_TYPES.get(type(notification))
        if method is None:
            self._note_unreadable(notification)
            return Skip("unknown")
        session_id: str = getattr(notification, "session_id")
        followed = self._followed.get(session_id)
        if followed is None:
            return Skip("not_followed")
        if isinstance(notification, SessionDeleted):
            del self._followed[session_id]
            return Deliver(notification)
        if isinstance(notification, SessionForked):
            return self._rewind(session_id, followed, notification.after_seq)
        if not NOTIFICATIONS[method].stored:
            return Deliver(notification)  # progress: its seq is the last event's, never a gap
        return self._place(session_id, followed, getattr(notification, "seq"), notification)

    def reconnected(self, instance_id: str = "") -> Reattach:
        """The connection came back. Subscriptions belong to a connection, so every one
        died with the old: attach every followed session again from its last seq.
        ``instance_id`` is the daemon's on the new connection, when known."""
        cause: ReattachCause = "restarted" if self._instance_changed(instance_id) else "reconnected"
        return self._reattach(list(self._followed), cause)

    def daemon_seen(self, instance_id: str) -> Reattach | None:
        """A hello or status answer on a connection that never dropped: a new instance
        id means the daemon restarted behind it (a relay kept the connection up), and
        every subscription is gone."""
        if self._instance_changed(instance_id):
            return self._reattach(list(self._followed), "restarted")
        return None

    # --- the rules ------------------------------------------------------------------------

    def _place(self, session_id: str, followed: _Followed, seq: int, notification: object) -> Decision:
        last = followed.last_seq
        if last is not None and seq <= last:
            return Skip("duplicate")
        if last is None or followed.unreadable.issuperset(range(last + 1, seq)):
            followed.last_seq = seq
            followed.unreadable = {s for s in followed.unreadable if s > seq}
            return Deliver(notification)
        if followed.replaying:
            return Skip("awaiting_replay")
        return self._reattach([session_id], "gap")

    def _rewind(self, session_id: str, followed: _Followed, after_seq: int) -> Reattach:
        """This device's events after ``after_seq`` moved to a fork and other events
        now stand at those seqs: count from ``after_seq`` again (or from the last seq,
        if the client had not got that far), so the replay delivers the new events at
        seqs it already passed on."""
        last = followed.last_seq
        followed.last_seq = after_seq if last is None else min(last, after_seq)
        followed.unreadable = {s for s in followed.unreadable if s <= after_seq}  # the rest moved away
        return self._reattach([session_id], "forked")

    def _note_unreadable(self, notification: object) -> None:
        if not isinstance(notification, Incoming):
            return
        try:
            where = _placement.decode(bytes(notification.params))
        except msgspec.DecodeError:
            return
        followed = self._followed.get(where.session_id or "")
        if followed is not None and where.seq is not None and followed.last_seq is not None \
                and where.seq > followed.last_seq:
            followed.unreadable.add(where.seq)

    def _reattach(self, session_ids: list[str], cause: ReattachCause) -> Reattach:
        resumes = []
        for sid in session_ids:
            followed = self._followed[sid]
            followed.replaying = True
            resumes.append(Resume(sid, followed.last_seq))
        return Reattach(tuple(resumes), cause)

    def _instance_changed(self, instance_id: str) -> bool:
        if not instance_id:
            return False
        changed = bool(self.instance_id) and instance_id != self.instance_id
        self.instance_id = instance_id
        return changed
