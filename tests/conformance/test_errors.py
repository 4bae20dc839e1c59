"""HTTP error answers of both APIs (and of proxies in front of them): each becomes one
ProviderError whose kind, status, retry_after and message the router can act on."""

from __future__ import annotations

import time

import pytest
from conformance.messages import API_KEY, CLAUDE, GEMINI, failure, message, request

PROMPT = [message("user", "How should I order the migration?", turn_id="t1")]


def _clean(message: str) -> None:
    assert message.strip(), "empty provider_message"
    assert API_KEY not in message
    assert "Traceback" not in message


async def test_anthropic_429_with_retry_after_seconds_is_rate_limited_with_that_wait(replay) -> None:
    server, provider = replay("anthropic", "http_429_retry_after_seconds")
    _, error = await failure(provider.stream(request(CLAUDE, PROMPT)))
    assert (error.kind, error.status, error.retryable) == ("rate_limited", 429, True)
    assert error.retry_after == pytest.approx(17.0)
    assert "50 requests per minute" in error.provider_message
    _clean(error.provider_message)
    assert len(server.requests) == 1


async def test_anthropic_429_with_far_http_date_is_not_waited_for_and_reports_the_wait(replay) -> None:
    server, provider = replay("anthropic", "http_429_retry_after_date", retries=2, max_retry_after=5.0)
    started = time.monotonic()
    _, error = await failure(provider.stream(request(CLAUDE, PROMPT)))
    assert time.monotonic() - started < 10, "the SDK slept on the HTTP-date"
    assert (error.kind, error.status) == ("rate_limited", 429)
    assert error.retry_after is not None and 3500 < error.retry_after <= 3601
    assert len(server.requests) == 1, "the SDK retried past the retry-after ceiling"


async def test_anthropic_529_is_overloaded(replay) -> None:
    _, provider = replay("anthropic", "http_529_overloaded")
    _, error = await failure(provider.stream(request(CLAUDE, PROMPT)))
    assert (error.kind, error.status, error.retryable) == ("overloaded", 529, True)
    _clean(error.provider_message)


async def test_anthropic_404_for_unknown_model_is_not_found_and_may_fail_over(replay) -> None:
    _, provider = replay("anthropic", "http_404_unknown_model")
    _, error = await failure(provider.stream(request("claude-sonnet-3-9-retired", PROMPT)))
    assert (error.kind, error.status, error.retryable) == ("not_found", 404, True)
    assert "claude-sonnet-3-9-retired" in error.provider_message


async def test_anthropic_401_is_auth_and_never_shows_the_key(replay) -> None:
    _, provider = replay("anthropic", "http_401_invalid_key")
    _, error = await failure(provider.stream(request(CLAUDE, PROMPT)))
    assert (error.kind, error.status, error.retryable) == ("auth", 401, False)
    assert "invalid x-api-key" in error.provider_message
    _clean(error.provider_message)


async def test_anthropic_html_502_from_a_proxy_is_a_retryable_server_error_with_its_text(replay) -> None:
    _, provider = replay("anthropic", "http_502_html_proxy")
    _, error = await failure(provider.stream(request(CLAUDE, PROMPT)))
    assert (error.kind, error.status, error.retryable) == ("server", 502, True)
    assert "Bad Gateway" in error.provider_message
    _clean(error.provider_message)


async def test_gemini_429_retry_info_delay_becomes_retry_after(replay) -> None:
    _, provider = replay("gemini", "http_429_retry_info")
    _, error = await failure(provider.stream(request(GEMINI, PROMPT)))
    assert (error.kind, error.status, error.retryable) == ("rate_limited", 429, True)
    assert error.retry_after == pytest.approx(34.0)
    assert "quota" in error.provider_message.lower()
    _clean(error.provider_message)


async def test_gemini_400_api_key_invalid_is_auth_not_bad_request(replay) -> None:
    _, provider = replay("gemini", "http_400_api_key_invalid")
    _, error = await failure(provider.stream(request(GEMINI, PROMPT)))
    assert (error.kind, error.status, error.retryable) == ("auth", 400, False)
    assert "API key not valid" in error.provider_message
    _clean(error.provider_message)


async def test_gemini_404_for_unknown_model_is_not_found_and_may_fail_over(replay) -> None:
    _, provider = replay("gemini", "http_404_unknown_model")
    _, error = await failure(provider.stream(request("gemini-2.0-pro-exp", PROMPT)))
    assert (error.kind, error.status, error.retryable) == ("not_found", 404, True)
    assert "gemini-2.0-pro-exp" in error.provider_message


async def test_gemini_non_google_error_body_gives_its_text_not_a_crash(replay) -> None:
    _, provider = replay("gemini", "http_503_non_google_body")
    _, error = await failure(provider.stream(request(GEMINI, PROMPT)))
    assert error.status == 503 and error.retryable
    assert error.kind in ("overloaded", "server")
    assert "no healthy upstream for generativelanguage" in error.provider_message
    _clean(error.provider_message)


async def test_gemini_html_502_from_a_proxy_is_a_retryable_server_error_with_its_text(replay) -> None:
    _, provider = replay("gemini", "http_502_html_proxy")
    _, error = await failure(provider.stream(request(GEMINI, PROMPT)))
    assert (error.kind, error.status, error.retryable) == ("server", 502, True)
    assert "Bad Gateway" in error.provider_message
    _clean(error.provider_message)
