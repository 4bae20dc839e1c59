"""What a test tells the emulator to do next, and what the emulator saw.

Tests queue steps per provider; the server pops one step per request it answers. A
step is either a :class:`Reply` (a successful answer, streamed or not) or a
:class:`Failure` (an HTTP error, a cut or malformed stream, a delay). When a queue is
empty the emulator answers with its default reply, so a test scripts only what it
wants to prove. Everything here is plain data plus one lock: the server threads and
the test thread share it.

A few fields say what only some providers can say (:data:`SPECIFIC`); each provider's
emulator API lists the ones it speaks, and a step that sets another is refused when
it is queued, not when a request finally meets it.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

ProviderName = str
"""A provider's name as the registry spells it."""

SPECIFIC = ("refusal", "redacted_thinking", "block_reason", "finish_reason", "safety_ratings", "retry_delay")
"""Step fields that only some providers have a way to say."""


@dataclass(frozen=True)
class ToolCall:
    """A tool call the emulated model makes. ``id`` is generated when empty."""

    name: str
    input: dict[str, Any] = field(default_factory=dict)
    id: str = ""


@dataclass(frozen=True)
class Usage:
    """Token counts to report instead of the emulator's approximation and cache bill.

    ``output_tokens`` includes thinking, as both providers bill it; on Gemini the
    candidates count is ``output_tokens - thinking_tokens`` and ``thinking_tokens`` is
    ``thoughtsTokenCount``. ``cache_read_tokens`` is Anthropic's
    ``cache_read_input_tokens`` or Gemini's ``cachedContentTokenCount`` (which
    ``promptTokenCount`` = ``input_tokens`` then includes).
    """

    input_tokens: int
    output_tokens: int
    cache_read_tokens: int = 0
    cache_write_5m_tokens: int = 0
    cache_write_1h_tokens: int = 0
    thinking_tokens: int = 0


# anthropic/types/stop_reason.py
STOP_REASONS = ("end_turn", "max_tokens", "stop_sequence", "tool_use", "pause_turn", "refusal",
                "model_context_window_exceeded")
# anthropic/types/refusal_stop_details.py
REFUSAL_CATEGORIES = (None, "cyber", "bio", "frontier_llm", "reasoning_extraction", "general_harms")
# google/genai/types.py FinishReason and BlockedReason (the values the API can send)
FINISH_REASONS = ("STOP", "MAX_TOKENS", "SAFETY", "RECITATION", "LANGUAGE", "OTHER", "BLOCKLIST",
                  "PROHIBITED_CONTENT", "SPII", "MALFORMED_FUNCTION_CALL", "IMAGE_SAFETY",
                  "IMAGE_PROHIBITED_CONTENT", "IMAGE_OTHER", "NO_IMAGE", "IMAGE_RECITATION",
                  "UNEXPECTED_TOOL_CALL", "TOO_MANY_TOOL_CALLS", "MISSING_THOUGHT_SIGNATURE",
                  "MALFORMED_RESPONSE", "FINISH_REASON_UNSPECIFIED")
BLOCK_REASONS = ("BLOCKED_REASON_UNSPECIFIED", "SAFETY", "OTHER", "BLOCKLIST", "PROHIBITED_CONTENT",
                 "IMAGE_SAFETY", "MODEL_ARMOR", "JAILBREAK")


@dataclass(frozen=True)
class Reply:
    """A successful answer.

    ``text`` is split into word chunks unless ``chunks`` gives them explicitly;
    ``chunk_delay`` is slept between streamed chunks. ``stop_reason`` uses the
    Anthropic vocabulary (end_turn, max_tokens, tool_use, stop_sequence, ...); the
    Gemini side translates it to its finishReason. When left out it is ``tool_use``
    for a reply with tool calls and ``end_turn`` otherwise.

    Thinking (both providers, on models that think for the request):

    - ``thinking``: the model's reasoning; None = the emulator's default text, "" =
      the model did not think this time (no thinking block / no thought tokens).
      Claude shows it only under ``thinking.display: "summarized"`` (5.x and Opus
      4.7+ default to "omitted": the block comes with empty text, still signed).
    - ``redacted_thinking``: Claude also returns a ``redacted_thinking`` block first.
    - ``text_in_thinking``: the text written before a tool call arrives in a thinking
      block instead of a text block. None = the model's documented behaviour (Sonnet
      5.5, Opus 5.5, Fable 5.x do this; under ``thinking: {"type": "between_tools"}``
      the notes are shown, else the display setting applies).

    Outcomes:

    - ``refusal`` (Anthropic): ``(category, explanation)``; the reply ends with
      ``stop_reason: "refusal"`` and ``stop_details`` after the (partial) text.
    - ``block_reason`` (Gemini): the prompt is blocked: ``promptFeedback.blockReason``
      and no candidates; nothing else of the reply is sent.
    - ``finish_reason`` (Gemini): the candidate's finishReason, from Google's enum;
      MALFORMED_FUNCTION_CALL comes with no content, SAFETY / RECITATION /
      PROHIBITED_CONTENT / ... end the streamed text with a content-less final chunk
      (SAFETY with ``safety_ratings``, or a default set).
    """

    text: str | None = None
    chunks: tuple[str, ...] | list[str] | None = None
    chunk_delay: float = 0.0
    tool_calls: tuple[ToolCall, ...] | list[ToolCall] = ()
    usage: Usage | None = None
    stop_reason: str | None = None
    thinking: str | None = None
    redacted_thinking: bool = False
    text_in_thinking: bool | None = None
    refusal: tuple[str | None, str | None] | None = None
    block_reason: str | None = None
    finish_reason: str | None = None
    safety_ratings: tuple[dict[str, Any], ...] | list[dict[str, Any]] | None = None

    def __post_init__(self) -> None:
        if self.stop_reason is not None and self.stop_reason not in STOP_REASONS:
            raise ValueError(f"stop_reason {self.stop_reason!r} is not one of {STOP_REASONS}")
        if self.finish_reason is not None and self.finish_reason not in FINISH_REASONS:
            raise ValueError(f"finish_reason {self.finish_reason!r} is not in Google's FinishReason enum")
        if self.block_reason is not None and self.block_reason not in BLOCK_REASONS:
            raise ValueError(f"block_reason {self.block_reason!r} is not in Google's BlockedReason enum")
        if self.refusal is not None and (len(self.refusal) != 2 or self.refusal[0] not in REFUSAL_CATEGORIES):
            raise ValueError(f"refusal is (category, explanation) with category one of {REFUSAL_CATEGORIES}")

    def text_chunks(self) -> list[str]:
        if self.chunks is not None:
            return [c for c in self.chunks if c]
        return split_words(self.text or "")

    def resolved_stop_reason(self) -> str:
        if self.refusal is not None:
            return "refusal"
        if self.stop_reason:
            return self.stop_reason
        return "tool_use" if self.tool_calls else "end_turn"

    def specific(self) -> set[str]:
        """The provider-specific fields (:data:`SPECIFIC`) this reply sets."""
        return _set_fields(self)


@dataclass(frozen=True)
class Failure:
    """A scripted misbehaviour, answered in the provider's own error shape.

    Exactly one of ``status``, ``cut_after``, ``malformed_after``, ``keepalive_after``
    may be set; ``delay`` (seconds before anything is sent) combines with any of them,
    or stands alone to make a client time out (the default reply follows if it is
    still there).

    - ``status``: an HTTP error (429, 500, 503, 529, 401 ...); ``retry_after`` adds a
      ``retry-after`` header in seconds, ``retry_after_date`` one as an HTTP-date (a
      ``datetime`` or a ready string; the header may take either form, RFC 9110
      10.2.3); ``message`` overrides the error text. With ``in_stream_after`` the
      error arrives inside a 200 stream after that many events instead (Anthropic's
      ``event: error``, Gemini's ``{"error": ...}`` data line); a non-streaming request
      gets the plain HTTP error.
    - ``retry_delay`` (Gemini, e.g. "34.4s"): the error body carries Google's
      ``QuotaFailure``, ``Help`` and ``google.rpc.RetryInfo`` details, as a
      quota-exhausted 429 does.
    - ``body`` / ``content_type``: answer ``status`` with this body instead of the
      provider's error shape: a dict (sent as JSON, e.g. ``{"error": "some text"}``
      from a gateway) or a string (e.g. a proxy's HTML 502 page).
    - ``cut_after``: stream ``reply`` (or the default reply) and close the connection
      after that many stream events, before the final ones.
    - ``malformed_after``: after that many events send a data line that is not JSON.
    - ``keepalive_after``: after that many events send only keepalives until the
      client gives up or the emulator stops: Anthropic ``ping`` events every
      ``keepalive_interval`` seconds; Gemini has none, so the connection is held
      open with nothing more sent.
    """

    status: int | None = None
    retry_after: float | None = None
    message: str | None = None
    cut_after: int | None = None
    malformed_after: int | None = None
    in_stream_after: int | None = None
    delay: float = 0.0
    reply: Reply | None = None
    retry_after_date: datetime | str | None = None
    retry_delay: str | None = None
    body: dict[str, Any] | list[Any] | str | None = None
    content_type: str | None = None
    keepalive_after: int | None = None
    keepalive_interval: float = 1.0

    def __post_init__(self) -> None:
        kinds = [k for k in (self.status, self.cut_after, self.malformed_after, self.keepalive_after)
                 if k is not None]
        if len(kinds) > 1:
            raise ValueError("a Failure is one of status, cut_after, malformed_after or keepalive_after")
        if not kinds and self.delay <= 0:
            raise ValueError("a Failure needs status, cut_after, malformed_after, keepalive_after or delay")
        if self.in_stream_after is not None and self.status is None:
            raise ValueError("in_stream_after needs the status of the in-stream error")
        if (self.body is not None or self.retry_delay is not None) and self.status is None:
            raise ValueError("body and retry_delay go with a status")
        if self.retry_after is not None and self.retry_after_date is not None:
            raise ValueError("retry-after is either seconds or an HTTP-date, not both")

    def specific(self) -> set[str]:
        """The provider-specific fields this failure and its reply set."""
        return _set_fields(self) | (self.reply.specific() if self.reply is not None else set())


Step = Reply | Failure


def _set_fields(step: object) -> set[str]:
    return {name for name in SPECIFIC if getattr(step, name, None) not in (None, False)}


@dataclass(frozen=True)
class ReceivedRequest:
    """One request as the emulator decoded it. The API key is never kept.

    ``billed`` is filled in once the request is answered with a reply (it stays
    empty for scripted errors): the input side of the bill as the emulator's prompt
    cache charged it (a scripted :class:`Usage` changes what the reply reports, not
    this), ``prompt_tokens`` (the whole prompt), ``input_tokens`` (billed at the full
    rate), ``cache_read_tokens``, ``cache_write_5m_tokens``, ``cache_write_1h_tokens``.
    """

    provider: ProviderName
    model: str
    path: str
    body: dict[str, Any]
    stream: bool
    billed: dict[str, int] = field(default_factory=dict, compare=False)


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
    """Per-provider step queues and the log of received requests, thread-safe.

    ``outcomes`` maps each provider to the :data:`SPECIFIC` fields it can say."""

    def __init__(self, outcomes: Mapping[str, frozenset[str]]) -> None:
        self._lock = threading.Lock()
        self._outcomes = dict(outcomes)
        self._queues: dict[str, deque[Step]] = {p: deque() for p in outcomes}
        self._received: list[ReceivedRequest] = []

    def push(self, provider: ProviderName, steps: tuple[Step, ...]) -> None:
        if provider not in self._queues:
            raise ValueError(f"unknown provider {provider!r}; expected one of {tuple(self._queues)}")
        for step in steps:
            if not isinstance(step, (Reply, Failure)):
                raise TypeError(f"a script step is a Reply or a Failure, not {type(step).__name__}")
            unsaid = sorted(step.specific() - self._outcomes[provider])
            if unsaid:
                raise ValueError(f"{provider} has no way to say {', '.join(unsaid)}")
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
