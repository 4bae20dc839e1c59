"""The Gemini API (generateContent / streamGenerateContent), request side.

Pure functions: credential checks, Google's error body ``{"error": {"code",
"message", "status", "details"?}}``, and the validation of a request down to a
:class:`GeminiRequest`. Both camelCase and snake_case field names are accepted,
because the SDK may send either (function declarations, ``thought_signature``).
What is refused, and where the rule comes from:

- unknown or retired model: 404 NOT_FOUND "models/<id> is not found for API
  version v1beta, or is not supported for generateContent. Call ListModels ...";
- on Gemini 3 models, a current-turn ``functionCall`` whose step has no
  ``thoughtSignature`` on its first call (thought-signatures doc: the current turn
  starts after the latest user content that is not only function responses;
  parallel calls carry one signature, on the first) with the real 400 wording;
- a ``thoughtSignature`` that is not base64 (protobuf JSON's bytes rule); in the
  current turn, one this emulator did not issue, or one issued for another model on
  a function call (earlier turns are not validated, as the doc says); Google's two
  documented placeholders pass on function calls;
- a ``thoughtSignature`` nested inside ``functionCall`` (an unknown field there);
- function responses that do not match the calls of the turn before;
- ``thinkingBudget: 0`` on a model that only works in thinking mode, and thinking
  levels the model does not offer;
- inline images Gemini cannot read (a MIME type or data it refuses, a request over
  its inline size): :mod:`images`.

Wording marked "(ours)" is not in the stored docs. Rendering is :mod:`gemini_stream`.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from typing import Any

from .access import key_matches
from .caching import Segment
from .default_reply import Conversation, Turn
from .images import ImageError, check_gemini, check_gemini_total
from .models import GeminiModel, ModelTable
from .signing import Signer

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
INVALID_KEY_MESSAGE = "API key not valid. Please pass a valid API key."
MISSING_SIGNATURE = (
    "Function call is missing a thought_signature in functionCall parts. This is required for tools to "
    "work correctly, and missing thought_signature may lead to degraded model performance. Additional "
    "data, function call `default_api:{name}` , position {position}. Please refer to "
    "https://ai.google.dev/gemini-api/docs/thought-signatures for more details.")
QUOTA_MESSAGE = (
    "You exceeded your current quota, please check your plan and billing details. For more information "
    "on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits. To monitor your current "
    "usage, head to: https://ai.dev/rate-limit. \n* Quota exceeded for metric: "
    "generativelanguage.googleapis.com/generate_content_paid_tier_input_token_count, limit: 1000000, "
    "model: {model}\nPlease retry in {delay}.")


class WireError(Exception):
    """A request the real API would reject; carries the status and message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def error_body(status: int, message: str | None = None, reason: str | None = None,
               retry_delay: str | None = None, model: str = "") -> dict[str, Any]:
    """Google's error body; with ``retry_delay`` the details a quota 429 carries
    (google.rpc.QuotaFailure, Help, RetryInfo), as the rate-limits doc shows."""
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
    if retry_delay is not None:
        if message is None:
            error["message"] = QUOTA_MESSAGE.format(model=model or "unknown", delay=retry_delay)
        error["details"] = [
            {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{
                "quotaMetric": "generativelanguage.googleapis.com/generate_content_paid_tier_input_token_count",
                "quotaId": "GenerateContentPaidTierInputTokensPerModelPerMinute",
                "quotaDimensions": {"location": "global", "model": model or "unknown"},
                "quotaValue": "1000000"}]},
            {"@type": "type.googleapis.com/google.rpc.Help", "links": [{
                "description": "Learn more about Gemini API quotas",
                "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]},
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay},
        ]
    return {"error": error}


def not_found_body(model: str, version: str) -> dict[str, Any]:
    return error_body(404, f"models/{model} is not found for API version {version}, or is not supported for "
                           "generateContent. Call ListModels to see the list of available models and their "
                           "supported methods.")


def check_auth(headers: Any, query: dict[str, list[str]], api_key: str) -> dict[str, Any] | None:
    """Check the key (header or ``key`` query parameter; only ``api_key`` is valid);
    return an error body on failure. As Google answers: no key is 403
    PERMISSION_DENIED, a wrong one 400 INVALID_ARGUMENT with reason API_KEY_INVALID
    (Troubleshooting guide; the generateContent error body it shows)."""
    key = headers.get("x-goog-api-key") or (query.get("key") or [""])[0]
    if not key:
        return error_body(403)
    if not key_matches(key, api_key):
        return error_body(400, INVALID_KEY_MESSAGE, reason="API_KEY_INVALID")
    return None


def get(obj: dict[str, Any], camel: str, snake: str) -> Any:
    return obj.get(camel, obj.get(snake))


def texts(parts: list[dict[str, Any]], *, thought: bool = False) -> str:
    return "".join(p["text"] for p in parts if isinstance(p.get("text"), str) and bool(p.get("thought")) == thought)


@dataclass
class GeminiRequest:
    """A request the emulator accepted, with what the answer depends on."""

    model: GeminiModel
    stream: bool
    conv: Conversation
    thinks: bool
    include_thoughts: bool
    segments: list[Segment]


def _thinking(model: GeminiModel, body: dict[str, Any]) -> tuple[bool, bool]:
    """(the model thinks for this request, thought summaries were asked for)."""
    config = get(body, "generationConfig", "generation_config") or {}
    thinking = get(config, "thinkingConfig", "thinking_config") or {}
    if not isinstance(thinking, dict):
        raise WireError(400, "Invalid JSON payload received. 'thinkingConfig' must be an object.")
    include = bool(get(thinking, "includeThoughts", "include_thoughts"))
    level = get(thinking, "thinkingLevel", "thinking_level")
    budget = get(thinking, "thinkingBudget", "thinking_budget")
    if level is not None:
        if not model.thinking_levels:
            raise WireError(400, "Thinking level is not supported for this model.")  # (ours)
        if str(level).upper() not in model.thinking_levels:
            raise WireError(400, f"Thinking level {str(level).upper()} is not supported for this model; "
                                 f"use one of {', '.join(model.thinking_levels)}.")  # (ours)
    if model.thinks == "none":
        return False, include
    if budget == 0 and model.thinks == "always" and not model.thinking_levels:
        raise WireError(400, "Budget 0 is invalid. This model only works in thinking mode.")
    if model.thinks == "always":
        return True, include
    if model.thinks == "default":
        return budget != 0, include
    return budget is not None and budget != 0, include


def _signature(part: dict[str, Any]) -> Any:
    token = get(part, "thoughtSignature", "thought_signature")
    if isinstance(token, bytes):  # SDK-built dicts handed in directly; the SDK would send base64
        return base64.urlsafe_b64encode(token).decode()
    return token


def _current_turn_start(contents: list[dict[str, Any]]) -> int:
    """Index of the latest user content holding more than function responses."""
    for index in range(len(contents) - 1, -1, -1):
        content = contents[index]
        if content.get("role", "user") != "user":
            continue
        if any(get(p, "functionResponse", "function_response") is None for p in content.get("parts", [])):
            return index
    return 0


def _check_signatures(model: GeminiModel, contents: list[dict[str, Any]], signer: Signer) -> None:
    start = _current_turn_start(contents)
    for index, content in enumerate(contents):
        if content.get("role") != "model":
            continue
        current = index > start
        first_call_seen = False
        for number, part in enumerate(content["parts"]):
            call = get(part, "functionCall", "function_call")
            token = _signature(part)
            where = f"contents[{index}].parts[{number}]"
            if isinstance(call, dict) and _signature(call) is not None:
                name = "thoughtSignature" if "thoughtSignature" in call else "thought_signature"
                raise WireError(400, f"Invalid JSON payload received. Unknown name \"{name}\" at "
                                     f"'{where}.function_call': Cannot find field.")
            if token is not None:
                verdict = signer.check_gemini(model.id, part, token, call if isinstance(call, dict) else None)
                if verdict == "not_base64":
                    raise WireError(400, f"Invalid value at '{where}.thought_signature' (TYPE_BYTES), "
                                         f"Base64 decoding failed for \"{token}\"")
                if verdict == "corrupt" and current:
                    raise WireError(400, f"Corrupted thought signature at {where}.")  # (ours, after the docs)
                if verdict == "foreign" and current and call is not None:
                    raise WireError(400, f"Invalid thought signature at {where}: it was issued for another "
                                         "model.")  # (ours)
            if call is None or first_call_seen:
                continue
            first_call_seen = True
            if current and model.requires_signatures and token is None:
                raise WireError(400, MISSING_SIGNATURE.format(name=call.get("name", ""), position=index + 1))


def parse_request(model_id: str, stream: bool, body: dict[str, Any], *, version: str = "v1beta",
                  models: ModelTable | None = None, signer: Signer | None = None) -> GeminiRequest:
    """Validate a generateContent request like the real API and reduce it.

    Usable without a server as an oracle (built-in model table and signer).
    """
    models = models or ModelTable()
    signer = signer or Signer()
    model = models.gemini_model(model_id)
    if model is None:
        raise WireError(404, not_found_body(model_id, version)["error"]["message"])
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise WireError(400, "* GenerateContentRequest.contents: contents is not specified")
    turns: list[Turn] = []
    segments: list[Segment] = []
    system = get(body, "systemInstruction", "system_instruction")
    if system:
        segments.append(Segment.of({"system": system}))
    tools = body.get("tools") or []
    for tool in tools:
        segments.append(Segment.of({"tool": tool}))
    open_calls = 0
    inline = 0
    for index, content in enumerate(contents):
        role = content.get("role", "user") if isinstance(content, dict) else None
        if role not in ("user", "model"):
            raise WireError(400, f"* GenerateContentRequest.contents[{index}].role: "
                                 "Please use a valid role: user, model.")
        parts = content.get("parts")
        if not isinstance(parts, list) or not parts:
            raise WireError(400, f"* GenerateContentRequest.contents[{index}].parts: contents.parts must not be empty.")
        turn = Turn(role="user" if role == "user" else "assistant", text=texts(parts),
                    thinking=texts(parts, thought=True))
        responses = 0
        for number, part in enumerate(parts):
            call = get(part, "functionCall", "function_call")
            response = get(part, "functionResponse", "function_response")
            if call is not None:
                turn.tool_calls.append(str(call.get("name", "")))
            if response is not None:
                responses += 1
                turn.tool_results.append(str(response.get("name", "")))
            try:
                inline += check_gemini(part, f"contents[{index}].parts[{number}]", turn)
            except ImageError as e:
                raise WireError(400, str(e)) from None
            segments.append(Segment.of({"role": role, "first": number == 0, "part": part}))
        if open_calls and responses != open_calls:
            raise WireError(400, "Please ensure that the number of function response parts is equal to the "
                                 "number of function call parts of the function call turn.")
        open_calls = len(turn.tool_calls)
        turns.append(turn)
    try:
        check_gemini_total(inline)
    except ImageError as e:
        raise WireError(400, str(e)) from None
    _check_signatures(model, contents, signer)
    thinks, include = _thinking(model, body)

    tool_names: list[str] = []
    for tool in tools:
        for decl in get(tool, "functionDeclarations", "function_declarations") or []:
            tool_names.append(str(decl.get("name", "")))
    system_text = texts(system.get("parts", [])) if isinstance(system, dict) else None
    conv = Conversation(model=model.id, turns=turns, tool_names=tool_names, system=system_text or None)
    return GeminiRequest(model, stream, conv, thinks, include, segments)


def new_response_id() -> str:
    return uuid.uuid4().hex[:22]
