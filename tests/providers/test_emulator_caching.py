"""Prompt caching is billed like the real APIs: Anthropic breakpoints, Gemini implicit.

The usage figures are the emulator's approximation (about four characters a token),
so tests compare them with each other, never with constants.
"""

from __future__ import annotations

import http.client
import json
from urllib.parse import urlsplit

import pytest
from google import genai
from google.genai import types
from providers.provider_helpers import API_KEY, KEYS

from duologue.daemon.emulator import Emulator

CLAUDE = "claude-sonnet-5-5"  # caches prefixes of 512 tokens and more
LONG = "Follow the house rules for every answer. " * 120  # ~1,200 tokens
CC = {"type": "ephemeral"}
HEADERS = {"x-api-key": API_KEY, "anthropic-version": "2023-06-01", "content-type": "application/json"}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def cached_emu(clock):
    with Emulator(api_keys=KEYS, clock=clock) as emulator:
        yield emulator


def post(emu: Emulator, path: str, body: dict, headers: dict[str, str]) -> tuple[int, dict]:
    conn = http.client.HTTPConnection(urlsplit(emu.url).netloc, timeout=10)
    conn.request("POST", path, json.dumps(body), headers)
    response = conn.getresponse()
    answer = json.loads(response.read())
    conn.close()
    return response.status, answer


def usage(emu: Emulator, body: dict) -> dict:
    status, answer = post(emu, "/v1/messages", body, HEADERS)
    assert status == 200, answer
    return answer["usage"]


def request(*, model: str = CLAUDE, turns: int = 1, system_cc: dict | None = CC, last_cc: dict | None = None,
            **extra: object) -> dict:
    """A long system prompt and ``turns`` short exchanges ending on a user message."""
    messages: list[dict] = []
    for n in range(turns):
        if n:
            messages.append({"role": "assistant", "content": [{"type": "text", "text": f"answer {n}"}]})
        messages.append({"role": "user", "content": [{"type": "text", "text": f"question {n}"}]})
    if last_cc is not None:
        messages[-1]["content"][-1]["cache_control"] = last_cc
    system = {"type": "text", "text": LONG, **({"cache_control": system_cc} if system_cc else {})}
    return {"model": model, "max_tokens": 100, "system": [system], "messages": messages, **extra}


def total(u: dict) -> int:
    return u["input_tokens"] + u["cache_creation_input_tokens"] + u["cache_read_input_tokens"]


def test_second_identical_prefix_reads_what_the_first_wrote(cached_emu):
    first, second = usage(cached_emu, request()), usage(cached_emu, request())
    assert first["cache_read_input_tokens"] == 0 and first["cache_creation_input_tokens"] > 1000
    assert first["cache_creation"] == {"ephemeral_5m_input_tokens": first["cache_creation_input_tokens"],
                                       "ephemeral_1h_input_tokens": 0}
    assert second["cache_read_input_tokens"] == first["cache_creation_input_tokens"]
    assert second["cache_creation_input_tokens"] == 0 and total(first) == total(second)


def test_the_three_counts_add_up_to_the_uncached_prompt(cached_emu):
    plain = usage(cached_emu, request(system_cc=None))
    cached = usage(cached_emu, request())
    assert plain["input_tokens"] == total(cached) and plain["cache_creation_input_tokens"] == 0


def test_caches_are_per_model(cached_emu):
    usage(cached_emu, request())
    other = usage(cached_emu, request(model="claude-opus-5-5"))
    assert other["cache_read_input_tokens"] == 0 and other["cache_creation_input_tokens"] > 0


def test_a_switch_away_and_back_within_the_ttl_still_hits(cached_emu, clock):
    written = usage(cached_emu, request())["cache_creation_input_tokens"]
    clock.now += 120
    status, _ = post(cached_emu, "/v1beta/models/gemini-3.8-flash:generateContent",
                     {"contents": [{"role": "user", "parts": [{"text": "question 0"}]}]}, {"x-goog-api-key": API_KEY})
    usage(cached_emu, request(model="claude-opus-5-5"))
    clock.now += 120
    back = usage(cached_emu, request())
    assert status == 200 and back["cache_read_input_tokens"] == written


def test_5m_entries_expire_unless_read_and_1h_entries_last(cached_emu, clock):
    usage(cached_emu, request())
    clock.now += 240
    assert usage(cached_emu, request())["cache_read_input_tokens"] > 0  # a read refreshes the 5 minutes
    clock.now += 240
    assert usage(cached_emu, request())["cache_read_input_tokens"] > 0
    clock.now += 301
    assert usage(cached_emu, request())["cache_read_input_tokens"] == 0

    cached_emu.cache.clear()
    hour = {"type": "ephemeral", "ttl": "1h"}
    first = usage(cached_emu, request(system_cc=hour))
    clock.now += 1800
    assert first["cache_creation"]["ephemeral_1h_input_tokens"] == first["cache_creation_input_tokens"] > 0
    assert usage(cached_emu, request(system_cc=hour))["cache_read_input_tokens"] > 0


def test_prefixes_below_the_models_minimum_are_not_cached(cached_emu):
    short = request()
    short["system"][0]["text"] = "Be brief."
    assert usage(cached_emu, short)["cache_creation_input_tokens"] == 0
    assert usage(cached_emu, short)["cache_read_input_tokens"] == 0
    # claude-haiku-4-5 needs 4,096 tokens: the ~1,200-token system prompt is too short there
    assert usage(cached_emu, request(model="claude-haiku-4-5"))["cache_creation_input_tokens"] == 0


def test_more_than_four_breakpoints_are_refused(cached_emu):
    body = request(turns=3, last_cc=CC)
    for message in body["messages"][:3]:
        message["content"][0]["cache_control"] = CC
    status, answer = post(cached_emu, "/v1/messages", body, HEADERS)
    assert status == 400 and answer["error"]["message"] == (
        "A maximum of 4 blocks with cache_control may be provided. Found 5.")


def test_a_rolling_breakpoint_finds_the_previous_one_within_20_blocks(cached_emu):
    usage(cached_emu, request(turns=2, last_cc=CC, system_cc=None))
    near = usage(cached_emu, request(turns=3, last_cc=CC, system_cc=None))
    assert near["cache_read_input_tokens"] > 1000
    usage(cached_emu, request(turns=4, last_cc=CC, system_cc=None))
    far = usage(cached_emu, request(turns=16, last_cc=CC, system_cc=None))  # 24 blocks past the last write
    assert far["cache_read_input_tokens"] == 0


def test_1h_and_5m_writes_are_reported_apart_and_1h_must_come_first(cached_emu):
    tools = [{"name": "lookup", "description": "Look things up. " * 200, "input_schema": {"type": "object"},
              "cache_control": {"type": "ephemeral", "ttl": "1h"}}]
    split = usage(cached_emu, request(tools=tools))["cache_creation"]
    assert split["ephemeral_1h_input_tokens"] > 0 and split["ephemeral_5m_input_tokens"] > 0
    tools[0]["cache_control"] = CC
    status, _ = post(cached_emu, "/v1/messages", request(tools=tools, system_cc={"type": "ephemeral", "ttl": "1h"}),
                     HEADERS)
    assert status == 400


def test_changing_tool_choice_keeps_the_system_cache_but_not_the_messages_one(cached_emu):
    tools = [{"name": "lookup", "description": "Look things up.", "input_schema": {"type": "object"}}]
    usage(cached_emu, request(turns=3, last_cc=CC, tools=tools))
    same = usage(cached_emu, request(turns=3, last_cc=CC, tools=tools))
    changed = usage(cached_emu, request(turns=3, last_cc=CC, tools=tools, tool_choice={"type": "none"}))
    assert 0 < changed["cache_read_input_tokens"] < same["cache_read_input_tokens"]


def test_top_level_cache_control_caches_the_whole_prompt(cached_emu):
    first = usage(cached_emu, request(system_cc=None, cache_control=CC))
    second = usage(cached_emu, request(system_cc=None, cache_control=CC))
    assert second["cache_read_input_tokens"] == first["cache_creation_input_tokens"] == total(first)


# -- Gemini implicit caching --------------------------------------------------------


@pytest.fixture
async def gemini(cached_emu):
    client = genai.Client(api_key=API_KEY, http_options=types.HttpOptions(base_url=cached_emu.url))
    yield client
    await client.aio.aclose()


def contents(*questions: str) -> list[types.Content]:
    parts = [types.Content(role="user", parts=[types.Part(text=LONG * 2)])]
    for n, question in enumerate(questions):
        if n:
            parts.append(types.Content(role="model", parts=[types.Part(text=f"answer {n}")]))
        parts.append(types.Content(role="user", parts=[types.Part(text=question)]))
    return parts


async def test_gemini_reports_the_shared_prefix_as_cached_content(gemini):
    first = (await gemini.aio.models.generate_content(model="gemini-3.8-flash", contents=contents("a"))).usage_metadata
    second = (await gemini.aio.models.generate_content(model="gemini-3.8-flash",
                                                       contents=contents("a", "b"))).usage_metadata
    assert not first.cached_content_token_count
    assert second.cached_content_token_count >= 1024
    assert second.prompt_token_count > second.cached_content_token_count  # the prompt count includes it


async def test_gemini_caching_needs_the_models_minimum_and_the_same_model(gemini):
    await gemini.aio.models.generate_content(model="gemini-3.8-flash", contents=contents("a"))
    other = await gemini.aio.models.generate_content(model="gemini-3.5-flash", contents=contents("a", "b"))
    assert not other.usage_metadata.cached_content_token_count
    await gemini.aio.models.generate_content(model="gemini-3.1-pro-preview", contents=contents("a"))
    pro = await gemini.aio.models.generate_content(model="gemini-3.1-pro-preview", contents=contents("a", "b"))
    assert not pro.usage_metadata.cached_content_token_count  # ~2,400 tokens: below Pro's 4,096
    await gemini.aio.models.generate_content(model="gemini-3.8-flash", contents="short")
    short = await gemini.aio.models.generate_content(model="gemini-3.8-flash", contents="short")
    assert not short.usage_metadata.cached_content_token_count


def test_reset_keeps_the_cache_and_clear_empties_it(cached_emu):
    usage(cached_emu, request())
    cached_emu.reset()
    assert usage(cached_emu, request())["cache_read_input_tokens"] > 0
    cached_emu.cache.clear()
    assert usage(cached_emu, request())["cache_read_input_tokens"] == 0


def test_received_requests_carry_what_was_billed(cached_emu):
    first, second = usage(cached_emu, request()), usage(cached_emu, request())
    billed = [r.billed for r in cached_emu.received]
    assert billed[0]["cache_write_5m_tokens"] == first["cache_creation_input_tokens"]
    assert billed[1]["cache_read_tokens"] == second["cache_read_input_tokens"]
    assert billed[1]["prompt_tokens"] == total(second) and billed[1]["input_tokens"] == second["input_tokens"]
