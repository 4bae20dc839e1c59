"""Who is attached to which session, and delivery of each session's event frames.

The hub knows subscribers only through :class:`Subscriber`; the ZeroMQ transport's
peers implement it. Delivery never blocks: a subscriber queues the frame or, when
it has fallen too far behind, drops itself and says so (see ``zmq_transport``).
"""

from __future__ import annotations

from typing import Protocol


class Subscriber(Protocol):
    key: bytes

    def deliver(self, frame: bytes) -> None: ...


class Hub:
    def __init__(self) -> None:
        self._by_session: dict[str, dict[bytes, Subscriber]] = {}

    def attach(self, session_id: str, sub: Subscriber) -> None:
        self._by_session.setdefault(session_id, {})[sub.key] = sub

    def detach(self, session_id: str, sub: Subscriber) -> bool:
        subs = self._by_session.get(session_id)
        if not subs or sub.key not in subs:
            return False
        del subs[sub.key]
        if not subs:
            del self._by_session[session_id]
        return True

    def sessions_of(self, sub: Subscriber) -> list[str]:
        return [sid for sid, subs in self._by_session.items() if sub.key in subs]

    def detach_everywhere(self, sub: Subscriber) -> list[str]:
        """Remove ``sub`` from every session; return the sessions it was attached to."""
        gone = self.sessions_of(sub)
        for sid in gone:
            self.detach(sid, sub)
        return gone

    def forget_session(self, session_id: str) -> None:
        self._by_session.pop(session_id, None)

    def publish(self, session_id: str, frames: list[bytes]) -> None:
        subs = self._by_session.get(session_id)
        if not subs:
            return
        for sub in list(subs.values()):
            for frame in frames:
                sub.deliver(frame)
