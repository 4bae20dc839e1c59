"""The Gemini API as the emulator serves it: routes, key check, answers.

``POST /{version}/models/{id}:generateContent|streamGenerateContent`` and
``GET /{version}/models[/{id}]``. The key arrives in ``x-goog-api-key`` or the ``key``
query parameter; Google refuses a missing one with 403 and a wrong one with 400. The
request side is :mod:`gemini_wire`, the answer side :mod:`gemini_stream`, the models
pages :mod:`model_listing`; this module puts them on the server
(:class:`~.apis.ProviderApi`).
"""

from __future__ import annotations

import json
import re
from typing import Any

from . import gemini_stream, gemini_wire
from .apis import Exchange, Query
from .default_reply import reply_for
from .failures import answers_with_error, shape
from .model_listing import gemini_model_page
from .script import ReceivedRequest

GENERATE_PATH = re.compile(r"^/(v1beta|v1alpha|v1)/models/([^/:]+):(generateContent|streamGenerateContent)$")
MODELS_PATH = re.compile(r"^/(v1beta|v1alpha|v1)/models(?:/([^/:]+))?$")
NOT_FOUND = {"error": {"code": 404, "message": "Not found.", "status": "NOT_FOUND"}}


class GeminiApi:
    name = "gemini"
    key_prefix = "emu-gm-"
    outcomes = frozenset({"block_reason", "finish_reason", "safety_ratings", "retry_delay"})

    def routes(self, method: str, path: str) -> bool:
        pattern = GENERATE_PATH if method == "POST" else MODELS_PATH
        return pattern.match(path) is not None

    def presented_key(self, headers: Any, query: Query) -> str | None:
        return headers.get("x-goog-api-key") or (query.get("key") or [None])[0]

    def refusal(self, headers: Any, query: Query, key: str) -> tuple[int, dict[str, Any]] | None:
        body = gemini_wire.check_auth(headers, query, key)
        return None if body is None else (body["error"]["code"], body)

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        return gemini_wire.error_body(status, message)

    def get(self, exchange: Exchange, path: str, query: Query) -> None:
        listing = MODELS_PATH.match(path)
        if listing is None:
            exchange.send_json(404, NOT_FOUND)
            return
        exchange.send_json(*gemini_model_page(exchange.models, listing.group(1), listing.group(2), query))

    def post(self, exchange: Exchange, path: str, query: Query, raw: bytes) -> None:
        route = GENERATE_PATH.match(path)
        if route is None:
            exchange.send_json(404, NOT_FOUND)
            return
        version, model_id, method = route.groups()
        wire = gemini_wire
        body = exchange.decode(raw)
        if body is None:
            exchange.send_json(400, wire.error_body(400, "Invalid JSON payload received."))
            return
        stream = method == "streamGenerateContent"
        try:
            request = wire.parse_request(model_id, stream, body, version=version, models=exchange.models,
                                         signer=exchange.signer)
        except wire.WireError as exc:
            exchange.send_json(exc.status, wire.error_body(exc.status, exc.message))
            return
        received = ReceivedRequest(self.name, model_id, path, body, stream)
        step, stopping = exchange.take_step(received)
        if stopping:
            return
        if answers_with_error(step, stream):
            exchange.send_failure(step, wire.error_body(step.status, step.message, retry_delay=step.retry_delay,
                                                        model=model_id))
            return
        prompt, cached = exchange.cache.bill_gemini(request.model.id, request.segments, request.model.min_cache_tokens)
        received.billed.update(prompt_tokens=prompt, input_tokens=prompt - cached, cache_read_tokens=cached,
                               cache_write_5m_tokens=0, cache_write_1h_tokens=0)
        reply = reply_for(step, request.conv)
        if not stream:
            exchange.send_json(200, gemini_stream.render_response(reply, request, prompt, cached, exchange.signer))
            return
        events, closing_at = gemini_stream.render_events(reply, request, prompt, cached, exchange.signer)
        if (query.get("alt") or [""])[0] != "sse":  # a stream asked for without alt=sse: a JSON array
            exchange.send_json(200, [json.loads(e.decode().removeprefix("data: ")) for e in events])
            return
        exchange.send_shaped(shape(step, events, closing_at, gemini_stream), reply.chunk_delay, b"")


API = GeminiApi()
