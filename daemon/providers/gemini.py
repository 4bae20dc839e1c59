"""Adapter between duologue and the ``google-genai`` SDK (streaming generate_content).

Everything Gemini-specific lives here: the request encoding (role ``model``,
``system_instruction``, ``function_call``/``function_response`` parts), the reading
of streamed chunks, and the one place where SDK exceptions become
:class:`ProviderError` (:func:`map_gemini_error`). The SDK is imported lazily.

The SDK's async stream is lazy: an HTTP error surfaces on the first iteration, not
at the call, so the call and the whole iteration sit in the same error mapping.
The SDK does not retry unless told to; ``retries`` > 0 turns on its retry with a
exponential backoff from ``retry_delay`` capped at ``max_retry_after`` and adds 529 to the retried codes. It never
honours ``retry-after``; the value is still reported on the error.
"""

from __future__ import annotations

import base64
import re
import uuid
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
    TextSignature,
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

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com/"
RETRIED_STATUSES = [408, 500, 502, 503, 504, 529]
"""Not 429: the SDK's backoff ignores Google's ``RetryInfo`` and would spend the quota
again within a second; a 429 goes to the router, which cools Gemini for the delay
Google asked for and fails over meanwhile."""
REFUSALS = frozenset({"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY",
                      "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION", "MODEL_ARMOR"})
MALFORMED = frozenset({"MALFORMED_FUNCTION_CALL", "MALFORMED_RESPONSE", "UNEXPECTED_TOOL_CALL",
                       "MISSING_THOUGHT_SIGNATURE"})
AUTH_REASONS = frozenset({"API_KEY_INVALID", "API_KEY_EXPIRED", "API_KEY_SERVICE_BLOCKED"})
_DURATION = re.compile(r"^\s*([0-9.]+)s\s*$")


# -- request encoding -----------------------------------------------------------

PLACEHOLDER_SIGNATURE = "skip_thought_signature_validator"
"""Google's documented stand-in for the signature of a function call Gemini did not
make (another model's history); Gemini 3 refuses such a call with no signature."""
LEVELS = {"off": "MINIMAL", "low": "LOW", "medium": "MEDIUM", "high": "HIGH", "max": "HIGH"}
"""Gemini 3 thinking levels for the depths a send may ask for."""
BUDGETS = {"low": 2_048, "medium": 8_192, "high": 16_384, "max": 32_768}
"""Thinking budgets (tokens) for Gemini models set by ``thinking_budget``."""


def signature_bytes(signature: str) -> bytes:
    """A stored signature as the bytes the SDK sends back (it writes them url-safe
    base64 encoded, which the API reads as the same bytes). Either alphabet is read,
    so Google's url-safe placeholder is too."""
    padded = signature + "=" * (-len(signature) % 4)
    return base64.b64decode(padded.replace("-", "+").replace("_", "/"))


def signature_text(raw: bytes) -> str:
    """The bytes the SDK decoded, stored as the API sent them (standard base64)."""
    return base64.b64encode(raw).decode("ascii")


def _encode_block(block: Any) -> dict[str, Any] | None:
    part: dict[str, Any]
    if isinstance(block, TextBlock):
        part = {"text": block.text}
    elif isinstance(block, CodeContextBlock):
        return {"text": render_code_context(block)}
    elif isinstance(block, ImageBlock):  # bytes: the SDK writes them as base64 in inlineData.data
        return {"inline_data": {"mime_type": block.media_type, "data": base64.b64decode(block.data)}}
    elif isinstance(block, ThinkingBlock):
        if not block.signature:
            return None  # Gemini reads nothing from unsigned thought text
        part = {"text": block.text, "thought": True}
    elif isinstance(block, ToolCallBlock):
        part = {"function_call": {"id": block.id, "name": block.name, "args": block.input}}
    elif isinstance(block, ToolResultBlock):
        key = "error" if block.is_error else "output"
        return {"function_response": {"id": block.call_id, "name": block.name, "response": {key: block.content}}}
    else:
        return None
    signature = getattr(block, "signature", None)
    if signature:
        part["thought_signature"] = signature_bytes(signature)
    return part


def _encode_turn(turn: Turn) -> dict[str, Any]:
    parts = [encoded for encoded in map(_encode_block, turn.blocks) if encoded is not None]
    if turn.role == "assistant":
        calls = [p for p in parts if "function_call" in p]
        if calls and "thought_signature" not in calls[0]:
            calls[0]["thought_signature"] = signature_bytes(PLACEHOLDER_SIGNATURE)
    return {"role": "model" if turn.role == "assistant" else "user", "parts": parts}


def build_contents(req: TurnRequest) -> list[dict[str, Any]]:
    """The ``contents`` of a generate_content call for a turn.

    A model step's first function call carries its signature; one that came from
    another model gets Google's placeholder (parallel calls after the first carry
    none, as Gemini returns them).
    """
    return encode_history(req.messages, req.model, turn_encoder(_encode_turn, req.info, req.model),
                          prepared=req.prepared)


def build_config(req: TurnRequest) -> dict[str, Any]:
    """The ``config`` of a generate_content call (a GenerateContentConfig dict)."""
    config: dict[str, Any] = {"max_output_tokens": req.max_tokens}
    if req.system:
        config["system_instruction"] = req.system
    if req.tools:
        config["tools"] = [{"function_declarations": [
            {"name": t.name, "description": t.description, "parameters_json_schema": t.parameters}
            for t in req.tools
        ]}]
        config["automatic_function_calling"] = {"disable": True}
    info = req.info
    if info is not None and info.thinking != "none":
        thinking: dict[str, Any] = {"include_thoughts": True}  # thought summaries, shown apart
        if req.thinking is not None and info.thinking_control == "level":
            thinking["thinking_level"] = LEVELS[req.thinking]
        elif req.thinking is not None and info.thinking_control == "budget":
            thinking["thinking_budget"] = 0 if req.thinking == "off" else BUDGETS[req.thinking]
        config["thinking_config"] = thinking
    return config


# -- errors ---------------------------------------------------------------------


def _details(exc: Any) -> list[dict[str, Any]]:
    """The google.rpc details of an error body, or none when the body is not Google's."""
    body = exc.details if isinstance(exc.details, dict) else {}
    error = body.get("error")
    details = error.get("details") if isinstance(error, dict) else None
    return [d for d in details if isinstance(d, dict)] if isinstance(details, list) else []


def _retry_after(exc: Any) -> float | None:
    """From a ``retry-after`` header (seconds or HTTP-date) or a RetryInfo ``retryDelay``."""
    headers = getattr(getattr(exc, "response", None), "headers", None)
    if headers is not None:
        wait = parse_retry_after(headers.get("retry-after"))
        if wait is not None:
            return wait
    for detail in _details(exc):
        match = _DURATION.match(str(detail.get("retryDelay", "")))
        if match:
            return float(match.group(1))
    return None


def _reasons(exc: Any) -> set[str]:
    return {str(d["reason"]) for d in _details(exc) if d.get("reason")}


def _error_text(exc: Any) -> str:
    """The error's text, whatever the body's shape (Google's, a bare string, a page)."""
    if exc.message:
        return f"{exc.status or 'ERROR'}: {exc.message}"
    body = exc.details
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return body["error"]
    if isinstance(body, str) and body.strip():
        return " ".join(body.split())[:300]
    if body:
        return " ".join(str(body).split())[:300]
    return f"HTTP {exc.code}" if exc.code else "no message"


def _transport_errors() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...]]:
    """(timeout classes, transport classes) of whichever httpx the SDK uses."""
    timeouts: list[type[BaseException]] = []
    transports: list[type[BaseException]] = []
    for name in ("httpx2", "httpx"):
        try:
            module = __import__(name)
        except ImportError:
            continue
        timeouts.append(module.TimeoutException)
        transports.append(module.TransportError)
    return tuple(timeouts), tuple(transports)


def map_gemini_error(exc: BaseException, *, api_key: str | None, midstream: bool = False) -> ProviderError | None:
    """Translate an exception raised by the SDK (or its transport) into a ProviderError.

    Returns None for exceptions it does not know; the caller makes those ``internal``.
    """
    from google.genai import errors

    def error(kind: str, message: str, **kw: Any) -> ProviderError:
        return ProviderError(kind, scrub(message, api_key), provider="gemini", **kw)  # type: ignore[arg-type]

    if isinstance(exc, errors.APIError):
        code = exc.code if isinstance(exc.code, int) else None
        status = exc.status if isinstance(exc.status, str) else None
        kind = _kind_for(code, status, _reasons(exc))
        return error(kind, _error_text(exc), status=code, retry_after=_retry_after(exc))
    if isinstance(exc, errors.UnknownApiResponseError):
        return error("server", "Gemini sent malformed stream data", retryable=True)
    timeouts, transports = _transport_errors()
    if isinstance(exc, timeouts):
        return error("timeout", "the request to Gemini timed out")
    if isinstance(exc, transports):
        return error("stream_cut" if midstream else "timeout", f"the connection to Gemini broke: {exc}")
    if isinstance(exc, ValueError):  # a chunk the SDK could not validate
        return error("server", f"Gemini sent an unreadable response: {exc}", retryable=True)
    return None


def _kind_for(code: int | None, status: str | None, reasons: set[str]) -> str:
    if code == 429 or status == "RESOURCE_EXHAUSTED":
        return "rate_limited"
    if code in (503, 529) or status == "UNAVAILABLE":
        return "overloaded"
    if code == 504 or code == 408 or status == "DEADLINE_EXCEEDED":
        return "timeout"
    if code in (401, 403) or reasons & AUTH_REASONS or status in ("UNAUTHENTICATED", "PERMISSION_DENIED"):
        return "auth"
    if code == 404 or status == "NOT_FOUND":
        return "not_found"
    if code is None or code >= 500:
        return "server"
    return "bad_request"


def _finish(reason: str, called_tools: bool) -> str:
    if reason == "STOP":
        return "tool_use" if called_tools else "end_turn"
    if reason == "MAX_TOKENS":
        return "max_tokens"
    if reason in REFUSALS:
        return "refusal"
    return "other"


def _refusal(reason: str, candidate: Any) -> Refusal:
    """A safety or recitation stop, with what Google said about it."""
    ratings = [str(getattr(r.category, "value", r.category)).removeprefix("HARM_CATEGORY_").lower()
               for r in (candidate.safety_ratings or []) if r.blocked]
    explanation = candidate.finish_message or (
        f"Gemini stopped the reply ({reason}{': ' + ', '.join(ratings) if ratings else ''})")
    return Refusal(provider="gemini", category=reason, explanation=explanation)


def _blocked(feedback: Any) -> Refusal:
    reason = str(getattr(feedback.block_reason, "value", feedback.block_reason))
    explanation = feedback.block_reason_message or f"Gemini blocked the prompt ({reason}); nothing was generated"
    return Refusal(provider="gemini", category=reason, explanation=explanation)


def _usage(meta: Any) -> Usage:
    """Usage as billed: thoughts are output; the cached part of the prompt apart."""
    cached = meta.cached_content_token_count or 0
    thoughts = meta.thoughts_token_count or 0
    return Usage(input_tokens=max(0, (meta.prompt_token_count or 0) - cached),
                 output_tokens=(meta.candidates_token_count or 0) + thoughts,
                 cache_read_tokens=cached, thinking_tokens=thoughts)


class _Reader:
    """Turns the SDK's chunks into our events, in the order of the parts.

    Thought parts arrive in pieces; one thinking block ends where the first part
    that is not a thought begins (or where a thought part carries its signature).
    """

    def __init__(self) -> None:
        self.seen = False
        self.finish: str | None = None
        self.called_tools = False
        self.usage = Usage()
        self.refusal: Refusal | None = None
        self._thought: list[str] | None = None

    def _close_thought(self, signature: str | None = None) -> list[StreamEvent]:
        if self._thought is None:
            return [ThinkingDone("", signature)] if signature else []
        text, self._thought = "".join(self._thought), None
        return [ThinkingDone(text, signature)]

    def read(self, chunk: Any) -> list[StreamEvent]:
        self.seen = True
        out: list[StreamEvent] = []
        if chunk.usage_metadata is not None:
            self.usage = _usage(chunk.usage_metadata)
        candidate = chunk.candidates[0] if chunk.candidates else None
        if candidate is None:
            feedback = chunk.prompt_feedback
            if feedback is not None and feedback.block_reason is not None:
                self.refusal, self.finish = _blocked(feedback), "BLOCKED"
            return out
        parts = candidate.content.parts if candidate.content and candidate.content.parts else []
        for part in parts:
            signature = signature_text(part.thought_signature) if part.thought_signature else None
            if part.thought:
                if part.text:
                    self._thought = (self._thought or []) + [part.text]
                    out.append(ThinkingDelta(part.text))
                if signature:
                    out += self._close_thought(signature)
                continue
            out += self._close_thought()
            if part.function_call is not None:
                call = part.function_call
                self.called_tools = True
                out.append(ToolCallEvent(call.id or f"call_{uuid.uuid4().hex[:16]}", call.name or "",
                                         dict(call.args or {}), signature))
            elif part.text is not None:
                if part.text:
                    out.append(TextDelta(part.text))
                if signature:
                    out.append(TextSignature(signature))
        if candidate.finish_reason is not None:
            self.finish = str(getattr(candidate.finish_reason, "value", candidate.finish_reason))
            if self.finish in REFUSALS:
                self.refusal = _refusal(self.finish, candidate)
        return out

    def finished(self) -> list[StreamEvent]:
        out = self._close_thought()
        if self.finish is None:
            raise ProviderError("stream_cut", "the Gemini stream ended without a finish reason", provider="gemini")
        if self.finish in MALFORMED:
            raise ProviderError("malformed", f"Gemini produced an unusable reply ({self.finish})",
                                provider="gemini", retryable=False)
        if self.finish == "BLOCKED":
            return [*out, Finished("refusal", self.usage, refusal=self.refusal)]
        return [*out, Finished(_finish(self.finish, self.called_tools), self.usage, refusal=self.refusal)]


# -- the provider ---------------------------------------------------------------


class GeminiProvider:
    """Streams turns from Gemini through ``google.genai.Client().aio``."""

    name = "gemini"

    def __init__(self, api_key: str, base_url: str | None = None, api_version: str = "v1beta", *,
                 timeout: float = 120.0, retries: int = 0, max_retry_after: float = 20.0,
                 retry_delay: float = 0.5) -> None:
        from google import genai
        from google.genai import types

        retry = None
        if retries > 0:
            retry = types.HttpRetryOptions(attempts=retries + 1, initial_delay=retry_delay, jitter=retry_delay,
                                           max_delay=max_retry_after, http_status_codes=RETRIED_STATUSES)
        self._api_key = api_key
        self._idle_s = timeout
        self._client = genai.Client(
            api_key=api_key,
            vertexai=False,  # explicit, so GOOGLE_GENAI_USE_VERTEXAI is never read behind our back
            http_options=types.HttpOptions(
                base_url=base_url or DEFAULT_BASE_URL,
                api_version=api_version,
                timeout=max(1, int(timeout * 1000)),  # the SDK wants milliseconds
                retry_options=retry,
            ),
        )

    @classmethod
    def connect(cls, connection: Connection) -> GeminiProvider:
        return cls(connection.api_key, connection.base_url, timeout=connection.timeout_s,
                   retries=connection.max_retries)

    async def stream(self, req: TurnRequest) -> AsyncIterator[StreamEvent]:
        reader = _Reader()
        with sdk_boundary("Gemini", self._api_key, map_gemini_error, lambda: reader.seen):
            contents = build_contents(req)
            config = build_config(req)
            chunks = await self._client.aio.models.generate_content_stream(
                model=req.model, contents=contents, config=config)  # type: ignore[arg-type]
            async for chunk in idle_guard(chunks, self._idle_s, "Gemini"):
                for event in reader.read(chunk):
                    yield event
            ending = reader.finished()
        for event in ending:
            yield event

    async def aclose(self) -> None:
        await self._client.aio.aclose()
