"""Who is attached to which session, and delivery of each session's event frames.

The hub knows subscribers only through :class:`Subscriber`; the ZeroMQ transport's
peers implement it. Delivery never blocks: a subscriber queues the frame or, when
it has fallen too far behind, drops itself and says so (see ``zmq_transport``).

A publish hands each subscriber's channel (its transport) the frames and all of
that channel's subscribers at once, so what is done per frame (the frame handed to
ZeroMQ, the check for a request waiting) is done once per publish, and only the
send itself per client.

Both directions are indexed (session -> subscribers, subscriber -> sessions), so
what a client costs does not grow with how many sessions others follow: dropping or
forgetting a client touches only its own sessions.
"""

from __future__ import annotations

from typing import Protocol


class Channel(Protocol):
    def broadcast(self, subs: list[Subscriber], frames: list[bytes]) -> None:
        """Deliver ``frames``, in order, to each of ``subs`` (all of this channel)."""


class Subscriber(Protocol):
    key: bytes
    channel: Channel


class Hub:
    def __init__(self) -> None:
        self._by_session: dict[str, dict[bytes, Subscriber]] = {}
        self._by_subscriber: dict[bytes, set[str]] = {}

    def attach(self, session_id: str, sub: Subscriber) -> None:
        self._by_session.setdefault(session_id, {})[sub.key] = sub
        self._by_subscriber.setdefault(sub.key, set()).add(session_id)

    def detach(self, session_id: str, sub: Subscriber) -> bool:
        subs = self._by_session.get(session_id)
        if not subs or sub.key not in subs:
            return False
        del subs[sub.key]
        if not subs:
            del self._by_session[session_id]
        self._unindex(sub.key, session_id)
        return True

    def _unindex(self, key: bytes, session_id: str) -> None:
        mine = self._by_subscriber.get(key)
        if mine is not None:
            mine.discard(session_id)
            if not mine:
                del self._by_subscriber[key]

    def sessions_of(self, sub: Subscriber) -> list[str]:
        return sorted(self._by_subscriber.get(sub.key, ()))

    def detach_everywhere(self, sub: Subscriber) -> list[str]:
        """Remove ``sub`` from every session; return the sessions it was attached to."""
        gone = self.sessions_of(sub)
        for sid in gone:
            self.detach(sid, sub)
        return gone

    def forget_session(self, session_id: str) -> None:
        for key in self._by_session.pop(session_id, {}):
            self._unindex(key, session_id)

    def publish(self, session_id: str, frames: list[bytes]) -> None:
        subs = self._by_session.get(session_id)
        if not subs:
            return
        groups: dict[Channel, list[Subscriber]] = {}
        for sub in subs.values():
            groups.setdefault(sub.channel, []).append(sub)
        for channel, members in groups.items():
            channel.broadcast(members, frames)
