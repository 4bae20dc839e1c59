"""Every failure the emulator can script maps to the right ProviderError, for both SDKs."""

from __future__ import annotations

import time

import pytest
from providers.provider_helpers import API_KEY, BOTH, INVALID_KEY, MODELS, collect, finished, request

from duologue.daemon.emulator import Failure, Reply
from duologue.daemon.providers import ProviderError


async def _fail(name, make_provider, message, **provider_kw) -> ProviderError:
    provider = make_provider(name, **provider_kw)
    with pytest.raises(ProviderError) as caught:
        await collect(provider.stream(request(MODELS[name], [message("user", "hi")])))
    return caught.value


@pytest.mark.parametrize("name", BOTH)
async def test_429_maps_to_rate_limited_with_retry_after(name, emu, make_provider, message):
    emu.script(name, Failure(status=429, retry_after=7))
    error = await _fail(name, make_provider, message)
    assert (error.kind, error.status, error.retryable, error.retry_after) == ("rate_limited", 429, True, 7.0)
    assert error.provider == name


@pytest.mark.parametrize("name", BOTH)
async def test_500_maps_to_retryable_server_error(name, emu, make_provider, message):
    emu.script(name, Failure(status=500))
    error = await _fail(name, make_provider, message)
    assert (error.kind, error.status, error.retryable) == ("server", 500, True)


@pytest.mark.parametrize("name", BOTH)
async def test_529_maps_to_overloaded(name, emu, make_provider, message):
    emu.script(name, Failure(status=529))
    error = await _fail(name, make_provider, message)
    assert (error.kind, error.status, error.retryable) == ("overloaded", 529, True)


async def test_gemini_503_unavailable_maps_to_overloaded(emu, make_provider, message):
    emu.script("gemini", Failure(status=503))
    error = await _fail("gemini", make_provider, message)
    assert (error.kind, error.status) == ("overloaded", 503)


@pytest.mark.parametrize("name", BOTH)
async def test_400_maps_to_non_retryable_bad_request(name, emu, make_provider, message):
    emu.script(name, Failure(status=400, message="messages: roles must alternate"))
    error = await _fail(name, make_provider, message)
    assert (error.kind, error.retryable) == ("bad_request", False)
    assert "roles must alternate" in error.provider_message


@pytest.mark.parametrize("name", BOTH)
async def test_stream_cut_midway_maps_to_stream_cut_after_partial_text(name, emu, make_provider, message):
    emu.script(name, Failure(cut_after=4, reply=Reply(text="one two three four five six seven")))
    provider = make_provider(name)
    seen = []
    with pytest.raises(ProviderError) as caught:
        async for event in provider.stream(request(MODELS[name], [message("user", "hi")])):
            seen.append(event)
    assert (caught.value.kind, caught.value.retryable) == ("stream_cut", True)
    assert seen, "the text that arrived before the cut was delivered"


@pytest.mark.parametrize("name", BOTH)
async def test_malformed_sse_data_maps_to_a_provider_error(name, emu, make_provider, message):
    emu.script(name, Failure(malformed_after=3))
    error = await _fail(name, make_provider, message)
    assert error.kind == "server" and error.retryable


@pytest.mark.parametrize("name", BOTH)
async def test_slow_server_maps_to_timeout(name, emu, make_provider, message):
    emu.script(name, Failure(delay=5))
    started = time.monotonic()
    error = await _fail(name, make_provider, message, timeout=0.3)
    assert (error.kind, error.retryable) == ("timeout", True)
    assert time.monotonic() - started < 3


@pytest.mark.parametrize("name", BOTH)
async def test_invalid_key_maps_to_auth_without_leaking_the_key(name, emu, make_provider, message):
    error = await _fail(name, make_provider, message, api_key=INVALID_KEY)
    assert (error.kind, error.retryable) == ("auth", False)
    assert error.status in (400, 401, 403)
    for text in (error.provider_message, str(error), repr(error.args)):
        assert INVALID_KEY not in text and "SECRET" not in text


@pytest.mark.parametrize("name", BOTH)
async def test_key_is_scrubbed_even_if_the_server_echoes_it(name, emu, make_provider, message):
    emu.script(name, Failure(status=400, message=f"bad key {API_KEY} given"))
    error = await _fail(name, make_provider, message)
    assert API_KEY not in str(error) and "[redacted]" in error.provider_message


async def test_anthropic_sdk_retries_within_the_retry_after_ceiling(emu, make_provider, message):
    emu.script("anthropic", Failure(status=429, retry_after=0.01), Failure(status=529, retry_after=0.01))
    provider = make_provider("anthropic", retries=2, max_retry_after=1)
    events = await collect(provider.stream(request(MODELS["anthropic"], [message("user", "hi")])))
    assert finished(events).stop_reason == "end_turn"
    assert len(emu.received) == 3


async def test_anthropic_gives_up_at_once_when_retry_after_exceeds_the_ceiling(emu, make_provider, message):
    emu.script("anthropic", Failure(status=429, retry_after=60))
    started = time.monotonic()
    error = await _fail("anthropic", make_provider, message, retries=3, max_retry_after=1)
    assert (error.kind, error.retry_after) == ("rate_limited", 60.0)
    assert len(emu.received) == 1 and time.monotonic() - started < 2


async def test_gemini_retries_529_when_retries_are_enabled(emu, make_provider, message):
    emu.script("gemini", Failure(status=529), Failure(status=503))
    provider = make_provider("gemini", retries=2)
    events = await collect(provider.stream(request(MODELS["gemini"], [message("user", "hi")])))
    assert finished(events).stop_reason == "end_turn"
    assert len(emu.received) == 3


@pytest.mark.parametrize("name", BOTH)
async def test_error_inside_a_started_stream_maps_by_its_type(name, emu, make_provider, message):
    emu.script(name, Failure(status=529, in_stream_after=3, reply=Reply(text="a b c d e f")))
    error = await _fail(name, make_provider, message)
    assert (error.kind, error.retryable) == ("overloaded", True)
