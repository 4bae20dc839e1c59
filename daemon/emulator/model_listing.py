"""The two models endpoints, paged the way each provider pages them.

Anthropic ``GET /v1/models`` (Models API reference): newest first, ``limit``
(default 20, 1 to 1000), ``after_id`` / ``before_id`` cursors, answered as
``{"data", "has_more", "first_id", "last_id"}``; ``GET /v1/models/{id}`` gives one
``ModelInfo`` or 404 ``not_found_error``. Retired models stay listed with
``lifecycle: "retired"`` (anthropic/types/model_info.py).

Google ``GET /v1beta/models`` (models.list reference): ``pageSize`` (default 50,
max 1000) and an opaque ``pageToken``, answered as ``{"models", "nextPageToken"}``;
``GET /v1beta/models/{id}`` gives one ``Model`` or 404 NOT_FOUND. Models that can
no longer be called are not listed.
"""

from __future__ import annotations

from typing import Any

from . import anthropic_wire, gemini_wire
from .models import ModelTable, claude_model_info, gemini_model_info


def _int(query: dict[str, list[str]], name: str, default: int, low: int, high: int) -> int:
    try:
        value = int((query.get(name) or [str(default)])[0])
    except ValueError:
        return default
    return max(low, min(high, value))


def claude_models_page(models: ModelTable, model_id: str | None,
                       query: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
    listing = models.claude_listing()
    if model_id is not None:
        for model in listing:
            if model.id == model_id:
                return 200, claude_model_info(model)
        return 404, anthropic_wire.error_body(404, f"model: {model_id}")
    ids = [m.id for m in listing]
    limit = _int(query, "limit", 20, 1, 1000)
    start, end = 0, len(ids)
    if after := (query.get("after_id") or [""])[0]:
        start = ids.index(after) + 1 if after in ids else len(ids)
    if before := (query.get("before_id") or [""])[0]:
        end = ids.index(before) if before in ids else 0
        start = max(start, end - limit)
    page = listing[start:min(end, start + limit)]
    has_more = (start + limit < end) if not (query.get("before_id") or [""])[0] else start > 0
    return 200, {"data": [claude_model_info(m) for m in page], "has_more": has_more,
                 "first_id": page[0].id if page else None, "last_id": page[-1].id if page else None}


def gemini_model_page(models: ModelTable, version: str, model_id: str | None,
                      query: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
    if model_id is not None:
        model = models.gemini_model(model_id)
        if model is None:
            return 404, gemini_wire.not_found_body(model_id, version)
        return 200, gemini_model_info(model)
    listing = models.gemini_listing()
    size = _int(query, "pageSize", 50, 1, 1000)
    token = (query.get("pageToken") or [""])[0]
    start = int(token.removeprefix("emu-page-")) if token.startswith("emu-page-") else 0
    page = listing[start:start + size]
    body: dict[str, Any] = {"models": [gemini_model_info(m) for m in page]}
    if start + size < len(listing):
        body["nextPageToken"] = f"emu-page-{start + size}"
    return 200, body
