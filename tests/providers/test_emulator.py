"""The emulator itself: default reply, plan-then-text flow, wire checks, scripting, lifecycle."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest
from providers.provider_helpers import API_KEY, BOTH, CLAUDE, GEMINI, MODELS, collect, finished, request, text_of, tool_calls

from duologue.daemon.emulator import Emulator, Failure, Reply
from duologue.daemon.providers import ToolSpec
from duologue.protocol.entities import ToolCallBlock, ToolResultBlock

TASK_TOOL = ToolSpec("update_tasks", "Replace the task list.", {"type": "object"})


def _post(url: str, body: dict, headers: dict[str, str]) -> tuple[int, dict, dict[str, str]]:
    data = json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"content-type": "application/json", **headers})
    try:
        with urllib.request.urlopen(req, timeout=5) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), dict(error.headers)


ANTHROPIC_BODY = {"model": CLAUDE, "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
GEMINI_BODY = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


@pytest.mark.parametrize("name", BOTH)
async def test_default_reply_quotes_first_message_and_names_earlier_models(name, emu, make_provider, message):
    other = GEMINI if name == "anthropic" else CLAUDE
    history = [
        message("user", "What is a monad, briefly?"),
        message("assistant", f"[emulator {other}] A monoid in the category of endofunctors.", model=other),
        message("user", "Say it simpler"),
    ]
    text = text_of(await collect(make_provider(name).stream(request(MODELS[name], history))))
    assert text.startswith(f"[emulator {MODELS[name]}]")
    assert "2 earlier turns (1 user, 1 assistant)" in text
    assert f"earlier answers came from {other} ×1" in text
    assert "The first user message I saw was “What is a monad, briefly?”" in text
    assert "You just said: “Say it simpler”" in text


@pytest.mark.parametrize("name", BOTH)
async def test_plan_request_calls_update_tasks_then_continues_with_text(name, emu, make_provider, message):
    provider = make_provider(name)
    history = [message("user", "Please plan the refactoring")]
    first = await collect(provider.stream(request(MODELS[name], history, tools=[TASK_TOOL])))
    [call] = tool_calls(first)
    assert call.name == "update_tasks" and len(call.input["tasks"]) == 3
    assert {"content", "status", "active_form"} <= set(call.input["tasks"][0])
    assert finished(first).stop_reason == "tool_use"

    history += [
        message("assistant", text_of(first), ToolCallBlock(id=call.id, name=call.name, input=call.input),
                model=MODELS[name]),
        message("user", ToolResultBlock(call_id=call.id, name=call.name, content="3 tasks saved")),
    ]
    second = await collect(provider.stream(request(MODELS[name], history, tools=[TASK_TOOL])))
    assert not tool_calls(second)
    assert "received the result of update_tasks" in text_of(second)
    assert finished(second).stop_reason == "end_turn"


@pytest.mark.parametrize("name", BOTH)
async def test_plan_request_without_the_tool_gets_plain_text(name, emu, make_provider, message):
    events = await collect(make_provider(name).stream(request(MODELS[name], [message("user", "plan it")])))
    assert not tool_calls(events) and "plan it" in text_of(events)


@pytest.mark.parametrize("name", BOTH)
async def test_script_steps_are_consumed_in_order_then_default_applies(name, emu, make_provider, message):
    emu.script(name, Reply(text="first"), Reply(text="second"))
    provider = make_provider(name)
    texts = [text_of(await collect(provider.stream(request(MODELS[name], [message("user", "x")]))))
             for _ in range(3)]
    assert texts[:2] == ["first", "second"] and texts[2].startswith("[emulator ")
    assert emu.pending(name) == 0


@pytest.mark.parametrize("name", BOTH)
async def test_received_requests_record_model_path_stream_but_never_the_key(name, emu, make_provider, message):
    await collect(make_provider(name).stream(request(MODELS[name], [message("user", "hi")])))
    [received] = emu.received
    assert (received.provider, received.model, received.stream) == (name, MODELS[name], True)
    assert API_KEY not in repr(received)
    emu.reset()
    assert emu.received == []


async def test_non_streaming_calls_work_for_both_sdks(emu):
    import anthropic
    from google import genai
    from google.genai import types

    claude = anthropic.AsyncAnthropic(api_key=API_KEY, base_url=emu.url, max_retries=0)
    reply = await claude.messages.create(model=CLAUDE, max_tokens=50, messages=[{"role": "user", "content": "hi"}])
    assert reply.stop_reason == "end_turn" and reply.content[0].text.startswith(f"[emulator {CLAUDE}]")
    await claude.close()

    gemini = genai.Client(api_key=API_KEY, http_options=types.HttpOptions(base_url=emu.url, api_version="v1"))
    response = await gemini.aio.models.generate_content(model=GEMINI, contents="hi")
    assert response.text.startswith(f"[emulator {GEMINI}]")
    assert response.usage_metadata.total_token_count > 0
    assert emu.received[-1].path == f"/v1/models/{GEMINI}:generateContent"
    await gemini.aio.aclose()


def test_anthropic_requires_the_version_header_and_a_key(emu):
    status, body, _ = _post(emu.url + "/v1/messages", ANTHROPIC_BODY, {"x-api-key": API_KEY})
    assert status == 400 and body["error"]["type"] == "invalid_request_error"
    status, body, _ = _post(emu.url + "/v1/messages", ANTHROPIC_BODY, {"anthropic-version": "2023-06-01"})
    assert status == 401 and body == {**body, "type": "error"} and body["error"]["type"] == "authentication_error"


def test_gemini_accepts_the_key_as_query_parameter_and_rejects_invalid_keys(emu):
    url = emu.url + f"/v1beta/models/{GEMINI}:generateContent"
    status, body, _ = _post(url + f"?key={API_KEY}", GEMINI_BODY, {})
    assert status == 200 and body["candidates"][0]["finishReason"] == "STOP"
    status, body, _ = _post(url, GEMINI_BODY, {"x-goog-api-key": "invalid-1"})
    assert status == 400 and body["error"]["status"] == "INVALID_ARGUMENT"
    assert body["error"]["details"][0]["reason"] == "API_KEY_INVALID"


def test_errors_use_each_providers_error_shape_and_retry_after(emu):
    emu.script("anthropic", Failure(status=529, retry_after=3))
    emu.script("gemini", Failure(status=429, retry_after=3))
    status, body, headers = _post(emu.url + "/v1/messages", ANTHROPIC_BODY,
                                  {"x-api-key": API_KEY, "anthropic-version": "2023-06-01"})
    assert status == 529 and body["error"]["type"] == "overloaded_error" and headers["retry-after"] == "3"
    status, body, headers = _post(emu.url + f"/v1beta/models/{GEMINI}:generateContent", GEMINI_BODY,
                                  {"x-goog-api-key": API_KEY})
    assert status == 429 and body["error"]["status"] == "RESOURCE_EXHAUSTED" and body["error"]["code"] == 429


def test_gemini_accepts_snake_case_function_declarations(emu):
    body = {**GEMINI_BODY, "contents": [{"role": "user", "parts": [{"text": "plan it"}]}],
            "tools": [{"function_declarations": [{"name": "update_tasks", "parameters_json_schema": {}}]}]}
    status, answer, _ = _post(emu.url + f"/v1beta/models/{GEMINI}:generateContent", body, {"x-goog-api-key": API_KEY})
    assert status == 200
    assert answer["candidates"][0]["content"]["parts"][-1]["functionCall"]["name"] == "update_tasks"


def test_failure_must_name_one_misbehaviour():
    with pytest.raises(ValueError):
        Failure()
    with pytest.raises(ValueError):
        Failure(status=500, cut_after=2)


def test_stop_releases_a_delayed_request_promptly():
    emulator = Emulator().start()
    emulator.script("gemini", Failure(delay=30))
    url = emulator.url + f"/v1beta/models/{GEMINI}:generateContent"
    key = {"x-goog-api-key": emulator.api_keys["gemini"]}
    worker = threading.Thread(target=lambda: _swallow(_post, url, GEMINI_BODY, key))
    worker.start()
    deadline = time.monotonic() + 5
    while not emulator.received and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    emulator.stop()
    worker.join(timeout=5)
    assert time.monotonic() - started < 2 and not worker.is_alive()


def _swallow(fn, *args):
    try:
        fn(*args)
    except Exception:  # the connection closes without an answer, which is the point
        pass


def test_module_entry_point_serves_until_interrupted():
    process = subprocess.Popen([sys.executable, "-m", "duologue.daemon.emulator", "--port", "0"],
                               stdout=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        assert "listening on http://127.0.0.1:" in line
        url = line.split("listening on ")[1].split()[0]
        keys = dict(re.findall(r"(ANTHROPIC|GEMINI)_API_KEY=(\S+)", process.stdout.readline()))
        assert set(keys) == {"ANTHROPIC", "GEMINI"} and keys["ANTHROPIC"] != keys["GEMINI"]
        headers = {"x-api-key": keys["ANTHROPIC"], "anthropic-version": "2023-06-01"}
        status, body, _ = _post(url + "/v1/messages", ANTHROPIC_BODY, headers)
        assert status == 200 and body["content"][0]["text"].startswith(f"[emulator {CLAUDE}]")
        status, _, _ = _post(url + "/v1/messages", ANTHROPIC_BODY, {**headers, "x-api-key": API_KEY})
        assert status == 401
    finally:
        process.terminate()
        process.wait(timeout=5)


@pytest.mark.parametrize("body", [{"contents": [{"role": "user", "parts": [1, 2]}]},
                                  {"contents": [{"role": "user", "parts": [{"text": "x"}]}], "tools": [7]}])
def test_unreadable_gemini_request_gets_a_400_not_a_dead_server(emu, body):
    url = emu.url + f"/v1beta/models/{GEMINI}:generateContent"
    status, answer, _ = _post(url, body, {"x-goog-api-key": API_KEY})
    assert status == 400 and answer["error"]["status"] == "INVALID_ARGUMENT"
    status, _, _ = _post(url, GEMINI_BODY, {"x-goog-api-key": API_KEY})
    assert status == 200
