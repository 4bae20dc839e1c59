"""The Gemini API, answer side: GenerateContentResponse JSON and its SSE stream.

Shapes follow the generateContent reference and google/genai/types.py:

- each SSE event is one ``data:`` line holding a whole GenerateContentResponse;
  only the last carries ``finishReason`` and the full ``usageMetadata``;
- thinking models report ``thoughtsTokenCount`` (billed as output, outside
  ``candidatesTokenCount``; ``totalTokenCount`` adds both to the prompt) and, when
  the request sets ``thinkingConfig.includeThoughts``, a thought-summary part
  ``{"text": ..., "thought": true}`` first;
- Gemini 3 puts a ``thoughtSignature`` (base64) on the first ``functionCall`` part
  of a response (parallel calls: only the first), or on the last part when the
  response has no function call (thought-signatures doc);
- implicit caching shows as ``cachedContentTokenCount``, included in
  ``promptTokenCount``;
- a blocked prompt is ``promptFeedback.blockReason`` with no candidates;
  ``MALFORMED_FUNCTION_CALL`` is a candidate with no content; SAFETY and the other
  content-policy endings come as a content-less final chunk after any partial
  text, SAFETY with ``safetyRatings``.
"""

from __future__ import annotations

import json
from typing import Any

from .default_reply import default_thinking
from .gemini_wire import GeminiRequest, error_body, new_response_id
from .script import Reply, approx_tokens
from .signing import Signer

FROM_STOP_REASON = {"max_tokens": "MAX_TOKENS", "model_context_window_exceeded": "MAX_TOKENS"}
CONTENT_ENDINGS = ("STOP", "MAX_TOKENS", "FINISH_REASON_UNSPECIFIED")
DEFAULT_RATINGS = (
    {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True},
    {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"},
    {"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "NEGLIGIBLE"},
    {"category": "HARM_CATEGORY_SEXUALLY_EXPLICIT", "probability": "NEGLIGIBLE"},
)


def _finish(reply: Reply) -> str:
    if reply.finish_reason:
        return reply.finish_reason
    return FROM_STOP_REASON.get(reply.resolved_stop_reason(), "STOP")


def _usage(prompt: int, cached: int, candidates: int, thoughts: int) -> dict[str, Any]:
    usage: dict[str, Any] = {"promptTokenCount": prompt}
    if candidates:
        usage["candidatesTokenCount"] = candidates
    if thoughts:
        usage["thoughtsTokenCount"] = thoughts
    if cached:
        usage["cachedContentTokenCount"] = cached
    usage["totalTokenCount"] = prompt + candidates + thoughts
    usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": prompt}]
    if cached:
        usage["cacheTokensDetails"] = [{"modality": "TEXT", "tokenCount": cached}]
    return usage


class _Plan:
    """What one reply streams: lists of parts (one list per event), the ending, usage."""

    def __init__(self, reply: Reply, request: GeminiRequest, prompt: int, cached: int, signer: Signer) -> None:
        model = request.model
        self.finish = _finish(reply)
        self.reply = reply
        thinking = ""
        if request.thinks:
            thinking = default_thinking(request.conv) if reply.thinking is None else reply.thinking
        text_chunks = reply.text_chunks() if self.finish != "MALFORMED_FUNCTION_CALL" else []
        calls = list(reply.tool_calls) if self.finish in CONTENT_ENDINGS else []
        pieces: list[list[dict[str, Any]]] = []
        if thinking and request.include_thoughts:
            pieces.append([{"text": thinking, "thought": True}])
        pieces += [[{"text": chunk}] for chunk in text_chunks]
        signed = model.requires_signatures and request.thinks
        for number, call in enumerate(calls):
            call_id = call.id or f"call_emu_{new_response_id()[:16]}"
            part: dict[str, Any] = {"functionCall": {"id": call_id, "name": call.name, "args": call.input}}
            if signed and number == 0:
                part["thoughtSignature"] = signer.call_signature(model.id, call.name, call.input)
            pieces.append([part])
        if self.finish in CONTENT_ENDINGS and not any("text" in p[0] and not p[0].get("thought") for p in pieces):
            if not calls:
                pieces.append([{"text": ""}])
        if signed and not calls:
            text_parts = [p[0] for p in pieces if "text" in p[0] and not p[0].get("thought")]
            if text_parts:
                text_parts[-1]["thoughtSignature"] = signer.text_signature(model.id)
        self.pieces = pieces
        spoken = "".join(text_chunks) + "".join(json.dumps(c.input) for c in calls)
        candidates, thoughts = (approx_tokens(spoken) if pieces else 0), approx_tokens(thinking) if thinking else 0
        if reply.usage is not None:
            u = reply.usage
            prompt, cached = u.input_tokens, u.cache_read_tokens
            candidates, thoughts = max(0, u.output_tokens - u.thinking_tokens), u.thinking_tokens
        self.usage = _usage(prompt, cached, candidates, thoughts)
        self.interim = {"promptTokenCount": prompt, "totalTokenCount": prompt}


def _candidate(parts: list[dict[str, Any]] | None, finish: str | None, reply: Reply) -> dict[str, Any]:
    candidate: dict[str, Any] = {}
    if parts is not None:
        candidate["content"] = {"parts": parts, "role": "model"}
    if finish:
        candidate["finishReason"] = finish
        if finish == "SAFETY":
            candidate["safetyRatings"] = list(reply.safety_ratings or DEFAULT_RATINGS)
        if finish == "MALFORMED_FUNCTION_CALL":
            candidate["finishMessage"] = "Malformed function call: the model's call could not be parsed."
    candidate["index"] = 0
    return candidate


def _body(model: str, response_id: str, candidate: dict[str, Any] | None, usage: dict[str, Any],
          feedback: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if candidate is not None:
        body["candidates"] = [candidate]
    if feedback is not None:
        body["promptFeedback"] = feedback
    body.update({"usageMetadata": usage, "modelVersion": model, "responseId": response_id})
    return body


def _blocked(reply: Reply, model: str, prompt: int) -> dict[str, Any]:
    feedback: dict[str, Any] = {"blockReason": reply.block_reason}
    if reply.block_reason == "SAFETY" or reply.safety_ratings:
        feedback["safetyRatings"] = list(reply.safety_ratings or DEFAULT_RATINGS)
    return _body(model, new_response_id(), None, {"promptTokenCount": prompt, "totalTokenCount": prompt}, feedback)


def render_response(reply: Reply, request: GeminiRequest, prompt: int, cached: int, signer: Signer) -> dict[str, Any]:
    """The non-streaming response body."""
    if reply.block_reason:
        return _blocked(reply, request.model.id, prompt)
    plan = _Plan(reply, request, prompt, cached, signer)
    parts = [part for piece in plan.pieces for part in piece]
    merged: list[dict[str, Any]] = []
    for part in parts:  # one text part, as a non-streamed answer has, signature kept on it
        if merged and "text" in part and "text" in merged[-1] and part.get("thought") == merged[-1].get("thought"):
            merged[-1] = {**merged[-1], **part, "text": merged[-1]["text"] + part["text"]}
        else:
            merged.append(dict(part))
    content = merged if plan.finish in CONTENT_ENDINGS else None
    return _body(request.model.id, new_response_id(), _candidate(content, plan.finish, reply), plan.usage)


def _sse(body: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(body)}\r\n\r\n".encode()


def render_events(reply: Reply, request: GeminiRequest, prompt: int, cached: int,
                  signer: Signer) -> tuple[list[bytes], int]:
    """The SSE events of a streamed reply, and the index of the last (finishing) one.

    A cut stream stops before that index, so the SDK never sees a finishReason.
    """
    model = request.model.id
    if reply.block_reason:
        return [_sse(_blocked(reply, model, prompt))], 0
    plan = _Plan(reply, request, prompt, cached, signer)
    response_id = new_response_id()
    events = []
    content_end = plan.finish in CONTENT_ENDINGS
    for number, parts in enumerate(plan.pieces):
        last = content_end and number == len(plan.pieces) - 1
        candidate = _candidate(parts, plan.finish if last else None, reply)
        events.append(_sse(_body(model, response_id, candidate, plan.usage if last else plan.interim)))
    if not content_end:
        events.append(_sse(_body(model, response_id, _candidate(None, plan.finish, reply), plan.usage)))
    return events, len(events) - 1


def error_event(status: int, message: str | None = None) -> bytes:
    """An error delivered inside a stream: a data line holding Google's error body."""
    return _sse(error_body(status, message))


def malformed_event() -> bytes:
    return b"data: {\"candidates\": [{this is not json\r\n\r\n"
