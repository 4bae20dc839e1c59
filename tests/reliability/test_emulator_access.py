"""The emulator of a ``--emulator`` daemon answers that daemon and nobody else.

Its port is on loopback TCP, which another local user can reach, so it demands the
keys it made when the daemon started; the daemon holds them and nobody else sees
them. Another user (uid ``nobody``; needs root) or any caller without those keys,
knowing the port and trying what a guess would (no key, the constant key earlier
versions used, Bearer auth, Gemini's key parameter), gets each provider's refusal
and no reply text, while the daemon's own turns keep working.
"""

from __future__ import annotations

import json
import subprocess
import sys
from urllib.parse import urlsplit

from conversation_support import send_and_wait
from other_user import needs_root, run_as_other

from duologue.clients.rpc.client import AsyncClient

PROBE = r"""
import json, sys, urllib.error, urllib.request
base = sys.argv[1]
claude = {"model": "claude-sonnet-5-5", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
gemini = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
version = {"anthropic-version": "2023-06-01", "content-type": "application/json"}
tries = [
    ("POST", "/v1/messages", claude, version),
    ("POST", "/v1/messages", claude, {**version, "x-api-key": "emulator-key"}),
    ("POST", "/v1/messages", claude, {**version, "authorization": "Bearer emulator-key"}),
    ("POST", "/v1beta/models/gemini-3.8-flash:generateContent", gemini, {"x-goog-api-key": "emulator-key"}),
    ("POST", "/v1beta/models/gemini-3.8-flash:generateContent?key=emulator-key", gemini, {}),
    ("GET", "/v1/models", None, {**version, "x-api-key": "emulator-key"}),
    ("GET", "/v1beta/models", None, {}),
    ("GET", "/", None, {}),
]
out = []
for method, path, body, headers in tries:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            out.append([path, response.status, response.read().decode()])
    except urllib.error.HTTPError as error:
        out.append([path, error.code, error.read().decode()])
print(json.dumps(out))
"""


async def _emulator_url(client: AsyncClient) -> str:
    status = await client.status()
    assert status.emulator
    [url] = {p.base_url for p in status.providers}
    assert url and urlsplit(url).hostname == "127.0.0.1", url
    return url


def _assert_refused(answers: list[list]) -> None:
    assert len(answers) == 8
    for path, status, text in answers:
        body = json.loads(text)
        assert status in (400, 401, 403), (path, status, text)
        if "error" in body and isinstance(body["error"], dict) and "code" in body["error"]:  # Google's shape
            assert body["error"]["status"] in ("INVALID_ARGUMENT", "PERMISSION_DENIED"), text
        else:  # Anthropic's shape
            assert body["type"] == "error" and body["error"]["type"] == "authentication_error", text
        assert "[emulator" not in text and "models" not in body and "providers" not in body, text


@needs_root
async def test_another_user_who_finds_the_emulators_port_is_refused_and_learns_nothing(daemon, client):
    url = await _emulator_url(client)
    probe = run_as_other(PROBE, url)
    assert probe.returncode == 0, probe.stderr
    _assert_refused(json.loads(probe.stdout))
    await _the_daemon_still_answers(client)


async def test_a_request_without_the_daemons_emulator_key_is_refused(daemon, client):
    url = await _emulator_url(client)
    probe = subprocess.run([sys.executable, "-c", PROBE, url], capture_output=True, text=True, timeout=60)
    assert probe.returncode == 0, probe.stderr
    _assert_refused(json.loads(probe.stdout))
    await _the_daemon_still_answers(client)


async def _the_daemon_still_answers(client: AsyncClient) -> None:
    for model in ("sonnet", "flash"):
        session = await client.create_session(model=model)
        await client.attach(session.id, since_seq=session.last_seq)
        await send_and_wait(client, session.id, "are you there?")
        [reply] = [msg for msg in (await client.get_session(session.id)).messages if msg.role == "assistant"]
        assert reply.status == "complete" and reply.text.startswith("[emulator "), reply
