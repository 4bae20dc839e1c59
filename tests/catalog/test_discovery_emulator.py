"""Discovery against the provider emulator's models endpoints (``GET /v1/models``,
``GET /v1beta/models``), through the real SDKs, and through a real daemon.

The emulator keeps its own table of models written from the providers' references,
so these tests also check that the built-in catalog and that table agree: every
catalog id is listed, and the limits and thinking the listing reports leave each
catalog entry as it is.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from duologue.daemon.catalog import Catalog
from duologue.daemon.discovery import reconcile
from duologue.daemon.emulator import Emulator
from duologue.daemon.providers.models_list import ListingError, list_models
from duologue.protocol import methods as m

SCRIPT = Path(sys.executable).with_name("duologue")


@pytest.mark.parametrize("provider", ["anthropic", "gemini"])
async def test_the_emulator_lists_every_catalog_id_and_agrees_with_the_catalog(emulator: Emulator, provider: str):
    listed = {x.id: x for x in await list_models(provider, emulator.api_keys[provider], emulator.url, 10.0)}
    catalog = Catalog()
    for mi in [*catalog.models, *catalog.legacy]:
        if mi.provider != provider:
            continue
        assert mi.id in listed, f"the emulator does not list {mi.id}"
        amended = reconcile(mi, listed[mi.id])
        assert amended.lifecycle in ("active", "deprecated"), mi.id
        assert (amended.context_window, amended.max_output_tokens) == (mi.context_window, mi.max_output_tokens)
        assert (amended.thinking, amended.thinking_control) == (mi.thinking, mi.thinking_control), mi.id
        assert amended.images == mi.images, mi.id


@pytest.mark.parametrize("provider", ["anthropic", "gemini"])
async def test_a_key_the_emulator_refuses_is_a_listing_error_without_the_key(emulator: Emulator, provider: str):
    bad = "invalid-key-0123456789abcdef"
    with pytest.raises(ListingError) as caught:
        await list_models(provider, bad, emulator.url, 10.0)
    assert provider in str(caught.value) and bad not in str(caught.value)


async def test_a_claude_model_listed_without_image_input_reads_no_images(emulator: Emulator):
    emulator.models.add(replace(emulator.models.claude["claude-sonnet-5-5"], images=False))
    listed = {x.id: x for x in await list_models("anthropic", emulator.api_keys["anthropic"], emulator.url, 10.0)}
    entry = Catalog().resolve("claude-sonnet-5-5")
    assert entry.images and reconcile(entry, listed[entry.id]).images is False


async def test_retired_models_are_listed_as_retired(emulator: Emulator):
    listed = {x.id: x for x in await list_models("anthropic", emulator.api_keys["anthropic"], emulator.url, 10.0)}
    retired = [x for x in listed.values() if x.lifecycle == "retired"]
    assert retired, "the emulator lists retired Claude models when asked for them"


async def wait_listed(client, timeout: float = 20.0) -> m.ModelsResult:
    async def poll() -> m.ModelsResult:
        while True:
            r = await client.list_models()
            if r.listings and all(x.fetched_at or x.error for x in r.listings):
                return r
            await asyncio.sleep(0.1)

    return await asyncio.wait_for(poll(), timeout)


async def test_a_daemon_with_keys_reads_both_models_endpoints_in_the_background_at_start(live):
    async with live.client("discovery") as c:
        r = await wait_listed(c)
    assert {x.provider for x in r.listings} == {"anthropic", "gemini"}
    assert all(x.fetched_at is not None and x.error is None and x.models > 0 for x in r.listings), r.listings
    assert all(mi.lifecycle == "active" for mi in r.models)


async def test_models_refresh_reads_the_emulators_endpoints_on_request(daemon):
    async with daemon.client("discovery") as c:
        before = await c.list_models()
        assert all(x.fetched_at is None for x in before.listings), "on the emulator nothing is read at start"
        after = await c.call("models/refresh", m.RefreshParams(provider="gemini"))
        by = {x.provider: x for x in after.listings}
        assert by["gemini"].fetched_at is not None and by["gemini"].error is None
        assert by["anthropic"].fetched_at is None
        assert [mi.id for mi in after.models] == [mi.id for mi in before.models]


def test_the_models_command_refreshes_and_reports_the_listings(daemon):
    r = subprocess.run([str(SCRIPT), "models", "--refresh"], env=daemon.env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert "anthropic: listed" in r.stdout and "gemini: listed" in r.stdout
    assert "claude-haiku-5-5" in r.stdout and "default (effort)" in r.stdout
