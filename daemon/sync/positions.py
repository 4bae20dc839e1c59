"""Where each session's subject stands, as this store knows it.

For a session, the stream sequence of the last message on its subject whose change
this store holds (written here and acknowledged, or followed and applied), and the
session seq that message ended at. The publisher appends the next change with that
stream sequence as ``Nats-Expected-Last-Subject-Sequence``: if another device
appended first, JetStream refuses, and nothing interleaves. A session missing here
is looked up on the server before its first append.

A session whose writes diverged from the stream's is *held*: its changes wait in
the outbox, unpublished, until the fork (``fork``) has moved them away.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Position:
    stream_seq: int
    last_seq: int


@dataclass
class Positions:
    known: dict[str, Position] = field(default_factory=dict)
    held: dict[str, int] = field(default_factory=dict)
    """Diverged sessions -> the seq after which this store and the stream differ."""

    def hold(self, session_id: str, after_seq: int) -> None:
        self.held.setdefault(session_id, after_seq)

    def forget(self) -> None:
        """After a reconnect: what the server holds may have moved meanwhile."""
        self.known.clear()
