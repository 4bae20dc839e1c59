"""Only the holder of an emulator's key gets anything from it.

The emulator listens on loopback TCP, where every local user can connect. Each one
accepts one key per provider, made fresh for it (or given by its owner), and refuses
every other request as that provider refuses a bad key: Anthropic with 401
``authentication_error``, Google with 403 PERMISSION_DENIED (no key) or 400
INVALID_ARGUMENT / API_KEY_INVALID (a wrong one). A refused request is not read, not
recorded, takes no scripted step and shows nothing of anyone's conversation.
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from urllib.parse import urlsplit

import anthropic
import pytest
from google import genai
from google.genai import errors, types
from providers.provider_helpers import CLAUDE, GEMINI

from duologue.daemon.emulator import Emulator, Reply

VERSION = {"anthropic-version": "2023-06-01"}
ROUTES = {  # name -> (method, path, body, provider)
    "messages": ("POST", "/v1/messages",
                 {"model": CLAUDE, "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}, "anthropic"),
    "generate": ("POST", f"/v1beta/models/{GEMINI}:generateContent",
                 {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}, "gemini"),
    "stream": ("POST", f"/v1beta/models/{GEMINI}:streamGenerateContent?alt=sse",
               {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}, "gemini"),
    "claude models": ("GET", "/v1/models", None, "anthropic"),
    "gemini models": ("GET", "/v1beta/models", None, "gemini"),
    "root": ("GET", "/", None, "anthropic"),
    "no such path": ("POST", "/v1/elsewhere", {}, "anthropic"),
}
SECRET_REPLY = "the words of someone else's conversation"


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator() as emulator:
        emulator.script("anthropic", Reply(text=SECRET_REPLY))
        emulator.script("gemini", Reply(text=SECRET_REPLY))
        yield emulator


def _call(emu: Emulator, route: str, key: str | None) -> tuple[int, dict]:
    method, path, body, provider = ROUTES[route]
    headers = {"content-type": "application/json", **VERSION}
    if key is not None:
        headers["x-api-key" if provider == "anthropic" else "x-goog-api-key"] = key
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(emu.url + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _off_by_one(key: str) -> str:
    return key[:-1] + ("x" if key[-1] != "x" else "y")


def _credentials(emu: Emulator, provider: str) -> dict[str, str | None]:
    other = "gemini" if provider == "anthropic" else "anthropic"
    with Emulator() as stranger:
        foreign = stranger.api_keys[provider]
    return {"none": None, "guessed": "emulator-key", "the other provider's": emu.api_keys[other],
            "another emulator's": foreign, "one character off": _off_by_one(emu.api_keys[provider])}


@pytest.mark.parametrize("route", list(ROUTES))
def test_a_request_without_this_emulators_key_is_refused_in_the_providers_shape(emu, route):
    provider = ROUTES[route][3]
    for name, key in _credentials(emu, provider).items():
        status, body = _call(emu, route, key)
        if provider == "anthropic":
            assert status == 401, (name, status, body)
            assert body["type"] == "error" and body["error"]["type"] == "authentication_error", name
        elif key is None:
            assert (status, body["error"]["status"]) == (403, "PERMISSION_DENIED"), name
        else:
            assert (status, body["error"]["status"]) == (400, "INVALID_ARGUMENT"), name
            assert body["error"]["details"][0]["reason"] == "API_KEY_INVALID", name
        assert SECRET_REPLY not in json.dumps(body) and "models" not in body, name


def test_a_refused_request_leaves_no_trace_and_takes_no_scripted_step(emu):
    for route, (_, _, _, provider) in ROUTES.items():
        for key in _credentials(emu, provider).values():
            _call(emu, route, key)
    assert emu.received == []
    assert emu.pending("anthropic") == emu.pending("gemini") == 1
    status, body = _call(emu, "messages", emu.api_keys["anthropic"])
    assert status == 200 and body["content"][0]["text"] == SECRET_REPLY


def test_a_refused_post_is_answered_before_its_body_is_read(emu):
    """A stranger announcing a huge body gets the 401 at once; nothing waits for it."""
    address = urlsplit(emu.url)
    with socket.create_connection((address.hostname, address.port), timeout=5) as sock:
        sock.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nanthropic-version: 2023-06-01\r\n"
                     b"x-api-key: emulator-key\r\ncontent-type: application/json\r\n"
                     b"content-length: 1000000000\r\n\r\n{")
        head = sock.recv(4096)
    assert head.startswith(b"HTTP/1.1 401"), head


def test_every_emulator_makes_its_own_keys(emu):
    with Emulator() as other:
        assert set(other.api_keys) == {"anthropic", "gemini"}
        assert other.api_keys["anthropic"] != other.api_keys["gemini"]
        assert set(other.api_keys.values()).isdisjoint(emu.api_keys.values())
    assert all(len(key) >= 32 for key in emu.api_keys.values())


def test_keys_chosen_by_the_owner_must_name_both_providers():
    with pytest.raises(ValueError, match="gemini"):
        Emulator(api_keys={"anthropic": "a-key"})


async def test_the_real_sdks_are_refused_with_another_emulators_key(emu):
    with Emulator() as other:
        claude = anthropic.AsyncAnthropic(api_key=other.api_keys["anthropic"], base_url=emu.url, max_retries=0)
        with pytest.raises(anthropic.AuthenticationError):
            await claude.messages.create(model=CLAUDE, max_tokens=10, messages=[{"role": "user", "content": "hi"}])
        await claude.close()
        gemini = genai.Client(api_key=other.api_keys["gemini"], http_options=types.HttpOptions(base_url=emu.url))
        with pytest.raises(errors.ClientError) as refused:
            await gemini.aio.models.generate_content(model=GEMINI, contents="hi")
        assert refused.value.code == 400 and "API key not valid" in str(refused.value)
        await gemini.aio.aclose()
    claude = anthropic.AsyncAnthropic(api_key=emu.api_keys["anthropic"], base_url=emu.url, max_retries=0)
    reply = await claude.messages.create(model=CLAUDE, max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    assert reply.content[0].text == SECRET_REPLY
    await claude.close()
