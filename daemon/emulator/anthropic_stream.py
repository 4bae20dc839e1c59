"""The Anthropic Messages API, answer side: the message JSON and its SSE stream.

Shapes follow the Messages API reference and "Streaming Messages":

- every SSE event has an ``event:`` line (the SDK ignores events without one);
  ``message_start``, ``ping``, then per content block ``content_block_start`` /
  deltas / ``content_block_stop``, then ``message_delta`` (stop_reason,
  stop_details, cumulative usage) and ``message_stop``;
- a thinking block starts as ``{"type": "thinking", "thinking": "", "signature": ""}``,
  streams ``thinking_delta`` events and gets its ``signature_delta`` just before its
  ``content_block_stop`` (anthropic/types/signature_delta.py); under
  ``display: "omitted"`` its text is empty but it is still signed;
  ``redacted_thinking`` arrives whole in its ``content_block_start``;
- usage as billed: ``input_tokens`` (after the last cache breakpoint),
  ``cache_creation_input_tokens`` with its ``cache_creation`` 5m / 1h split,
  ``cache_read_input_tokens``, ``output_tokens`` (thinking included, with
  ``output_tokens_details.thinking_tokens``), ``service_tier: "standard"``;
- a refusal ends with ``stop_reason: "refusal"`` and
  ``stop_details: {"type": "refusal", "category", "explanation"}`` in
  ``message_delta.delta`` (anthropic/types/raw_message_delta_event.py).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from .anthropic_wire import ClaudeRequest, error_body
from .caching import ClaudeBill
from .default_reply import default_thinking
from .script import Reply, approx_tokens, split_words
from .signing import Signer


@dataclass
class _Block:
    """One content block: how it starts, its deltas, and its final form."""

    start: dict[str, Any]
    deltas: list[dict[str, Any]] = field(default_factory=list)
    final: dict[str, Any] = field(default_factory=dict)


def _thinking_block(text: str, shown: bool, model: str, signer: Signer) -> _Block:
    visible = text if shown else ""
    signature = signer.thinking_signature(model, visible)
    deltas: list[dict[str, Any]] = [{"type": "thinking_delta", "thinking": piece} for piece in split_words(visible)]
    deltas.append({"type": "signature_delta", "signature": signature})
    return _Block({"type": "thinking", "thinking": "", "signature": ""}, deltas,
                  {"type": "thinking", "thinking": visible, "signature": signature})


def _tool_id(call_id: str) -> str:
    return call_id or f"toolu_emu_{uuid.uuid4().hex[:20]}"


def _plan(reply: Reply, request: ClaudeRequest, signer: Signer) -> tuple[list[_Block], int]:
    """The reply's content blocks and the thinking tokens they cost."""
    model = request.model
    blocks: list[_Block] = []
    thinking_tokens = 0
    summarized = request.display == "summarized"
    if request.thinking == "up_front":
        if reply.redacted_thinking:
            data = signer.redacted_data(model.id)
            blocks.append(_Block({"type": "redacted_thinking", "data": data}, [],
                                 {"type": "redacted_thinking", "data": data}))
        text = default_thinking(request.conv) if reply.thinking is None else reply.thinking
        if text:
            blocks.append(_thinking_block(text, summarized, model.id, signer))
            thinking_tokens += approx_tokens(text)
    chunks = reply.text_chunks()
    notes = model.notes_in_thinking if reply.text_in_thinking is None else reply.text_in_thinking
    if chunks and reply.tool_calls and notes:
        note = "".join(chunks)
        blocks.append(_thinking_block(note, summarized or request.thinking == "between_tools", model.id, signer))
    elif chunks:
        blocks.append(_Block({"type": "text", "text": ""}, [{"type": "text_delta", "text": c} for c in chunks],
                             {"type": "text", "text": "".join(chunks)}))
    for call in reply.tool_calls:
        tool = {"type": "tool_use", "id": _tool_id(call.id), "name": call.name, "input": call.input}
        encoded = json.dumps(call.input)
        pieces = [encoded[i:i + 16] for i in range(0, len(encoded), 16)]
        blocks.append(_Block(dict(tool, input={}), [{"type": "input_json_delta", "partial_json": p} for p in pieces],
                             tool))
    return blocks, thinking_tokens


@dataclass
class _Answer:
    blocks: list[_Block]
    bill: ClaudeBill
    output_tokens: int
    thinking_tokens: int
    stop_reason: str
    stop_details: dict[str, Any] | None


def _answer(reply: Reply, request: ClaudeRequest, bill: ClaudeBill, signer: Signer) -> _Answer:
    blocks, thinking_tokens = _plan(reply, request, signer)
    spoken = "".join(reply.text_chunks()) + "".join(json.dumps(c.input) for c in reply.tool_calls)
    output = approx_tokens(spoken) + thinking_tokens
    if reply.usage is not None:
        u = reply.usage
        bill = ClaudeBill(u.input_tokens, u.cache_read_tokens, u.cache_write_5m_tokens, u.cache_write_1h_tokens)
        output, thinking_tokens = u.output_tokens, u.thinking_tokens
    details = None
    if reply.refusal is not None:
        details = {"type": "refusal", "category": reply.refusal[0], "explanation": reply.refusal[1]}
    return _Answer(blocks, bill, output, thinking_tokens, reply.resolved_stop_reason(), details)


def _input_usage(bill: ClaudeBill) -> dict[str, Any]:
    return {"input_tokens": bill.input_tokens, "cache_creation_input_tokens": bill.cache_creation,
            "cache_read_input_tokens": bill.cache_read}


def _usage(answer: _Answer, *, final: bool) -> dict[str, Any]:
    """A message's ``usage``: complete when final, with a placeholder output count in
    ``message_start`` (the real stream sends a small number there too)."""
    usage = _input_usage(answer.bill)
    usage["cache_creation"] = {"ephemeral_5m_input_tokens": answer.bill.cache_write_5m,
                               "ephemeral_1h_input_tokens": answer.bill.cache_write_1h}
    usage["output_tokens"] = answer.output_tokens if final else 1
    if final and answer.thinking_tokens:
        usage["output_tokens_details"] = {"thinking_tokens": answer.thinking_tokens}
    usage["service_tier"] = "standard"
    return usage


def _message(answer: _Answer, model: str, *, final: bool) -> dict[str, Any]:
    return {
        "id": f"msg_emu_{uuid.uuid4().hex[:20]}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [b.final for b in answer.blocks] if final else [],
        "stop_reason": answer.stop_reason if final else None,
        "stop_sequence": None,
        "stop_details": answer.stop_details if final else None,
        "usage": _usage(answer, final=final),
    }


def render_message(reply: Reply, request: ClaudeRequest, bill: ClaudeBill, signer: Signer) -> dict[str, Any]:
    """The non-streaming response body."""
    return _message(_answer(reply, request, bill, signer), request.model.id, final=True)


def _event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


def render_events(reply: Reply, request: ClaudeRequest, bill: ClaudeBill, signer: Signer) -> tuple[list[bytes], int]:
    """The SSE events of a streamed reply, and how many precede the closing ones.

    The second value is the index of ``message_delta``: a cut stream never gets
    that far, which is what a dropped connection looks like to the SDK.
    """
    answer = _answer(reply, request, bill, signer)
    events = [_event("message_start", {"type": "message_start",
                                       "message": _message(answer, request.model.id, final=False)}),
              _event("ping", {"type": "ping"})]
    for index, block in enumerate(answer.blocks):
        events.append(_event("content_block_start", {"type": "content_block_start", "index": index,
                                                     "content_block": block.start}))
        for delta in block.deltas:
            events.append(_event("content_block_delta", {"type": "content_block_delta", "index": index,
                                                         "delta": delta}))
        events.append(_event("content_block_stop", {"type": "content_block_stop", "index": index}))
    closing_at = len(events)
    usage = _input_usage(answer.bill)
    usage["output_tokens"] = answer.output_tokens
    if answer.thinking_tokens:
        usage["output_tokens_details"] = {"thinking_tokens": answer.thinking_tokens}
    events.append(_event("message_delta", {
        "type": "message_delta",
        "delta": {"stop_reason": answer.stop_reason, "stop_sequence": None, "stop_details": answer.stop_details},
        "usage": usage,
    }))
    events.append(_event("message_stop", {"type": "message_stop"}))
    return events, closing_at


def ping_event() -> bytes:
    return _event("ping", {"type": "ping"})


def error_event(status: int, message: str | None = None) -> bytes:
    """An error delivered inside a stream, as the API does for mid-stream overloads."""
    body = error_body(status, message)
    body.pop("request_id", None)
    return _event("error", body)


def malformed_event() -> bytes:
    return b"event: content_block_delta\ndata: {this is not json\n\n"
