"""The Anthropic API as the emulator serves it: routes, key check, answers.

``POST /v1/messages`` (streamed or not) and ``GET /v1/models[/{id}]``. The key arrives
in ``x-api-key`` (or as a bearer token) and a wrong one is Anthropic's 401. The
request side is :mod:`anthropic_wire`, the answer side :mod:`anthropic_stream`, the
models pages :mod:`model_listing`; this module puts them on the server
(:class:`~.apis.ProviderApi`).
"""

from __future__ import annotations

import re
from typing import Any

from . import anthropic_stream, anthropic_wire
from .apis import Exchange, Query
from .default_reply import reply_for
from .failures import answers_with_error, shape
from .model_listing import claude_models_page
from .script import ReceivedRequest

MESSAGES_PATH = "/v1/messages"
MODELS_PATH = re.compile(r"^/v1/models(?:/([^/:]+))?$")


class AnthropicApi:
    """The Messages API under a provider's name. Another provider that speaks it (a
    gateway, a proxy) is played by the same code under its own name and keys."""

    outcomes = frozenset({"refusal", "redacted_thinking"})

    def __init__(self, name: str = "anthropic", key_prefix: str = "sk-ant-emu-") -> None:
        self.name = name
        self.key_prefix = key_prefix

    def routes(self, method: str, path: str) -> bool:
        return path == MESSAGES_PATH if method == "POST" else MODELS_PATH.match(path) is not None

    def presented_key(self, headers: Any, query: Query) -> str | None:
        bearer = headers.get("authorization", "")
        return headers.get("x-api-key") or (bearer[7:].strip() if bearer.lower().startswith("bearer ") else None)

    def refusal(self, headers: Any, query: Query, key: str) -> tuple[int, dict[str, Any]] | None:
        problem = anthropic_wire.check_auth(headers, key)
        return None if problem is None else (problem[0], anthropic_wire.error_body(*problem))

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        return anthropic_wire.error_body(status, message)

    def get(self, exchange: Exchange, path: str, query: Query) -> None:
        listing = MODELS_PATH.match(path)
        if listing is None:
            exchange.send_json(404, anthropic_wire.error_body(404, f"Not found: {path}"))
            return
        exchange.send_json(*claude_models_page(exchange.models, listing.group(1), query))

    def post(self, exchange: Exchange, path: str, query: Query, raw: bytes) -> None:
        if path != MESSAGES_PATH:
            exchange.send_json(404, anthropic_wire.error_body(404, f"Not found: {path}"))
            return
        wire = anthropic_wire
        body = exchange.decode(raw)
        if body is None:
            exchange.send_json(400, wire.error_body(400, "There was an error parsing the body: not a JSON object"))
            return
        try:
            request = wire.parse_request(body, exchange.models, exchange.signer)
        except wire.WireError as exc:
            exchange.send_json(exc.status, wire.error_body(exc.status, exc.message))
            return
        received = ReceivedRequest(self.name, request.model.id, path, body, request.stream)
        step, stopping = exchange.take_step(received)
        if stopping:
            return
        if answers_with_error(step, request.stream):
            exchange.send_failure(step, wire.error_body(step.status, step.message))
            return
        bill = exchange.cache.bill_claude(request.model.id, request.segments, request.breakpoints,
                                          request.model.min_cache_tokens)
        received.billed.update(prompt_tokens=bill.input_tokens + bill.cache_read + bill.cache_creation,
                               input_tokens=bill.input_tokens, cache_read_tokens=bill.cache_read,
                               cache_write_5m_tokens=bill.cache_write_5m, cache_write_1h_tokens=bill.cache_write_1h)
        reply = reply_for(step, request.conv)
        if not request.stream:
            exchange.send_json(200, anthropic_stream.render_message(reply, request, bill, exchange.signer))
            return
        events, closing_at = anthropic_stream.render_events(reply, request, bill, exchange.signer)
        exchange.send_shaped(shape(step, events, closing_at, anthropic_stream), reply.chunk_delay,
                             anthropic_stream.ping_event())


API = AnthropicApi()
