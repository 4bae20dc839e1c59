"""The Gemini API (generateContent / streamGenerateContent) as the emulator speaks it.

Pure functions: request validation and reduction to a :class:`Conversation`, the
GenerateContentResponse JSON, the SSE stream (``data:`` lines only, one response
object per event), and Google's error body ``{"error": {"code", "message",
"status"}}``. Both camelCase and snake_case field names are accepted in requests,
because the SDK may send either for function declarations.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from .default_reply import Conversation, Turn
from .script import Reply, approx_tokens

STATUSES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
    529: "UNAVAILABLE",
}
DEFAULT_MESSAGES = {
    400: "Request contains an invalid argument.",
    403: "Method doesn't allow unregistered callers. Please use an API key.",
    404: "Requested entity was not found.",
    429: "Resource has been exhausted (e.g. check quota). (emulated)",
    500: "An internal error has occurred. (emulated)",
    503: "The model is overloaded. Please try again later. (emulated)",
    529: "The model is overloaded. Please try again later. (emulated)",
}
FINISH_REASONS = {"end_turn": "STOP", "tool_use": "STOP", "stop_sequence": "STOP", "max_tokens": "MAX_TOKENS"}
INVALID_KEY_MESSAGE = "API key not valid. Please pass a valid API key."


class WireError(Exception):
    """A request the real API would reject; carries the status and message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def error_body(status: int, message: str | None = None, reason: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {
        "code": status,
        "message": message or DEFAULT_MESSAGES.get(status) or f"Emulated error {status}.",
        "status": STATUSES.get(status, "INTERNAL" if status >= 500 else "FAILED_PRECONDITION"),
    }
    if reason:
        error["details"] = [{
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": reason,
            "domain": "googleapis.com",
            "metadata": {"service": "generativelanguage.googleapis.com"},
        }]
    return {"error": error}


def check_auth(headers: Any, query: dict[str, list[str]], invalid_prefix: str) -> dict[str, Any] | None:
    """Check the key (header or ``key`` query parameter); return an error body on failure."""
    key = headers.get("x-goog-api-key") or (query.get("key") or [""])[0]
    if not key:
        return error_body(403)
    if key.startswith(invalid_prefix):
        return error_body(400, INVALID_KEY_MESSAGE, reason="API_KEY_INVALID")
    return None


def _get(obj: dict[str, Any], camel: str, snake: str) -> Any:
    return obj.get(camel, obj.get(snake))


def _texts(parts: list[dict[str, Any]]) -> str:
    return "".join(p["text"] for p in parts if isinstance(p.get("text"), str) and not p.get("thought"))


def parse_request(model: str, stream: bool, body: dict[str, Any]) -> Conversation:
    """Validate a generateContent request like the real API and reduce it."""
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise WireError(400, "* GenerateContentRequest.contents: contents is not specified")
    turns: list[Turn] = []
    open_calls = 0
    for index, content in enumerate(contents):
        role = content.get("role", "user") if isinstance(content, dict) else None
        if role not in ("user", "model"):
            raise WireError(400, f"* GenerateContentRequest.contents[{index}].role: Please use a valid role: user, model.")
        parts = content.get("parts")
        if not isinstance(parts, list) or not parts:
            raise WireError(400, f"* GenerateContentRequest.contents[{index}].parts: contents.parts must not be empty.")
        turn = Turn(role="user" if role == "user" else "assistant", text=_texts(parts))
        responses = 0
        for part in parts:
            call = _get(part, "functionCall", "function_call")
            response = _get(part, "functionResponse", "function_response")
            if call is not None:
                turn.tool_calls.append(str(call.get("name", "")))
            if response is not None:
                responses += 1
                turn.tool_results.append(str(response.get("name", "")))
        if open_calls and responses != open_calls:
            raise WireError(400, "Please ensure that the number of function response parts is equal to the "
                                 "number of function call parts of the function call turn.")
        open_calls = len(turn.tool_calls)
        turns.append(turn)

    tool_names: list[str] = []
    for tool in body.get("tools") or []:
        for decl in _get(tool, "functionDeclarations", "function_declarations") or []:
            tool_names.append(str(decl.get("name", "")))
    system = _get(body, "systemInstruction", "system_instruction")
    system_text = _texts(system.get("parts", [])) if isinstance(system, dict) else None
    return Conversation(model=model, turns=turns, tool_names=tool_names, system=system_text or None)


def _usage(reply: Reply, input_tokens: int) -> dict[str, int]:
    if reply.usage is not None:
        prompt, output = reply.usage.input_tokens, reply.usage.output_tokens
    else:
        spoken = "".join(reply.text_chunks()) + "".join(json.dumps(c.input) for c in reply.tool_calls)
        prompt, output = input_tokens, approx_tokens(spoken)
    return {"promptTokenCount": prompt, "candidatesTokenCount": output, "totalTokenCount": prompt + output}


def _response(model: str, response_id: str, parts: list[dict[str, Any]], finish: str | None,
              usage: dict[str, int]) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    return {"candidates": [candidate], "usageMetadata": usage, "modelVersion": model, "responseId": response_id}


def _call_parts(reply: Reply) -> list[dict[str, Any]]:
    return [{"functionCall": {"id": c.id or f"call_emu_{uuid.uuid4().hex[:16]}", "name": c.name, "args": c.input}}
            for c in reply.tool_calls]


def render_response(reply: Reply, model: str, input_tokens: int) -> dict[str, Any]:
    """The non-streaming response body."""
    text = "".join(reply.text_chunks())
    parts = ([{"text": text}] if text else []) + _call_parts(reply)
    finish = FINISH_REASONS.get(reply.resolved_stop_reason(), reply.resolved_stop_reason().upper())
    return _response(model, uuid.uuid4().hex[:22], parts or [{"text": ""}], finish, _usage(reply, input_tokens))


def render_events(reply: Reply, model: str, input_tokens: int) -> tuple[list[bytes], int]:
    """The SSE events of a streamed reply, and the index of the last (finishing) one.

    Each event is one GenerateContentResponse; only the last carries finishReason
    and the full usage, as the real API does. A cut stream stops before it.
    """
    response_id = uuid.uuid4().hex[:22]
    usage = _usage(reply, input_tokens)
    interim = {"promptTokenCount": usage["promptTokenCount"], "totalTokenCount": usage["promptTokenCount"]}
    pieces: list[list[dict[str, Any]]] = [[{"text": chunk}] for chunk in reply.text_chunks()]
    pieces += [[part] for part in _call_parts(reply)]
    if not pieces:
        pieces = [[{"text": ""}]]
    finish = FINISH_REASONS.get(reply.resolved_stop_reason(), reply.resolved_stop_reason().upper())
    events = []
    for number, parts in enumerate(pieces):
        last = number == len(pieces) - 1
        body = _response(model, response_id, parts, finish if last else None, usage if last else interim)
        events.append(f"data: {json.dumps(body)}\r\n\r\n".encode())
    return events, len(events) - 1


def error_event(status: int, message: str | None = None) -> bytes:
    """An error delivered inside a stream: a data line holding Google's error body."""
    return f"data: {json.dumps(error_body(status, message))}\r\n\r\n".encode()


def malformed_event() -> bytes:
    return b"data: {\"candidates\": [{this is not json\r\n\r\n"


def input_tokens(body: dict[str, Any]) -> int:
    system = _get(body, "systemInstruction", "system_instruction") or ""
    return approx_tokens(json.dumps(body.get("contents", [])) + json.dumps(system))
