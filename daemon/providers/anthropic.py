"""Adapter between duologue and the ``anthropic`` SDK (streaming Messages API).

Everything Anthropic-specific lives here: the request encoding of the unified
history, the reading of the SDK's stream events, and the single place where SDK
exceptions become :class:`ProviderError` (:func:`map_anthropic_error`). The SDK is
imported lazily so that importing this module costs nothing.

Retries: the SDK retries 408/409/429/5xx itself (``max_retries``) and honours a
server's ``retry-after`` without any upper bound. A small middleware caps that: when
the server asks for a longer wait than ``max_retry_after`` seconds, it marks the
response ``x-should-retry: false`` so the SDK gives up at once and the router gets a
``rate_limited``/``overloaded`` error carrying ``retry_after``, free to fail over to
the other provider instead of sleeping.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

from duologue.protocol.entities import (
    CodeContextBlock,
    ImageBlock,
    Refusal,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
    ToolResultBlock,
    Usage,
)

from .base import (
    Connection,
    Finished,
    ProviderError,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    ThinkingDone,
    ToolCallEvent,
    TurnRequest,
    idle_guard,
    parse_retry_after,
    scrub,
    sdk_boundary,
)
from .preparation import Turn, encode_history, render_code_context, turn_encoder

DEFAULT_BASE_URL = "https://api.anthropic.com"
RETRYABLE_STATUSES = frozenset({408, 409, 429}) | frozenset(range(500, 600))
ERROR_TYPE_KINDS = {
    "rate_limit_error": "rate_limited",
    "overloaded_error": "overloaded",
    "api_error": "server",
    "timeout_error": "timeout",
    "authentication_error": "auth",
    "permission_error": "auth",
    "invalid_request_error": "bad_request",
    "not_found_error": "not_found",
    "request_too_large": "bad_request",
}
STOP_REASONS = {
    "end_turn": "end_turn",
    "max_tokens": "max_tokens",
    "model_context_window_exceeded": "max_tokens",
    "tool_use": "tool_use",
    "stop_sequence": "stop_sequence",
    "refusal": "refusal",
}
_TOOL_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


# -- request encoding -----------------------------------------------------------

BUDGETS = {"low": 2_048, "medium": 8_192, "high": 16_384, "max": 32_000}
"""Extended-thinking budgets (tokens) for models set by ``budget_tokens``."""
CACHE = {"type": "ephemeral"}


def _tool_id(call_id: str) -> str:
    """Anthropic accepts only [A-Za-z0-9_-] in tool ids; ids from Gemini may differ."""
    return _TOOL_ID_UNSAFE.sub("_", call_id) or "call"


def _encode_block(block: Any) -> dict[str, Any] | None:
    if isinstance(block, TextBlock):
        return {"type": "text", "text": block.text} if block.text else None
    if isinstance(block, CodeContextBlock):
        return {"type": "text", "text": render_code_context(block)}
    if isinstance(block, ImageBlock):
        return {"type": "image", "source": {"type": "base64", "media_type": block.media_type, "data": block.data}}
    if isinstance(block, ThinkingBlock):
        if block.redacted:
            return {"type": "redacted_thinking", "data": block.redacted}
        if block.signature:
            return {"type": "thinking", "thinking": block.text, "signature": block.signature}
        return None  # unsigned thinking (an import, another tool) cannot be verified: left out
    if isinstance(block, ToolCallBlock):
        return {"type": "tool_use", "id": _tool_id(block.id), "name": block.name, "input": block.input}
    if isinstance(block, ToolResultBlock):
        return {"type": "tool_result", "tool_use_id": _tool_id(block.call_id),
                "content": block.content, "is_error": block.is_error}
    return None


def _encode_turn(turn: Turn) -> dict[str, Any]:
    content = [encoded for encoded in map(_encode_block, turn.blocks) if encoded is not None]
    return {"role": turn.role, "content": content}


def _thinks(req: TurnRequest) -> bool:
    """Whether this request runs with thinking on (then tool continuations need it)."""
    info = req.info
    if info is None or info.thinking == "none":
        return False
    if info.thinking_control == "budget":
        return req.thinking not in (None, "off")
    return True


def _thinking_params(req: TurnRequest, params: dict[str, Any]) -> None:
    """Thinking as the model's page says to set it.

    Adaptive models (effort) think on their own; ``display: summarized`` asks for the
    thinking text, which is where Sonnet 5.5 puts what it writes between tool calls,
    so clients can show it. ``off`` on a model that thinks by default becomes
    ``between_tools`` (its documented way to stop up-front thinking; ``disabled`` is
    refused). Budget models (extended thinking) think only when asked, with a budget
    that leaves the answer its own room within ``max_tokens``.
    """
    info = req.info
    if info is None or info.thinking == "none":
        return
    if info.thinking_control == "budget":
        if req.thinking in (None, "off"):
            return
        budget = BUDGETS[req.thinking]
        params["thinking"] = {"type": "enabled", "budget_tokens": budget}
        params["max_tokens"] = max(params["max_tokens"], budget + 4_096)
        return
    if req.thinking == "off" and info.thinking == "default":
        params["thinking"] = {"type": "between_tools"}
        return
    params["thinking"] = {"type": "adaptive", "display": "summarized"}
    if req.thinking not in (None, "off"):
        params["output_config"] = {"effort": req.thinking}


def _mark_cache(params: dict[str, Any]) -> None:
    """Cache breakpoints by one policy (docs/protocol.md, "Prompt caching").

    Up to four: the tools, the system prompt, the last block of the final message
    (this request's whole prefix is written), and the last block of the user message
    before the previous reply (the previous request's breakpoint, so a long tool
    round cannot push the last cached prefix past the API's ~20-block look-back).
    The prefix is rendered the same way every turn, so each request reads what the
    one before wrote, and a switch away and back within the TTL reads it again.
    """
    if params.get("tools"):
        params["tools"][-1]["cache_control"] = CACHE
    if params.get("system"):
        params["system"][-1]["cache_control"] = CACHE
    messages = params["messages"]
    marked = 0
    for index in range(len(messages) - 1, -1, -1):
        if marked == 2:
            break
        message = messages[index]
        if message["role"] == "user" and message["content"]:
            # copies, not edits: the history cache keeps the encoded messages for the next request
            *rest, last = message["content"]
            messages[index] = {**message, "content": [*rest, {**last, "cache_control": CACHE}]}
            marked += 1


def build_params(req: TurnRequest) -> dict[str, Any]:
    """The keyword arguments of ``messages.stream`` for a turn.

    Rendered deterministically (no times or ids added, tools in the order given),
    so the prefix of one turn's request is byte-identical to the next one's.
    """
    params: dict[str, Any] = {
        "model": req.model,
        "max_tokens": req.max_tokens,
        "messages": encode_history(req.messages, req.model, turn_encoder(_encode_turn, req.info, req.model),
                                   prepared=req.prepared, thinking_continuation=_thinks(req)),
    }
    if req.system:
        params["system"] = [{"type": "text", "text": req.system}]
    if req.tools:
        params["tools"] = [{"name": t.name, "description": t.description, "input_schema": t.parameters}
                           for t in req.tools]
    _thinking_params(req, params)
    _mark_cache(params)
    return params


# -- errors ---------------------------------------------------------------------


def _retry_after(headers: Any) -> float | None:
    """From ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP-date)."""
    if headers is None:
        return None
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    return parse_retry_after(headers.get("retry-after"))


def _status_message(exc: Any) -> str:
    """The error's text, whatever the body's shape (a proxy's page, a bare string)."""
    if exc.api_message:
        return str(exc.api_message)
    body = exc.body
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return body["error"]
    if isinstance(body, str) and body.strip():
        return " ".join(body.split())[:300]
    try:
        text = exc.response.text
    except Exception:  # a streamed response that was never read
        text = ""
    return " ".join(text.split())[:300] or str(exc.message) or f"HTTP {exc.status_code}"


def map_anthropic_error(exc: BaseException, *, api_key: str | None, midstream: bool = False) -> ProviderError | None:
    """Translate an exception raised by the SDK (or its transport) into a ProviderError.

    ``midstream`` says whether stream events had already arrived, which turns a
    dropped connection into ``stream_cut`` rather than ``timeout``. Returns None for
    exceptions that are not provider failures (programming errors stay loud).
    """
    import anthropic
    import httpx2

    def error(kind: str, message: str, **kw: Any) -> ProviderError:
        return ProviderError(kind, scrub(message, api_key), provider="anthropic", **kw)  # type: ignore[arg-type]

    if isinstance(exc, anthropic.APIStatusError):
        status = exc.status_code if exc.status_code >= 400 else None  # an `event: error` arrives with 200
        kind = ERROR_TYPE_KINDS.get(str(exc.type or ""))
        if kind is None or status in (404, 429, 529):
            kind = _kind_for_status(status)
        return error(kind, _status_message(exc), status=status, retry_after=_retry_after(exc.response.headers))
    if isinstance(exc, anthropic.APITimeoutError):
        return error("timeout", "the request to Anthropic timed out")
    if isinstance(exc, anthropic.APIConnectionError):
        return error("timeout", f"could not reach Anthropic: {exc.__cause__ or exc}")
    if isinstance(exc, anthropic.APIResponseValidationError):
        return error("server", "Anthropic returned a response that does not match the API schema")
    if isinstance(exc, httpx2.TimeoutException):
        return error("timeout", "Anthropic stopped sending the stream (read timed out)")
    if isinstance(exc, httpx2.TransportError):
        kind = "stream_cut" if midstream else "timeout"
        return error(kind, f"the connection to Anthropic broke: {exc}")
    if isinstance(exc, ValueError):  # undecodable SSE data or tool input JSON
        return error("server", f"Anthropic sent malformed stream data: {exc}", retryable=True)
    return None


def _kind_for_status(status: int | None) -> str:
    if status == 429:
        return "rate_limited"
    if status == 529:
        return "overloaded"
    if status in (401, 403):
        return "auth"
    if status == 404:
        return "not_found"
    if status == 408:
        return "timeout"
    if status is None or status >= 500:
        return "server"
    return "bad_request"


class _RetryAfterCeiling:
    """SDK middleware (an async callable): refuse to wait longer than the ceiling for a retry."""

    def __init__(self, ceiling: float) -> None:
        self.ceiling = ceiling

    async def __call__(self, request: Any, call_next: Any) -> Any:
        response = await call_next(request)
        http = response.http_response
        if http.status_code in RETRYABLE_STATUSES:
            wait = _retry_after(http.headers)
            if wait is not None and wait > self.ceiling:
                http.headers["x-should-retry"] = "false"
        return response


# -- the provider ---------------------------------------------------------------


class AnthropicProvider:
    """Streams turns from Claude through ``anthropic.AsyncAnthropic``."""

    name = "anthropic"

    def __init__(self, api_key: str, base_url: str | None = None, *, timeout: float = 120.0,
                 max_retries: int = 2, max_retry_after: float = 20.0) -> None:
        import anthropic

        self._api_key = api_key
        self._idle_s = timeout
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key,
            base_url=base_url or DEFAULT_BASE_URL,  # explicit, so ANTHROPIC_BASE_URL is never read behind our back
            timeout=timeout,
            max_retries=max_retries,
            middleware=[_RetryAfterCeiling(max_retry_after)],
        )

    @classmethod
    def connect(cls, connection: Connection) -> AnthropicProvider:
        return cls(connection.api_key, connection.base_url, timeout=connection.timeout_s,
                   max_retries=connection.max_retries)

    async def stream(self, req: TurnRequest) -> AsyncIterator[StreamEvent]:
        reader = _Reader()
        with sdk_boundary("Anthropic", self._api_key, map_anthropic_error, lambda: reader.seen):
            params = build_params(req)
            async with self._client.messages.stream(**params) as events:
                async for event in idle_guard(events, self._idle_s, "Anthropic"):
                    for out in reader.read(event):
                        yield out
                snapshot = events.current_message_snapshot
            ending = reader.finished(snapshot)
        yield ending

    async def aclose(self) -> None:
        await self._client.close()


class _Reader:
    """Turns the SDK's stream events into ours, keeping the blocks in their order.

    A tool call is held until the next block starts or the message ends: when the
    output limit cuts a call's JSON, ``content_block_stop`` still comes (with input
    parsed from the partial JSON), and only ``stop_reason: max_tokens`` tells.
    """

    def __init__(self) -> None:
        self.seen = False
        self.held: ToolCallEvent | None = None
        self.stop_reason: str | None = None
        self.completed = False
        self.thinking_tokens = 0

    def _release(self) -> list[StreamEvent]:
        held, self.held = self.held, None
        return [held] if held is not None else []

    def read(self, event: Any) -> list[StreamEvent]:
        self.seen = True
        kind = event.type
        if kind == "text":
            return [TextDelta(event.text)] if event.text else []
        if kind == "thinking":
            return [ThinkingDelta(event.thinking)] if event.thinking else []
        if kind == "content_block_start":
            return self._release()
        if kind == "content_block_stop":
            block = event.content_block
            if block.type == "thinking":
                return [ThinkingDone(block.thinking or "", block.signature or None)]
            if block.type == "redacted_thinking":
                return [ThinkingDone("", None, block.data)]
            if block.type == "tool_use":
                self.held = ToolCallEvent(block.id, block.name, dict(block.input or {}))
            return []
        if kind == "message_delta":
            self.stop_reason = event.delta.stop_reason
            details = getattr(event.usage, "output_tokens_details", None)
            self.thinking_tokens = getattr(details, "thinking_tokens", 0) or self.thinking_tokens
            if self.stop_reason == "max_tokens":
                return []  # a held call was cut: finished() reports it
            return self._release()
        if kind == "message_stop":
            self.completed = True
        return []

    def finished(self, snapshot: Any) -> Finished:
        if not self.completed or self.stop_reason is None:
            raise ProviderError("stream_cut", "the Anthropic stream ended before its final events",
                                provider="anthropic")
        truncated = self.held.name if self.held is not None else None
        refusal = None
        if self.stop_reason == "refusal":
            details = getattr(snapshot, "stop_details", None)
            refusal = Refusal(provider="anthropic", category=getattr(details, "category", None),
                              explanation=getattr(details, "explanation", None))
        return Finished(STOP_REASONS.get(self.stop_reason, "other"), _usage(snapshot.usage, self.thinking_tokens),
                        refusal=refusal, truncated_call=truncated)


def _usage(usage: Any, thinking_tokens: int) -> Usage:
    """Usage as billed: the 5-minute and 1-hour cache writes apart when the API splits them."""
    written = usage.cache_creation_input_tokens or 0
    split = usage.cache_creation
    one_hour = (split.ephemeral_1h_input_tokens or 0) if split is not None else 0
    five_min = (split.ephemeral_5m_input_tokens or 0) if split is not None else written
    details = getattr(usage, "output_tokens_details", None)
    return Usage(input_tokens=usage.input_tokens or 0, output_tokens=usage.output_tokens or 0,
                 cache_read_tokens=usage.cache_read_input_tokens or 0,
                 cache_write_tokens=five_min, cache_write_1h_tokens=one_hour,
                 thinking_tokens=getattr(details, "thinking_tokens", 0) or thinking_tokens)
