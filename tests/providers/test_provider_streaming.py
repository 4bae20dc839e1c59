"""Streaming through the real SDKs against the emulator: deltas, tool calls, usage."""

from __future__ import annotations

import pytest
from providers.provider_helpers import BOTH, MODELS, collect, finished, request, text_of, tool_calls

from duologue.daemon.emulator import Reply, ToolCall, Usage
from duologue.daemon.providers import TextDelta, ToolSpec

TASK_TOOL = ToolSpec("update_tasks", "Replace the session's task list.",
                     {"type": "object", "properties": {"tasks": {"type": "array"}}, "required": ["tasks"]})


@pytest.mark.parametrize("name", BOTH)
async def test_text_arrives_in_several_deltas(name, emu, make_provider, message):
    emu.script(name, Reply(chunks=["Hel", "lo, ", "wor", "ld"], chunk_delay=0.005))
    events = await collect(make_provider(name).stream(request(MODELS[name], [message("user", "hi")])))
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert deltas == ["Hel", "lo, ", "wor", "ld"]
    assert finished(events).stop_reason == "end_turn"


@pytest.mark.parametrize("name", BOTH)
async def test_default_reply_streams_word_by_word(name, emu, make_provider, message):
    events = await collect(make_provider(name).stream(request(MODELS[name], [message("user", "hello")])))
    assert len([e for e in events if isinstance(e, TextDelta)]) > 5
    assert text_of(events).startswith(f"[emulator {MODELS[name]}]")


@pytest.mark.parametrize("name", BOTH)
async def test_finished_carries_usage_and_normalised_stop_reason(name, emu, make_provider, message):
    emu.script(name, Reply(text="cut short", usage=Usage(input_tokens=42, output_tokens=7), stop_reason="max_tokens"))
    events = await collect(make_provider(name).stream(request(MODELS[name], [message("user", "hi")])))
    done = finished(events)
    assert done.stop_reason == "max_tokens"
    assert (done.usage.input_tokens, done.usage.output_tokens) == (42, 7)


@pytest.mark.parametrize("name", BOTH)
async def test_approximate_usage_is_reported_without_override(name, emu, make_provider, message):
    events = await collect(make_provider(name).stream(request(MODELS[name], [message("user", "hi")])))
    usage = finished(events).usage
    assert usage.input_tokens > 0 and usage.output_tokens > 0


@pytest.mark.parametrize("name", BOTH)
async def test_tool_call_event_carries_complete_input(name, emu, make_provider, message):
    tasks = {"tasks": [{"content": "write tests", "status": "in_progress", "active_form": "Writing tests"}]}
    emu.script(name, Reply(text="On it.", tool_calls=[ToolCall("update_tasks", tasks, id="call_1")]))
    req = request(MODELS[name], [message("user", "go")], tools=[TASK_TOOL])
    events = await collect(make_provider(name).stream(req))
    [call] = tool_calls(events)
    assert (call.id, call.name, call.input) == ("call_1", "update_tasks", tasks)
    assert text_of(events) == "On it."
    assert finished(events).stop_reason == "tool_use"


@pytest.mark.parametrize("name", BOTH)
async def test_tools_are_offered_in_the_provider_shape(name, emu, make_provider, message):
    req = request(MODELS[name], [message("user", "go")], tools=[TASK_TOOL])
    await collect(make_provider(name).stream(req))
    body = emu.received[-1].body
    if name == "anthropic":
        assert body["tools"] == [{"name": "update_tasks", "description": TASK_TOOL.description,
                                  "input_schema": TASK_TOOL.parameters, "cache_control": {"type": "ephemeral"}}]
    else:
        [declaration] = body["tools"][0]["functionDeclarations"]
        assert declaration["name"] == "update_tasks"
        schema = declaration.get("parametersJsonSchema", declaration.get("parameters_json_schema"))
        assert schema == TASK_TOOL.parameters


@pytest.mark.parametrize("name", BOTH)
async def test_max_tokens_reaches_the_request(name, emu, make_provider, message):
    req = request(MODELS[name], [message("user", "go")], max_tokens=123)
    await collect(make_provider(name).stream(req))
    body = emu.received[-1].body
    assert (body["max_tokens"] if name == "anthropic" else body["generationConfig"]["maxOutputTokens"]) == 123


@pytest.mark.parametrize("name", BOTH)
async def test_closing_the_stream_early_keeps_the_provider_usable(name, emu, make_provider, message):
    provider = make_provider(name)
    emu.script(name, Reply(text="one two three four five six", chunk_delay=0.01))
    stream = provider.stream(request(MODELS[name], [message("user", "hi")]))
    first = await anext(stream)
    assert isinstance(first, TextDelta)
    await stream.aclose()
    events = await collect(provider.stream(request(MODELS[name], [message("user", "again")])))
    assert finished(events).stop_reason == "end_turn"
