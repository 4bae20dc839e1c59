"""Scripted failures look like what clients meet in the wild, for both providers."""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import anthropic
import pytest
from google import genai
from google.genai import errors, types
from providers.provider_helpers import API_KEY, KEYS

from duologue.daemon.emulator import Emulator, Failure, Reply
from duologue.daemon.emulator.failures import HTML_502

CLAUDE_BODY = {"model": "claude-haiku-4-5", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}
CLAUDE_HEADERS = {"x-api-key": API_KEY, "anthropic-version": "2023-06-01", "content-type": "application/json"}
GEMINI_PATH = "/v1beta/models/gemini-3.8-flash:streamGenerateContent?alt=sse"
GEMINI_BODY = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


def exchange(emu: Emulator, path: str, body: dict, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection(urlsplit(emu.url).netloc, timeout=10)
    conn.request("POST", path, json.dumps(body), headers)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, data


@pytest.mark.parametrize("provider", ["anthropic", "gemini"])
def test_gateway_error_bodies_replace_the_providers_shape(emu, provider):
    emu.script(provider, Failure(status=500, body={"error": "some text"}), Failure(status=502, body=HTML_502))
    path, headers = ("/v1/messages", CLAUDE_HEADERS) if provider == "anthropic" else (
        GEMINI_PATH, {"x-goog-api-key": API_KEY})
    body = CLAUDE_BODY if provider == "anthropic" else GEMINI_BODY
    status, head, data = exchange(emu, path, body, headers)
    assert status == 500 and json.loads(data) == {"error": "some text"} and head["content-type"] == "application/json"
    status, head, data = exchange(emu, path, body, headers)
    assert status == 502 and data.decode() == HTML_502 and head["content-type"].startswith("text/html")


def test_retry_after_may_be_an_http_date(emu):
    when = datetime(2026, 12, 24, 18, 0, tzinfo=UTC)
    emu.script("anthropic", Failure(status=429, retry_after_date=when))
    emu.script("gemini", Failure(status=503, retry_after_date="Thu, 24 Dec 2026 18:00:00 GMT"))
    _, head, _ = exchange(emu, "/v1/messages", CLAUDE_BODY, CLAUDE_HEADERS)
    assert head["retry-after"] == "Thu, 24 Dec 2026 18:00:00 GMT" and parsedate_to_datetime(head["retry-after"]) == when
    _, head, _ = exchange(emu, GEMINI_PATH, GEMINI_BODY, {"x-goog-api-key": API_KEY})
    assert head["retry-after"] == "Thu, 24 Dec 2026 18:00:00 GMT"


def _read_for(sock: socket.socket, seconds: float) -> bytes:
    sock.settimeout(0.2)
    data, deadline = b"", time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        if not chunk:
            break
        data += chunk
    return data


def _open_stream(emu: Emulator, path: str, body: dict, headers: dict[str, str]) -> socket.socket:
    address = urlsplit(emu.url)
    sock = socket.create_connection((address.hostname, address.port), timeout=5)
    payload = json.dumps(body).encode()
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    sock.sendall(f"POST {path} HTTP/1.1\r\nhost: x\r\n{head}content-length: {len(payload)}\r\n\r\n".encode() + payload)
    return sock


def test_anthropic_keepalive_stream_sends_one_delta_then_only_pings(emu):
    emu.script("anthropic", Failure(keepalive_after=4, keepalive_interval=0.1, reply=Reply(text="one two three")))
    sock = _open_stream(emu, "/v1/messages", {**CLAUDE_BODY, "stream": True}, CLAUDE_HEADERS)
    data = _read_for(sock, 1.0).decode()
    sock.close()
    events = [line.removeprefix("event: ") for line in data.splitlines() if line.startswith("event: ")]
    assert events[:4] == ["message_start", "ping", "content_block_start", "content_block_delta"]
    assert len(events) > 8 and set(events[4:]) == {"ping"}


def test_gemini_keepalive_stream_holds_the_connection_with_nothing_sent(emu):
    emu.script("gemini", Failure(keepalive_after=1, reply=Reply(text="one two three")))
    sock = _open_stream(emu, GEMINI_PATH, GEMINI_BODY, {"x-goog-api-key": API_KEY})
    data = _read_for(sock, 1.0).decode()
    sock.close()
    assert data.count("data: ") == 1 and "finishReason" not in data


async def test_sdk_read_timeout_never_fires_on_a_ping_only_stream(emu):
    emu.script("anthropic", Failure(keepalive_after=4, keepalive_interval=0.1))
    client = anthropic.AsyncAnthropic(api_key=API_KEY, base_url=emu.url, max_retries=0, timeout=0.5)

    async def consume() -> None:
        async with client.messages.stream(model="claude-haiku-4-5", max_tokens=50,
                                          messages=[{"role": "user", "content": "hi"}]) as stream:
            async for _ in stream:
                pass

    with pytest.raises(TimeoutError):  # our 1.5 s deadline, not the SDK's 0.5 s read timeout
        await asyncio.wait_for(consume(), 1.5)
    await client.close()


def test_stop_releases_a_keepalive_stream(emu):
    emulator = Emulator(api_keys=KEYS).start()
    emulator.script("gemini", Failure(keepalive_after=1))
    sock = _open_stream(emulator, GEMINI_PATH, GEMINI_BODY, {"x-goog-api-key": API_KEY})
    _read_for(sock, 0.3)
    started = time.monotonic()
    emulator.stop()
    sock.close()
    assert time.monotonic() - started < 3


async def test_gemini_error_inside_a_200_stream_raises_at_that_point(emu):
    emu.script("gemini", Failure(status=500, in_stream_after=2, reply=Reply(text="one two three four")))
    client = genai.Client(api_key=API_KEY, http_options=types.HttpOptions(base_url=emu.url))
    seen = []
    with pytest.raises(errors.ServerError) as failed:
        async for chunk in await client.aio.models.generate_content_stream(model="gemini-3.8-flash", contents="hi"):
            seen.append(chunk.text)
    await client.aio.aclose()
    assert seen == ["one", " two"] and failed.value.code == 500 and failed.value.status == "INTERNAL"


def test_failures_are_checked_when_scripted(emu):
    with pytest.raises(ValueError):
        Failure(status=500, keepalive_after=1)
    with pytest.raises(ValueError):
        Failure(body={"error": "x"})
    with pytest.raises(ValueError):
        Failure(status=429, retry_after=1, retry_after_date="Thu, 24 Dec 2026 18:00:00 GMT")
    with pytest.raises(ValueError):
        emu.script("anthropic", Failure(status=429, retry_delay="3s"))
