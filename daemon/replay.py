"""A replay (``session/attach`` with ``since_seq``) sent as JSON-RPC batch frames,
read from the store only as fast as the client's pipe takes them.

Why batches: one ZeroMQ frame per event costs a send, a receive and a wake-up per
event on both sides, which is most of what a long replay costs (a reply is about
twenty deltas). A batch of a few hundred events is one of each. A batch holds only
notifications, so the client answers nothing (JSON-RPC 2.0, section 6); every client
of ours reads batches through ``protocol.jsonrpc.parse_replies``.

Why paced: the transport asks for the next batch (:meth:`Replay.next_frame`) only
when ZeroMQ took the previous one with ``NOBLOCK``; until then the events stay in
the store. So what a replay holds in the daemon is one store page plus what ZeroMQ's
pipe holds (at most ``SEND_HWM`` batches), whatever the session's length. Each page
is read in its own short read transaction (``Store.frame_page``), closed before a
frame is handed out, so no transaction is ever held across an ``await``.

Why bytes bound a batch: what ZeroMQ's pipe holds counts towards the client's
queue limit, so a batch is at most :func:`batch_bytes` of that limit (always at
least one event): a pipe full of batches leaves most of the limit to the live
events queued behind the replay, which go out after it in seq order.
"""

from __future__ import annotations

from collections import deque
from typing import Protocol

from duologue.protocol.jsonrpc import encode_batch

PAGE_EVENTS = 256
"""Events read from the store at a time, and the most one batch holds."""
MAX_BATCH_BYTES = 128 * 1024


def batch_bytes(queue_limit: int, pipe_frames: int) -> int:
    """The size a batch should not pass: a quarter of the queue limit spread over a
    full pipe, and no more than ``MAX_BATCH_BYTES``."""
    return max(1, min(MAX_BATCH_BYTES, queue_limit // (4 * pipe_frames)))


class EventSource(Protocol):
    def frame_page(self, sid: str, since_seq: int, upto: int, limit: int) -> tuple[list[bytes], int]:
        """At most ``limit`` stored frames after ``since_seq`` and up to ``upto``, and
        the last one's seq."""


class Lazy(Protocol):
    """Frames produced when the connection can take them (the transport's outbox)."""

    def next_frame(self, max_bytes: int) -> bytes | None:
        """The next frame of about ``max_bytes`` at most, or None when done."""


class Replay:
    """The stored events of ``sid`` after ``since_seq`` up to ``upto`` (the
    session's last seq at attach: later ones reach the client live)."""

    def __init__(self, store: EventSource, sid: str, since_seq: int, upto: int):
        self._store = store
        self._sid = sid
        self._read_to = since_seq
        self._upto = upto
        self._page: deque[bytes] = deque()

    def next_frame(self, max_bytes: int) -> bytes | None:
        if not self._page and not self._read_page():
            return None
        parts = [self._page.popleft()]
        size = len(parts[0])
        while self._page and len(parts) < PAGE_EVENTS and size + len(self._page[0]) < max_bytes:
            frame = self._page.popleft()
            parts.append(frame)
            size += len(frame) + 1
        return parts[0] if len(parts) == 1 else encode_batch(parts)

    def _read_page(self) -> bool:
        if self._read_to >= self._upto:
            return False
        frames, last = self._store.frame_page(self._sid, self._read_to, self._upto, PAGE_EVENTS)
        self._page.extend(frames)
        # the store ends before ``upto`` when it has nothing more: nothing more to read
        self._read_to = last if frames else self._upto
        return bool(frames)
