"""Model discovery: listings read through the real SDKs, kept in the store with a TTL,
and the catalog amended from them; failures leave the catalog as it was."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec
import pytest

from duologue.daemon.catalog import Catalog
from duologue.daemon.discovery import Discovery, Listing, ListedModel, reconcile
from duologue.daemon.providers.models_list import ListingError, list_models
from duologue.daemon.store import Store

KEY = "sk-ant-test-0123456789abcdefghijklmnop"
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)


# --- a loopback models endpoint, written from the two API references -----------------


class _Endpoint(BaseHTTPRequestHandler):
    routes: dict[str, tuple[int, Any]] = {}
    seen: list[str] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        self.seen.append(self.path)
        status, body = self.routes.get(urlsplit(self.path).path, (404, {"error": {"message": "Not found"}}))
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def endpoint() -> Iterator[tuple[str, type[_Endpoint]]]:
    handler = type("Handler", (_Endpoint,), {"routes": {}, "seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


def claude_info(id_: str, *, lifecycle: str = "active", types: tuple[str, ...] = ("adaptive",),
                effort: bool = True, max_input: int = 1_000_000, max_tokens: int = 128_000,
                retires_at: str | None = None) -> dict[str, Any]:
    """A ``ModelInfo`` of ``GET /v1/models`` (anthropic/types/model_info.py)."""
    def yes(flag: bool) -> dict[str, bool]:
        return {"supported": flag}

    return {
        "type": "model", "id": id_, "display_name": id_.title(), "created_at": "2026-09-01T00:00:00Z",
        "lifecycle": lifecycle, "retires_at": retires_at, "max_input_tokens": max_input, "max_tokens": max_tokens,
        "capabilities": {
            "batch": yes(True), "citations": yes(True), "code_execution": yes(True),
            "context_management": {"supported": True}, "image_input": yes(True), "pdf_input": yes(True),
            "server_tools": {"supported": True}, "structured_outputs": yes(True),
            "effort": {"supported": effort, **{k: yes(effort) for k in ("low", "medium", "high", "max")}},
            "thinking": {"supported": bool(types), "types": {
                k: yes(k in types) for k in ("adaptive", "between_tools", "disabled", "enabled")}},
        },
    }


def claude_page(*infos: dict[str, Any]) -> dict[str, Any]:
    return {"data": list(infos), "has_more": False,
            "first_id": infos[0]["id"] if infos else None, "last_id": infos[-1]["id"] if infos else None}


def gemini_info(id_: str, *, thinking: bool = True, input_limit: int = 1_048_576) -> dict[str, Any]:
    """A ``Model`` of ``GET /v1beta/models`` (camelCase, as the REST reference shows it)."""
    return {"name": f"models/{id_}", "displayName": id_, "inputTokenLimit": input_limit,
            "outputTokenLimit": 65_536, "supportedGenerationMethods": ["generateContent"], "thinking": thinking}


# --- the SDK calls --------------------------------------------------------------------


async def test_anthropic_listing_reads_limits_thinking_types_and_lifecycle_through_the_sdk(endpoint):
    url, handler = endpoint
    handler.routes["/v1/models"] = (200, claude_page(
        claude_info("claude-sonnet-5-5", types=("adaptive", "between_tools")),
        claude_info("claude-haiku-4-5", types=("enabled", "disabled"), effort=False, max_input=200_000,
                    max_tokens=64_000, lifecycle="deprecated", retires_at="2027-10-15T00:00:00Z"),
        claude_info("claude-opus-4-20250514", lifecycle="retired"),
    ))
    listed = {m.id: m for m in await list_models("anthropic", KEY, url, 5.0)}
    assert set(listed) == {"claude-sonnet-5-5", "claude-haiku-4-5", "claude-opus-4-20250514"}
    haiku = listed["claude-haiku-4-5"]
    assert (haiku.max_input_tokens, haiku.max_output_tokens) == (200_000, 64_000)
    assert haiku.thinking is True and haiku.thinking_types == ["enabled", "disabled"] and haiku.effort is False
    assert haiku.lifecycle == "deprecated" and haiku.retires_at == datetime(2027, 10, 15, tzinfo=timezone.utc)
    assert listed["claude-sonnet-5-5"].thinking_types == ["adaptive", "between_tools"]
    assert listed["claude-opus-4-20250514"].lifecycle == "retired"
    assert "lifecycle" in handler.seen[0], "retired models are listed only when asked for"


async def test_gemini_listing_strips_the_models_prefix_and_reads_limits_through_the_sdk(endpoint):
    url, handler = endpoint
    handler.routes["/v1beta/models"] = (200, {"models": [gemini_info("gemini-3.8-flash"),
                                                         gemini_info("gemini-2.0-flash", thinking=False)]})
    listed = {m.id: m for m in await list_models("gemini", KEY, url, 5.0)}
    assert listed["gemini-3.8-flash"].max_input_tokens == 1_048_576
    assert listed["gemini-3.8-flash"].thinking is True and listed["gemini-2.0-flash"].thinking is False
    assert listed["gemini-3.8-flash"].thinking_types is None


@pytest.mark.parametrize("provider, path", [("anthropic", "/v1/models"), ("gemini", "/v1beta/models")])
async def test_a_refused_key_is_a_listing_error_naming_the_status_but_never_the_key(endpoint, provider, path):
    url, handler = endpoint
    handler.routes[path] = (401, {"type": "error", "error": {
        "type": "authentication_error", "code": 401, "status": "UNAUTHENTICATED",
        "message": f"invalid x-api-key {KEY} (ends {KEY[-10:]})"}})
    with pytest.raises(ListingError) as caught:
        await list_models(provider, KEY, url, 5.0)
    message = str(caught.value)
    assert provider in message and "401" in message
    assert KEY not in message and KEY[-10:] not in message


async def test_an_endpoint_that_does_not_answer_is_a_listing_error():
    with pytest.raises(ListingError, match="anthropic models endpoint"):
        await list_models("anthropic", KEY, "http://127.0.0.1:9", 2.0)


# --- reconciling ----------------------------------------------------------------------


def entry(id_: str):
    return Catalog().resolve(id_)


def test_an_id_the_provider_does_not_list_is_unlisted_but_still_offered():
    mi = reconcile(entry("claude-opus-5-5"), None)
    assert mi.lifecycle == "unlisted" and mi.available


def test_a_retired_model_is_unavailable_and_a_deprecated_one_is_kept_usable():
    assert not reconcile(entry("claude-opus-5-5"), ListedModel(id="claude-opus-5-5", lifecycle="retired")).available
    mi = reconcile(entry("claude-opus-5-5"), ListedModel(id="claude-opus-5-5", lifecycle="deprecated"))
    assert mi.lifecycle == "deprecated" and mi.available


def test_limits_come_from_the_listing_and_missing_ones_keep_the_catalogs():
    mi = reconcile(entry("gemini-3.8-flash"), ListedModel(id="gemini-3.8-flash", max_input_tokens=2_000_000))
    assert (mi.context_window, mi.max_output_tokens) == (2_000_000, 65_536)


@pytest.mark.parametrize("id_, listed, expected", [
    # Fable / Opus 5.5: adaptive only, no way to turn it off
    ("claude-sonnet-5-5", ListedModel(id="x", thinking=True, thinking_types=["adaptive"], effort=True),
     ("always", "effort")),
    # Sonnet 5.5 turns up-front thinking off with between_tools: still "default"
    ("claude-sonnet-5-5", ListedModel(id="x", thinking=True, thinking_types=["adaptive", "between_tools"],
                                      effort=True), ("default", "effort")),
    # "always" in the catalog, but the listing accepts "disabled": it can be turned off
    ("claude-opus-5-5", ListedModel(id="x", thinking=True, thinking_types=["adaptive", "disabled"], effort=True),
     ("default", "effort")),
    # extended thinking only
    ("claude-haiku-4-5", ListedModel(id="x", thinking=True, thinking_types=["enabled", "disabled"], effort=False),
     ("optional", "budget")),
    ("claude-haiku-5-5", ListedModel(id="x", thinking=False), ("none", "none")),
    # Gemini lists only whether a model thinks
    ("gemini-3.5-flash-lite", ListedModel(id="x", thinking=True), ("optional", "level")),
    ("gemini-3.8-flash", ListedModel(id="x"), ("always", "level")),
])
def test_thinking_support_follows_the_listing(id_, listed, expected):
    mi = reconcile(entry(id_), msgspec.structs.replace(listed, id=id_))
    assert (mi.thinking, mi.thinking_control) == expected


# --- discovery with the store -----------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


class FakeLister:
    def __init__(self, listings: dict[str, list[ListedModel]]) -> None:
        self.listings = listings
        self.calls: list[str] = []
        self.fail: Exception | None = None
        self.delay = 0.0

    async def __call__(self, provider: str) -> list[ListedModel]:
        self.calls.append(provider)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail is not None:
            raise self.fail
        return self.listings[provider]


ANTHROPIC_LISTING = [
    ListedModel(id="claude-fable-5-2", thinking=True, thinking_types=["adaptive"], effort=True),
    ListedModel(id="claude-opus-5-5", thinking=True, thinking_types=["adaptive"], effort=True,
                lifecycle="deprecated", retires_at=datetime(2027, 9, 22, tzinfo=timezone.utc)),
    ListedModel(id="claude-sonnet-5-5", thinking=True, thinking_types=["adaptive", "between_tools"], effort=True,
                max_input_tokens=900_000),
    ListedModel(id="claude-haiku-4-5", lifecycle="retired"),
]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "store")
    try:
        yield s
    finally:
        s.close()


def make(store: Store, lister: FakeLister, clock: Clock, catalog: Catalog | None = None, **kw) -> Discovery:
    return Discovery(catalog or Catalog(), store, lister, ["anthropic"], clock=clock, **kw)


async def test_a_listing_amends_the_catalog_and_is_kept_in_the_store(store: Store):
    lister, clock = FakeLister({"anthropic": ANTHROPIC_LISTING}), Clock()
    d = make(store, lister, clock)
    await d.startup()
    c = d.catalog
    assert c.resolve("claude-sonnet-5-5").context_window == 900_000
    assert c.resolve("claude-haiku-5-5").lifecycle == "unlisted"
    assert c.resolve("claude-haiku-4-5").lifecycle == "retired" and not c.resolve("claude-haiku-4-5").available
    assert c.resolve("gemini-3.8-flash").lifecycle == "active", "another provider's entries are untouched"
    result = d.result(c.models, c.default_model)
    assert result.retires_at == {"claude-opus-5-5": datetime(2027, 9, 22, tzinfo=timezone.utc)}
    assert [(x.provider, x.fetched_at, x.models, x.error) for x in result.listings] == [("anthropic", T0, 4, None)]
    kept = msgspec.msgpack.decode(store.model_list("anthropic"), type=Listing)
    assert kept.fetched_at == T0 and [m.id for m in kept.models] == [m.id for m in ANTHROPIC_LISTING]


async def test_a_restart_within_the_ttl_uses_the_kept_listing_without_asking(store: Store):
    lister, clock = FakeLister({"anthropic": ANTHROPIC_LISTING}), Clock()
    await make(store, lister, clock, ttl_s=3600).startup()
    clock.now = T0 + timedelta(minutes=59)
    again = make(store, lister, clock, ttl_s=3600)
    await again.startup()
    assert lister.calls == ["anthropic"]
    assert again.catalog.resolve("claude-haiku-4-5").lifecycle == "retired"


async def test_a_stale_listing_is_applied_at_once_and_fetched_again(store: Store):
    lister, clock = FakeLister({"anthropic": ANTHROPIC_LISTING}), Clock()
    await make(store, lister, clock, ttl_s=3600).startup()
    clock.now = T0 + timedelta(hours=2)
    lister.listings["anthropic"] = [*ANTHROPIC_LISTING, ListedModel(id="claude-haiku-5-5")]
    again = make(store, lister, clock, ttl_s=3600)
    await again.startup()
    assert lister.calls == ["anthropic", "anthropic"]
    assert again.catalog.resolve("claude-haiku-5-5").lifecycle == "active", "reconciled from the catalog's own entry"
    assert again.listing("anthropic").fetched_at == clock.now


async def test_a_failed_fetch_keeps_the_catalog_and_the_kept_listing_and_is_reported(store: Store, caplog):
    lister, clock = FakeLister({"anthropic": ANTHROPIC_LISTING}), Clock()
    await make(store, lister, clock, ttl_s=60).startup()
    clock.now = T0 + timedelta(hours=1)
    lister.fail = ListingError("anthropic models endpoint: HTTP 500: overloaded")
    again = make(store, lister, clock, ttl_s=60)
    with caplog.at_level(logging.WARNING, logger="duologue.daemon.discovery"):
        await again.startup()
    assert again.catalog.resolve("claude-haiku-4-5").lifecycle == "retired", "the kept listing still applies"
    state = again.listing("anthropic")
    assert state.fetched_at == T0 and "HTTP 500" in (state.error or "")
    assert "HTTP 500" in caplog.text


async def test_a_first_failure_leaves_the_built_in_catalog_as_it_is(store: Store):
    lister = FakeLister({})
    lister.fail = ListingError("anthropic models endpoint: HTTP 401: invalid x-api-key")
    d = make(store, lister, Clock())
    await d.startup()
    assert [mi for mi in d.catalog.models] == Catalog().models
    assert store.model_list("anthropic") is None


async def test_an_endpoint_slower_than_the_timeout_is_given_up(store: Store):
    lister = FakeLister({"anthropic": ANTHROPIC_LISTING})
    lister.delay = 5.0
    d = make(store, lister, Clock(), timeout_s=0.1)
    await asyncio.wait_for(d.startup(), 2.0)
    assert "did not answer in 0.1s" in (d.listing("anthropic").error or "")
    assert d.catalog.resolve("claude-haiku-4-5").lifecycle == "active"


async def test_an_unreadable_kept_listing_is_fetched_again(store: Store):
    store.put_model_list("anthropic", b"\xc1 not msgpack")
    lister = FakeLister({"anthropic": ANTHROPIC_LISTING})
    d = make(store, lister, Clock())
    await d.startup()
    assert lister.calls == ["anthropic"] and d.catalog.resolve("claude-haiku-4-5").lifecycle == "retired"


async def test_refresh_fetches_even_a_fresh_listing_and_without_startup_fetch_nothing_is_asked(store: Store):
    lister, clock = FakeLister({"anthropic": ANTHROPIC_LISTING}), Clock()
    d = make(store, lister, clock, fetch_at_startup=False)
    await d.startup()
    assert lister.calls == []
    await d.refresh_all()
    await d.refresh_all("anthropic")
    await d.refresh_all("gemini")  # not configured here: nothing to do
    assert lister.calls == ["anthropic", "anthropic"]


async def test_stop_cancels_a_startup_still_waiting_for_an_endpoint(store: Store):
    lister = FakeLister({"anthropic": ANTHROPIC_LISTING})
    lister.delay = 30.0
    d = make(store, lister, Clock())
    async with asyncio.TaskGroup() as tasks:
        d.start(tasks.create_task)
        await asyncio.sleep(0.05)
        d.stop()
    assert d.listing("anthropic").fetched_at is None


# --- the store's cache ------------------------------------------------------------------


def test_the_store_keeps_one_listing_per_provider_across_a_reopen(tmp_path: Path):
    s = Store(tmp_path / "store")
    assert s.model_list("anthropic") is None
    s.put_model_list("anthropic", b"one")
    s.put_model_list("anthropic", b"two")
    s.put_model_list("gemini", b"three")
    s.close()
    s = Store(tmp_path / "store")
    try:
        assert (s.model_list("anthropic"), s.model_list("gemini")) == (b"two", b"three")
        assert s.count_sessions() == 0, "the cache is its own database"
    finally:
        s.close()
