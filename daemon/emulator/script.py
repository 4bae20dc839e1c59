"""What a test tells the emulator to do next, and what the emulator saw.

Tests queue steps per provider; the server pops one step per request it answers. A
step is either a :class:`Reply` (a successful answer, streamed or not) or a
:class:`Failure` (an HTTP error, a cut or malformed stream, a delay). When a queue is
empty the emulator answers with its default reply, so a test scripts only what it
wants to prove. Everything here is plain data plus one lock: the server threads and
the test thread share it.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

ProviderName = Literal["anthropic", "gemini"]
PROVIDERS: tuple[ProviderName, ...] = ("anthropic", "gemini")


@dataclass(frozen=True)
class ToolCall:
    """A tool call the emulated model makes. ``id`` is generated when empty."""

    name: str
    input: dict[str, Any] = field(default_factory=dict)
    id: str = ""


@dataclass(frozen=True)
class Usage:
    """Token counts to report instead of the emulator's approximation."""

    input_tokens: int
    output_tokens: int


@dataclass(frozen=True)
class Reply:
    """A successful answer.

    ``text`` is split into word chunks unless ``chunks`` gives them explicitly;
    ``chunk_delay`` is slept between streamed chunks. ``stop_reason`` uses the
    Anthropic vocabulary (end_turn, max_tokens, tool_use, stop_sequence); the Gemini
    side translates it to its finishReason. When left out it is ``tool_use`` for a
    reply with tool calls and ``end_turn`` otherwise.
    """

    text: str | None = None
    chunks: tuple[str, ...] | list[str] | None = None
    chunk_delay: float = 0.0
    tool_calls: tuple[ToolCall, ...] | list[ToolCall] = ()
    usage: Usage | None = None
    stop_reason: str | None = None

    def text_chunks(self) -> list[str]:
        if self.chunks is not None:
            return [c for c in self.chunks if c]
        return split_words(self.text or "")

    def resolved_stop_reason(self) -> str:
        if self.stop_reason:
            return self.stop_reason
        return "tool_use" if self.tool_calls else "end_turn"


@dataclass(frozen=True)
class Failure:
    """A scripted misbehaviour, answered in the provider's own error shape.

    Exactly one of ``status``, ``cut_after``, ``malformed_after`` may be set;
    ``delay`` (seconds before anything is sent) combines with any of them, or stands
    alone to make a client time out (the default reply follows if it is still there).

    - ``status``: an HTTP error (429, 500, 503, 529, 401 ...); ``retry_after`` adds a
      ``retry-after`` header; ``message`` overrides the error text. With
      ``in_stream_after`` the error arrives inside a 200 stream after that many events
      instead (Anthropic's ``event: error``, Gemini's ``{"error": ...}`` data line);
      a non-streaming request gets the plain HTTP error.
    - ``cut_after``: stream ``reply`` (or the default reply) and close the connection
      after that many stream events, before the final ones.
    - ``malformed_after``: after that many events send a data line that is not JSON.
    """

    status: int | None = None
    retry_after: float | None = None
    message: str | None = None
    cut_after: int | None = None
    malformed_after: int | None = None
    in_stream_after: int | None = None
    delay: float = 0.0
    reply: Reply | None = None

    def __post_init__(self) -> None:
        kinds = [k for k in (self.status, self.cut_after, self.malformed_after) if k is not None]
        if len(kinds) > 1:
            raise ValueError("a Failure is one of status, cut_after or malformed_after")
        if not kinds and self.delay <= 0:
            raise ValueError("a Failure needs status, cut_after, malformed_after or delay")
        if self.in_stream_after is not None and self.status is None:
            raise ValueError("in_stream_after needs the status of the in-stream error")


Step = Reply | Failure


@dataclass(frozen=True)
class ReceivedRequest:
    """One request as the emulator decoded it. The API key is never kept."""

    provider: ProviderName
    model: str
    path: str
    body: dict[str, Any]
    stream: bool


def split_words(text: str) -> list[str]:
    """Split text into chunks of one word each, keeping the spacing with the word."""
    chunks: list[str] = []
    current = ""
    for ch in text:
        if ch.isspace() and current and not current[-1].isspace():
            chunks.append(current)
            current = ch
        else:
            current += ch
    if current:
        chunks.append(current)
    return chunks


def approx_tokens(text: str) -> int:
    """A stable, cheap stand-in for a tokenizer: about four characters a token."""
    return len(text) // 4 + 1


class Script:
    """Per-provider step queues and the log of received requests, thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queues: dict[str, deque[Step]] = {p: deque() for p in PROVIDERS}
        self._received: list[ReceivedRequest] = []

    def push(self, provider: ProviderName, steps: tuple[Step, ...]) -> None:
        if provider not in self._queues:
            raise ValueError(f"unknown provider {provider!r}; expected one of {PROVIDERS}")
        for step in steps:
            if not isinstance(step, (Reply, Failure)):
                raise TypeError(f"a script step is a Reply or a Failure, not {type(step).__name__}")
        with self._lock:
            self._queues[provider].extend(steps)

    def next_step(self, provider: str) -> Step | None:
        with self._lock:
            queue = self._queues.get(provider)
            return queue.popleft() if queue else None

    def pending(self, provider: ProviderName) -> int:
        with self._lock:
            return len(self._queues[provider])

    def record(self, request: ReceivedRequest) -> None:
        with self._lock:
            self._received.append(request)

    @property
    def received(self) -> list[ReceivedRequest]:
        with self._lock:
            return list(self._received)

    def reset(self) -> None:
        with self._lock:
            for queue in self._queues.values():
                queue.clear()
            self._received.clear()
