"""The emulator speaks and demands what the Anthropic Messages API does.

Driven through the real anthropic SDK where it shows the shape, and raw HTTP where
the SDK would hide it (event order, exact bodies). Each test names the provider
behaviour it proves; the doc sources are in the emulator modules' docstrings.
"""

from __future__ import annotations

import copy
import http.client
import json
from urllib.parse import urlsplit

import anthropic
import pytest

from providers.provider_helpers import API_KEY as KEY
from providers.provider_helpers import KEYS

from duologue.daemon.emulator import Emulator, Reply, ToolCall

TOOLS = [{"name": "update_tasks", "description": "Replace the task list.", "input_schema": {"type": "object"}}]
HEADERS = {"x-api-key": KEY, "anthropic-version": "2023-06-01", "content-type": "application/json"}


@pytest.fixture
async def claude(emu: Emulator):
    client = anthropic.AsyncAnthropic(api_key=KEY, base_url=emu.url, max_retries=0)
    yield client
    await client.close()


def raw(emu: Emulator, body: dict, method: str = "POST", path: str = "/v1/messages") -> tuple[int, str]:
    """One request over plain HTTP; the whole answer (streams are close-delimited)."""
    conn = http.client.HTTPConnection(urlsplit(emu.url).netloc, timeout=10)
    conn.request(method, path, json.dumps(body) if method == "POST" else None, HEADERS)
    response = conn.getresponse()
    text = response.read().decode()
    conn.close()
    return response.status, text


def sse(text: str) -> list[tuple[str, dict]]:
    events = []
    for chunk in text.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in chunk.splitlines() if ": " in line)
        if "event" in lines:
            events.append((lines["event"], json.loads(lines["data"])))
    return events


def body(model: str, *messages: dict, **extra: object) -> dict:
    return {"model": model, "max_tokens": 4000, "messages": list(messages) or [user("hi")], **extra}


def user(content: object) -> dict:
    return {"role": "user", "content": content}


async def tool_round(claude, model: str, **extra: object) -> tuple[list[dict], anthropic.types.Message]:
    """Ask for a plan (the default reply calls update_tasks) and return the history so far."""
    history = [user("Please plan the refactoring")]
    first = await claude.messages.create(model=model, max_tokens=4000, messages=history, tools=TOOLS, **extra)
    assert first.stop_reason == "tool_use"
    call = next(b for b in first.content if b.type == "tool_use")
    history += [{"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
                user([{"type": "tool_result", "tool_use_id": call.id, "content": "saved"}])]
    return history, first


def test_thinking_model_streams_signed_thinking_before_the_answer(emu):
    status, text = raw(emu, body("claude-sonnet-5-5", stream=True))
    events = sse(text)
    assert status == 200
    names = [name for name, _ in events]
    assert names[:3] == ["message_start", "ping", "content_block_start"]
    start = events[2][1]["content_block"]
    assert start == {"type": "thinking", "thinking": "", "signature": ""}
    stop = names.index("content_block_stop")
    assert events[stop - 1][1]["delta"]["type"] == "signature_delta"
    assert events[stop - 1][1]["delta"]["signature"]
    assert events[stop + 1][1]["content_block"]["type"] == "text"
    assert names[-2:] == ["message_delta", "message_stop"]


async def test_default_display_is_omitted_on_5x_and_summarized_shows_the_thinking(claude):
    hidden = await claude.messages.create(model="claude-opus-5-5", max_tokens=4000, messages=[user("hi")])
    shown = await claude.messages.create(model="claude-opus-5-5", max_tokens=4000, messages=[user("hi")],
                                         thinking={"type": "adaptive", "display": "summarized"})
    assert hidden.content[0].type == "thinking" and hidden.content[0].thinking == "" and hidden.content[0].signature
    assert shown.content[0].thinking.startswith("Thinking as claude-opus-5-5")
    assert hidden.usage.output_tokens_details.thinking_tokens > 0  # hidden thinking is billed all the same


async def test_scripted_thinking_text_and_no_thinking(emu, claude):
    emu.script("anthropic", Reply(text="ok", thinking="step one, step two"), Reply(text="ok", thinking=""))
    first = await claude.messages.create(model="claude-fable-5-1", max_tokens=4000, messages=[user("hi")],
                                         thinking={"type": "adaptive", "display": "summarized"})
    second = await claude.messages.create(model="claude-fable-5-1", max_tokens=4000, messages=[user("hi")])
    assert [b.type for b in first.content] == ["thinking", "text"] and first.content[0].thinking == "step one, step two"
    assert [b.type for b in second.content] == ["text"]


@pytest.mark.parametrize("model", ["claude-fable-5-2", "claude-fable-5-1", "claude-opus-5-5"])
def test_always_thinking_models_refuse_disabled_thinking(emu, model):
    status, text = raw(emu, body(model, thinking={"type": "disabled"}))
    error = json.loads(text)["error"]
    assert status == 400 and error["type"] == "invalid_request_error"
    assert error["message"] == ('"thinking.type.disabled" is not supported for this model. Use '
                                '"thinking.type.adaptive" and "output_config.effort" to control thinking behavior.')


def test_sonnet_5_5_refuses_disabled_and_takes_between_tools(emu):
    status, text = raw(emu, body("claude-sonnet-5-5", thinking={"type": "disabled"}))
    assert status == 400 and "between_tools" in json.loads(text)["error"]["message"]
    status, text = raw(emu, body("claude-sonnet-5-5", thinking={"type": "between_tools"}))
    assert status == 200 and [b["type"] for b in json.loads(text)["content"]] == ["text"]


def test_5x_models_refuse_manual_thinking_budgets(emu):
    status, text = raw(emu, body("claude-sonnet-5-5", thinking={"type": "enabled", "budget_tokens": 2048}))
    assert status == 400 and json.loads(text)["error"]["message"].startswith('"thinking.type.enabled" is not supported')


def test_4_6_models_think_only_when_asked(emu):
    _, plain = raw(emu, body("claude-sonnet-4-6"))
    _, asked = raw(emu, body("claude-sonnet-4-6", thinking={"type": "enabled", "budget_tokens": 1024}))
    assert [b["type"] for b in json.loads(plain)["content"]] == ["text"]
    thinking = json.loads(asked)["content"][0]
    assert thinking["type"] == "thinking" and thinking["thinking"]  # 4.6 defaults to summarized display


async def test_tool_continuation_must_resend_the_thinking_block(claude):
    history, _ = await tool_round(claude, "claude-sonnet-5-5")
    ok = await claude.messages.create(model="claude-sonnet-5-5", max_tokens=4000, messages=history, tools=TOOLS)
    assert ok.stop_reason == "end_turn"

    stripped = copy.deepcopy(history)
    stripped[1]["content"] = [b for b in stripped[1]["content"] if b["type"] != "thinking"]
    with pytest.raises(anthropic.BadRequestError) as refused:
        await claude.messages.create(model="claude-sonnet-5-5", max_tokens=4000, messages=stripped, tools=TOOLS)
    assert refused.value.message.startswith(
        "Error code: 400 - {'type': 'error', 'error': {'type': 'invalid_request_error', 'message': "
        "'messages.1.content.0.type: Expected `thinking` or `redacted_thinking`, but found `tool_use`. "
        "When `thinking` is enabled, a final `assistant` message must start with a thinking block")


async def test_without_thinking_the_continuation_needs_no_thinking_block(claude):
    history, first = await tool_round(claude, "claude-sonnet-4-6")
    assert first.content[0].type == "text"
    ok = await claude.messages.create(model="claude-sonnet-4-6", max_tokens=4000, messages=history, tools=TOOLS)
    assert ok.stop_reason == "end_turn"


async def test_edited_or_foreign_thinking_signatures_are_refused(claude):
    history, _ = await tool_round(claude, "claude-opus-5-5", thinking={"type": "adaptive", "display": "summarized"})
    edited = copy.deepcopy(history)
    edited[1]["content"][0]["thinking"] += " (edited)"
    with pytest.raises(anthropic.BadRequestError) as refused:
        await claude.messages.create(model="claude-opus-5-5", max_tokens=4000, messages=edited, tools=TOOLS)
    assert "messages.1.content.0: Invalid `signature` in `thinking` block" in refused.value.message
    with pytest.raises(anthropic.BadRequestError) as foreign:  # the same block sent to another model
        await claude.messages.create(model="claude-fable-5-1", max_tokens=4000, messages=history, tools=TOOLS)
    assert "Invalid `signature` in `thinking` block" in foreign.value.message


def test_signatures_survive_an_emulator_restart_but_not_another_key(emu):
    _, text = raw(emu, body("claude-opus-5-5"))
    block = json.loads(text)["content"][0]
    history = [user("hi"), {"role": "assistant", "content": [block, {"type": "text", "text": "hello"}]}, user("again")]
    with Emulator(api_keys=KEYS) as fresh:
        assert raw(fresh, body("claude-opus-5-5", *history))[0] == 200
    with Emulator(api_keys=KEYS, signing_key=b"another account") as other:
        status, answer = raw(other, body("claude-opus-5-5", *history))
        assert status == 400 and "Invalid `signature`" in answer


async def test_redacted_thinking_comes_first_and_must_come_back_unchanged(emu, claude):
    emu.script("anthropic", Reply(tool_calls=[ToolCall("update_tasks", {"tasks": []}, id="toolu_1")],
                                  redacted_thinking=True))
    first = await claude.messages.create(model="claude-opus-5-5", max_tokens=4000, messages=[user("go")], tools=TOOLS)
    assert [b.type for b in first.content] == ["redacted_thinking", "thinking", "tool_use"]
    history = [user("go"), {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
               user([{"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"}])]
    assert (await claude.messages.create(model="claude-opus-5-5", max_tokens=4000, messages=history,
                                         tools=TOOLS)).stop_reason == "end_turn"
    history[1]["content"][0]["data"] = "Zm9yZ2Vk"
    with pytest.raises(anthropic.BadRequestError):
        await claude.messages.create(model="claude-opus-5-5", max_tokens=4000, messages=history, tools=TOOLS)


async def test_sonnet_5_5_text_between_tool_calls_arrives_in_thinking_blocks(emu, claude):
    note = "I will save the plan now."
    step = Reply(text=note, tool_calls=[ToolCall("update_tasks", {"tasks": []})])
    emu.script("anthropic", step, step, step)
    default = await claude.messages.create(model="claude-sonnet-5-5", max_tokens=4000, messages=[user("go")],
                                           tools=TOOLS)
    between = await claude.messages.create(model="claude-sonnet-5-5", max_tokens=4000, messages=[user("go")],
                                           tools=TOOLS, thinking={"type": "between_tools"})
    older = await claude.messages.create(model="claude-sonnet-4-6", max_tokens=4000, messages=[user("go")],
                                         tools=TOOLS)
    assert [b.type for b in default.content] == ["thinking", "thinking", "tool_use"]
    assert default.content[1].thinking == ""  # the default display hides the note too
    assert [(b.type, getattr(b, "thinking", None)) for b in between.content] == [("thinking", note), ("tool_use", None)]
    assert [b.type for b in older.content] == ["text", "tool_use"] and older.content[0].text == note


async def test_refusal_ends_with_stop_details_in_message_delta(emu, claude):
    emu.script("anthropic", Reply(text="I can start, but", refusal=("cyber", "This request could enable malware.")))
    async with claude.messages.stream(model="claude-sonnet-5-5", max_tokens=4000, messages=[user("x")]) as stream:
        deltas = [event async for event in stream if event.type == "message_delta"]
        final = await stream.get_final_message()
    assert final.stop_reason == "refusal"
    assert deltas[0].delta.stop_details.model_dump() == {"type": "refusal", "category": "cyber",
                                                         "explanation": "This request could enable malware."}
    assert final.content[-1].text == "I can start, but"


@pytest.mark.parametrize("model", ["claude-sonnet-4-6", "claude-opus-4-7", "claude-sonnet-5-5", "claude-haiku-5-5"])
def test_models_without_prefill_refuse_a_final_assistant_message(emu, model):
    status, text = raw(emu, body(model, user("hi"), {"role": "assistant", "content": "Sure, "}))
    assert status == 400
    assert json.loads(text)["error"]["message"] == ("This model does not support assistant message prefill. "
                                                    "The conversation must end with a user message.")


def test_haiku_4_5_still_takes_prefill(emu):
    status, _ = raw(emu, body("claude-haiku-4-5", user("hi"), {"role": "assistant", "content": "Sure, "}))
    assert status == 200


@pytest.mark.parametrize(("content", "message"), [
    ([{"type": "text", "text": ""}], "messages: text content blocks must be non-empty"),
    ([{"type": "text", "text": "  \n"}], "messages: text content blocks must contain non-whitespace text"),
    ("", "messages.0: all messages must have non-empty content except for the optional final assistant message"),
])
def test_empty_text_is_refused(emu, content, message):
    status, text = raw(emu, body("claude-sonnet-4-6", user(content)))
    assert status == 400 and json.loads(text)["error"]["message"] == message


async def test_unknown_and_retired_models_get_not_found(claude):
    for model in ("claude-nonexistent-9", "claude-3-5-sonnet-20241022"):
        with pytest.raises(anthropic.NotFoundError) as missing:
            await claude.messages.create(model=model, max_tokens=10, messages=[user("hi")])
        assert missing.value.body["error"] == {"type": "not_found_error", "message": f"model: {model}"}


async def test_models_endpoint_lists_through_the_sdk(claude):
    models = [m async for m in claude.models.list(limit=5)]  # pages by after_id
    ids = [m.id for m in models]
    assert ids[0] == "claude-fable-5-2" and "claude-haiku-5-5" in ids and len(ids) == len(set(ids)) > 5
    sonnet = await claude.models.retrieve("claude-sonnet-5-5")
    assert sonnet.capabilities.thinking.types.between_tools.supported
    assert not sonnet.capabilities.thinking.types.disabled.supported
    assert sonnet.max_input_tokens == 1_000_000 and sonnet.lifecycle == "active"
    assert next(m for m in models if m.id == "claude-3-5-sonnet-20241022").lifecycle == "retired"
    with pytest.raises(anthropic.NotFoundError):
        await claude.models.retrieve("claude-nope")


async def test_usage_carries_cache_fields_and_service_tier(claude):
    reply = await claude.messages.create(model="claude-haiku-4-5", max_tokens=100, messages=[user("hi")])
    usage = reply.usage
    assert usage.service_tier == "standard" and usage.input_tokens > 0
    assert (usage.cache_read_input_tokens, usage.cache_creation_input_tokens) == (0, 0)
    assert usage.cache_creation.ephemeral_5m_input_tokens == usage.cache_creation.ephemeral_1h_input_tokens == 0


def test_tests_can_make_a_configured_model_id_known(emu):
    assert raw(emu, body("claude-tiny"))[0] == 404
    emu.models.alias("claude-tiny", like="claude-haiku-4-5")
    status, text = raw(emu, body("claude-tiny"))
    assert status == 200 and json.loads(text)["model"] == "claude-tiny"


def test_forced_tool_use_is_refused_while_thinking(emu):
    forced = {"tools": TOOLS, "tool_choice": {"type": "any"}}
    status, text = raw(emu, body("claude-sonnet-5-5", **forced))
    assert status == 400 and json.loads(text)["error"]["message"] == (
        "Thinking may not be enabled when tool_choice forces tool use.")
    assert raw(emu, body("claude-sonnet-4-6", **forced))[0] == 200
