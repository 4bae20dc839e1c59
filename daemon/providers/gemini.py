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

import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

from duologue.protocol.entities import CodeContextBlock, TextBlock, ToolCallBlock, ToolResultBlock, Usage

from .base import Finished, ProviderError, StreamEvent, TextDelta, ToolCallEvent, TurnRequest, scrub
from .history import Turn, prepare_turns, render_code_context

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com/"
RETRIED_STATUSES = [408, 429, 500, 502, 503, 504, 529]
REFUSALS = frozenset({"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY"})
AUTH_REASONS = frozenset({"API_KEY_INVALID", "API_KEY_EXPIRED", "API_KEY_SERVICE_BLOCKED"})
_DURATION = re.compile(r"^\s*([0-9.]+)s\s*$")


# -- request encoding -----------------------------------------------------------


def _encode_turn(turn: Turn) -> dict[str, Any]:
    parts: list[dict[str, Any]] = []
    for block in turn.blocks:
        if isinstance(block, TextBlock):
            parts.append({"text": block.text})
        elif isinstance(block, CodeContextBlock):
            parts.append({"text": render_code_context(block)})
        elif isinstance(block, ToolCallBlock):
            parts.append({"function_call": {"id": block.id, "name": block.name, "args": block.input}})
        elif isinstance(block, ToolResultBlock):
            key = "error" if block.is_error else "output"
            parts.append({"function_response": {"id": block.call_id, "name": block.name,
                                                "response": {key: block.content}}})
    return {"role": "model" if turn.role == "assistant" else "user", "parts": parts}


def build_contents(req: TurnRequest) -> list[dict[str, Any]]:
    """The ``contents`` of a generate_content call for a turn."""
    return [_encode_turn(t) for t in prepare_turns(req.messages)]


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
    return config


# -- errors ---------------------------------------------------------------------


def _retry_after(exc: Any) -> float | None:
    """From a ``retry-after`` header or a google.rpc.RetryInfo detail (``"12s"``)."""
    headers = getattr(getattr(exc, "response", None), "headers", None)
    if headers is not None and headers.get("retry-after") is not None:
        try:
            return max(0.0, float(headers.get("retry-after")))
        except ValueError:
            pass
    details = exc.details.get("error", {}).get("details", []) if isinstance(exc.details, dict) else []
    for detail in details if isinstance(details, list) else []:
        match = _DURATION.match(str(detail.get("retryDelay", ""))) if isinstance(detail, dict) else None
        if match:
            return float(match.group(1))
    return None


def _reasons(exc: Any) -> set[str]:
    details = exc.details.get("error", {}).get("details", []) if isinstance(exc.details, dict) else []
    return {str(d.get("reason")) for d in details if isinstance(d, dict) and d.get("reason")} if isinstance(
        details, list) else set()


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

    Returns None for exceptions that are not provider failures.
    """
    from google.genai import errors

    def error(kind: str, message: str, **kw: Any) -> ProviderError:
        return ProviderError(kind, scrub(message, api_key), provider="gemini", **kw)  # type: ignore[arg-type]

    if isinstance(exc, errors.APIError):
        code = exc.code if isinstance(exc.code, int) else None
        message = f"{exc.status or 'ERROR'}: {exc.message or 'no message'}"
        kind = _kind_for(code, exc.status, _reasons(exc))
        return error(kind, message, status=code, retry_after=_retry_after(exc))
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

    async def stream(self, req: TurnRequest) -> AsyncIterator[StreamEvent]:
        contents = build_contents(req)
        config = build_config(req)
        seen_chunks = False
        finish: str | None = None
        called_tools = False
        input_tokens = output_tokens = 0
        try:
            chunks = await self._client.aio.models.generate_content_stream(
                model=req.model, contents=contents, config=config)  # type: ignore[arg-type]
            async for chunk in chunks:
                seen_chunks = True
                usage = chunk.usage_metadata
                if usage is not None:
                    input_tokens = usage.prompt_token_count or input_tokens
                    output_tokens = usage.candidates_token_count or output_tokens
                candidate = chunk.candidates[0] if chunk.candidates else None
                if candidate is None:
                    continue
                parts = candidate.content.parts if candidate.content and candidate.content.parts else []
                for part in parts:
                    if part.text and not part.thought:
                        yield TextDelta(part.text)
                    elif part.function_call is not None:
                        call = part.function_call
                        called_tools = True
                        yield ToolCallEvent(call.id or f"call_{uuid.uuid4().hex[:16]}", call.name or "",
                                            dict(call.args or {}))
                if candidate.finish_reason is not None:
                    finish = str(getattr(candidate.finish_reason, "value", candidate.finish_reason))
        except ProviderError:
            raise
        except Exception as exc:
            mapped = map_gemini_error(exc, api_key=self._api_key, midstream=seen_chunks)
            if mapped is None:
                raise
            raise mapped from exc
        if finish is None:
            raise ProviderError("stream_cut", "the Gemini stream ended without a finish reason", provider="gemini")
        yield Finished(_finish(finish, called_tools), Usage(input_tokens=input_tokens, output_tokens=output_tokens))

    async def aclose(self) -> None:
        await self._client.aio.aclose()
