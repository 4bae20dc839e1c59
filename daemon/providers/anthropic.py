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

from duologue.protocol.entities import CodeContextBlock, TextBlock, ToolCallBlock, ToolResultBlock, Usage

from .base import Finished, ProviderError, StreamEvent, TextDelta, ToolCallEvent, TurnRequest, scrub
from .history import Turn, prepare_turns, render_code_context

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
    "not_found_error": "bad_request",
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


def _tool_id(call_id: str) -> str:
    """Anthropic accepts only [A-Za-z0-9_-] in tool ids; ids from Gemini may differ."""
    return _TOOL_ID_UNSAFE.sub("_", call_id) or "call"


def _encode_turn(turn: Turn) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    for block in turn.blocks:
        if isinstance(block, TextBlock):
            content.append({"type": "text", "text": block.text})
        elif isinstance(block, CodeContextBlock):
            content.append({"type": "text", "text": render_code_context(block)})
        elif isinstance(block, ToolCallBlock):
            content.append({"type": "tool_use", "id": _tool_id(block.id), "name": block.name, "input": block.input})
        elif isinstance(block, ToolResultBlock):
            content.append({"type": "tool_result", "tool_use_id": _tool_id(block.call_id),
                            "content": block.content, "is_error": block.is_error})
    return {"role": turn.role, "content": content}


def build_params(req: TurnRequest) -> dict[str, Any]:
    """The keyword arguments of ``messages.stream`` for a turn."""
    params: dict[str, Any] = {
        "model": req.model,
        "max_tokens": req.max_tokens,
        "messages": [_encode_turn(t) for t in prepare_turns(req.messages)],
    }
    if req.system:
        params["system"] = req.system
    if req.tools:
        params["tools"] = [{"name": t.name, "description": t.description, "input_schema": t.parameters}
                           for t in req.tools]
    return params


# -- errors ---------------------------------------------------------------------


def _retry_after(headers: Any) -> float | None:
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is not None:
            try:
                return max(0.0, float(value) * scale)
            except ValueError:
                continue
    return None


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
        if kind is None or status in (429, 529):
            kind = _kind_for_status(status)
        message = exc.api_message or str(exc.message)
        return error(kind, message, status=status, retry_after=_retry_after(exc.response.headers))
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
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key,
            base_url=base_url or DEFAULT_BASE_URL,  # explicit, so ANTHROPIC_BASE_URL is never read behind our back
            timeout=timeout,
            max_retries=max_retries,
            middleware=[_RetryAfterCeiling(max_retry_after)],
        )

    async def stream(self, req: TurnRequest) -> AsyncIterator[StreamEvent]:
        params = build_params(req)
        seen_events = False
        stop_reason: str | None = None
        completed = False
        input_tokens = output_tokens = 0
        try:
            async with self._client.messages.stream(**params) as events:
                async for event in events:
                    seen_events = True
                    if event.type == "text":
                        if event.text:
                            yield TextDelta(event.text)
                    elif event.type == "content_block_stop" and event.content_block.type == "tool_use":
                        block = event.content_block
                        yield ToolCallEvent(block.id, block.name, dict(block.input or {}))
                    elif event.type == "message_start":
                        input_tokens = event.message.usage.input_tokens or 0
                        output_tokens = event.message.usage.output_tokens or 0
                    elif event.type == "message_delta":
                        stop_reason = event.delta.stop_reason
                        output_tokens = event.usage.output_tokens or output_tokens
                        input_tokens = event.usage.input_tokens or input_tokens
                    elif event.type == "message_stop":
                        completed = True
        except ProviderError:
            raise
        except Exception as exc:
            mapped = map_anthropic_error(exc, api_key=self._api_key, midstream=seen_events)
            if mapped is None:
                raise
            raise mapped from exc
        if not completed or stop_reason is None:
            raise ProviderError("stream_cut", "the Anthropic stream ended before its final events",
                                provider="anthropic")
        yield Finished(STOP_REASONS.get(stop_reason, "other"), Usage(input_tokens=input_tokens,
                                                                     output_tokens=output_tokens))

    async def aclose(self) -> None:
        await self._client.close()
