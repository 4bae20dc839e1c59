"""The Anthropic Messages API as the emulator speaks it: request in, bytes out.

Pure functions (no sockets) so the shapes can be read in one place: request
validation and reduction to a :class:`Conversation`, the plain JSON message, the SSE
event sequence (``event:`` and ``data:`` lines — the SDK ignores events without an
``event:`` line), and Anthropic's error body ``{"type": "error", "error": {...}}``.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from .default_reply import Conversation, Turn
from .script import Reply, approx_tokens

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
DEFAULT_MESSAGES = {
    400: "Invalid request.",
    401: "invalid x-api-key",
    403: "Your API key does not have permission to use the specified resource.",
    404: "The requested resource could not be found.",
    429: "Number of request tokens has exceeded your per-minute rate limit (emulated).",
    500: "Internal server error (emulated).",
    529: "Overloaded (emulated).",
}


class WireError(Exception):
    """A request the real API would reject; carries the status and message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def error_body(status: int, message: str | None = None) -> dict[str, Any]:
    kind = ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    text = message or DEFAULT_MESSAGES.get(status) or f"Emulated error {status}."
    return {"type": "error", "error": {"type": kind, "message": text}, "request_id": f"req_emu_{uuid.uuid4().hex[:20]}"}


def check_auth(headers: Any, invalid_prefix: str) -> tuple[int, str] | None:
    """Check the credential and version headers; return (status, message) on failure."""
    key = headers.get("x-api-key")
    bearer = headers.get("authorization", "")
    if not key and bearer.lower().startswith("bearer "):
        key = bearer[7:].strip()
    if not key:
        return 401, "x-api-key header is required"
    if key.startswith(invalid_prefix):
        return 401, "invalid x-api-key"
    if not headers.get("anthropic-version"):
        return 400, "anthropic-version: header is required"
    return None


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text")
    return ""


def _blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if isinstance(content, list) and all(isinstance(b, dict) for b in content):
        return content
    raise WireError(400, "messages: content must be a string or a list of content blocks")


def parse_request(body: dict[str, Any]) -> tuple[str, bool, Conversation]:
    """Validate a Messages request like the real API and reduce it to a Conversation."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise WireError(400, "model: Field required")
    if not isinstance(body.get("max_tokens"), int):
        raise WireError(400, "max_tokens: Field required")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise WireError(400, "messages: at least one message is required")

    turns: list[Turn] = []
    open_calls: set[str] = set()
    for index, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ("user", "assistant"):
            raise WireError(400, f"messages.{index}.role: Input should be 'user' or 'assistant'")
        blocks = _blocks(message.get("content"))
        turn = Turn(role=role)
        answered: set[str] = set()
        for block in blocks:
            kind = block.get("type")
            if kind == "text":
                turn.text += block.get("text", "")
            elif kind == "tool_use" and role == "assistant":
                turn.tool_calls.append(block.get("name", ""))
            elif kind == "tool_result" and role == "user":
                answered.add(block.get("tool_use_id", ""))
                turn.tool_results.append(_tool_name(messages, block.get("tool_use_id", "")))
            else:
                raise WireError(400, f"messages.{index}.content: unexpected block type {kind!r} for role {role}")
        if open_calls and open_calls != answered:
            raise WireError(
                400,
                f"messages.{index}: tool_use ids were found without tool_result blocks immediately after: "
                + ", ".join(sorted(open_calls - answered) or sorted(answered - open_calls)),
            )
        if answered and not open_calls:
            raise WireError(400, f"messages.{index}: unexpected tool_use_id found in tool_result blocks")
        open_calls = {b.get("id", "") for b in blocks if b.get("type") == "tool_use"}
        turns.append(turn)

    tools = body.get("tools") or []
    tool_names = [t.get("name", "") for t in tools if isinstance(t, dict)]
    system = body.get("system")
    conv = Conversation(model=model, turns=turns, tool_names=tool_names, system=_text_of(system) or None)
    return model, bool(body.get("stream")), conv


def _tool_name(messages: list[Any], call_id: str) -> str:
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            for block in content:
                if isinstance(block, dict) and block.get("type") == "tool_use" and block.get("id") == call_id:
                    return str(block.get("name", ""))
    return call_id


def _tool_id(call_id: str) -> str:
    return call_id or f"toolu_emu_{uuid.uuid4().hex[:20]}"


def _usage(reply: Reply, input_tokens: int) -> tuple[int, int]:
    if reply.usage is not None:
        return reply.usage.input_tokens, reply.usage.output_tokens
    spoken = "".join(reply.text_chunks()) + "".join(json.dumps(c.input) for c in reply.tool_calls)
    return input_tokens, approx_tokens(spoken)


def render_message(reply: Reply, model: str, input_tokens: int) -> dict[str, Any]:
    """The non-streaming response body."""
    content: list[dict[str, Any]] = []
    text = "".join(reply.text_chunks())
    if text:
        content.append({"type": "text", "text": text})
    for call in reply.tool_calls:
        content.append({"type": "tool_use", "id": _tool_id(call.id), "name": call.name, "input": call.input})
    tokens_in, tokens_out = _usage(reply, input_tokens)
    return {
        "id": f"msg_emu_{uuid.uuid4().hex[:20]}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": reply.resolved_stop_reason(),
        "stop_sequence": None,
        "usage": {"input_tokens": tokens_in, "output_tokens": tokens_out},
    }


def _event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


def render_events(reply: Reply, model: str, input_tokens: int) -> tuple[list[bytes], int]:
    """The SSE events of a streamed reply, and how many precede the closing ones.

    The second value is the index of ``message_delta``: a cut stream never gets
    that far, which is what a dropped connection looks like to the SDK.
    """
    message = render_message(reply, model, input_tokens)
    tokens_in, tokens_out = message["usage"]["input_tokens"], message["usage"]["output_tokens"]
    start = dict(message, content=[], stop_reason=None, usage={"input_tokens": tokens_in, "output_tokens": 1})
    events = [_event("message_start", {"type": "message_start", "message": start}), _event("ping", {"type": "ping"})]
    index = 0
    chunks = reply.text_chunks()
    if chunks:
        events.append(_event("content_block_start", {"type": "content_block_start", "index": index,
                                                     "content_block": {"type": "text", "text": ""}}))
        for chunk in chunks:
            events.append(_event("content_block_delta", {"type": "content_block_delta", "index": index,
                                                         "delta": {"type": "text_delta", "text": chunk}}))
        events.append(_event("content_block_stop", {"type": "content_block_stop", "index": index}))
        index += 1
    for block in message["content"]:
        if block["type"] != "tool_use":
            continue
        events.append(_event("content_block_start", {"type": "content_block_start", "index": index,
                                                     "content_block": dict(block, input={})}))
        encoded = json.dumps(block["input"])
        for piece in (encoded[i:i + 16] for i in range(0, len(encoded), 16)):
            events.append(_event("content_block_delta", {"type": "content_block_delta", "index": index,
                                                         "delta": {"type": "input_json_delta", "partial_json": piece}}))
        events.append(_event("content_block_stop", {"type": "content_block_stop", "index": index}))
        index += 1
    closing_at = len(events)
    events.append(_event("message_delta", {
        "type": "message_delta",
        "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
        "usage": {"input_tokens": tokens_in, "output_tokens": tokens_out},
    }))
    events.append(_event("message_stop", {"type": "message_stop"}))
    return events, closing_at


def error_event(status: int, message: str | None = None) -> bytes:
    """An error delivered inside a stream, as the API does for mid-stream overloads."""
    body = error_body(status, message)
    body.pop("request_id", None)
    return _event("error", body)


def malformed_event() -> bytes:
    return b"event: content_block_delta\ndata: {this is not json\n\n"


def input_tokens(body: dict[str, Any]) -> int:
    return approx_tokens(json.dumps(body.get("messages", [])) + json.dumps(body.get("system", "")))
