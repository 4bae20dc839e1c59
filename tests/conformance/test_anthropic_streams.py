"""Claude's streams, replayed through the anthropic SDK and AnthropicProvider: what the
adapter yields (shown and stored) and what it bills."""

from __future__ import annotations

from conformance.messages import (
    API_KEY,
    CLAUDE,
    TOOLS,
    collect,
    failure,
    finished,
    kinds,
    message,
    request,
    text_of,
    thinking_streamed,
)

from duologue.daemon.providers.base import ThinkingDone, ToolCallEvent
from duologue.protocol.entities import Refusal, Usage

PROMPT = [message("user", "How should I order the migration?", turn_id="t1")]


async def test_text_stream_with_ping_yields_text_then_end_turn_with_usage(replay) -> None:
    server, provider = replay("anthropic", "text_stream_with_ping")
    events = await collect(provider.stream(request(CLAUDE, PROMPT)))
    assert kinds(events) == ["TextDelta", "Finished"]
    assert text_of(events) == "Start with the schema, then move the readers."
    done = finished(events)
    assert (done.stop_reason, done.refusal, done.truncated_call) == ("end_turn", None, None)
    assert done.usage == Usage(input_tokens=412, output_tokens=14)
    sent = server.requests[0]
    assert (sent.method, sent.path) == ("POST", "/v1/messages")
    assert sent.headers.get("x-api-key") == API_KEY or sent.headers.get("authorization") == f"Bearer {API_KEY}"
    assert sent.headers.get("anthropic-version")
    body = sent.json()
    assert body["model"] == CLAUDE and body["stream"] is True
    assert body["messages"][-1]["role"] == "user"


async def test_thinking_streams_apart_from_text_and_closes_with_its_signature(replay) -> None:
    _, provider = replay("anthropic", "thinking_then_text")
    events = await collect(provider.stream(request(CLAUDE, PROMPT)))
    thought = "The user wants the order of the migration.\nSchema first, because readers depend on it."
    assert kinds(events) == ["ThinkingDelta", "ThinkingDone", "TextDelta", "Finished"]
    assert thinking_streamed(events) == thought
    done_blocks = [e for e in events if isinstance(e, ThinkingDone)]
    assert done_blocks == [ThinkingDone(
        text=thought,
        signature="XBfZH1+bj8NloE1is1dW4etIf581PIcOSXcdQcJOkhzTKqSnIJXXh8CP3gLlK/t2XgLWKQX8Eje7QhASUJMNoswJlG9c"
                  "j5nDwdAl/CqkD5gs6Ja4Qu0/kXCWG6JqwzfO",
        redacted=None)]
    assert text_of(events) == "Migrate the schema first, then the readers."
    done = finished(events)
    assert done.stop_reason == "end_turn"
    assert done.usage == Usage(input_tokens=1873, output_tokens=96, thinking_tokens=71)


async def test_tool_use_input_arrives_whole_after_its_partial_json(replay) -> None:
    _, provider = replay("anthropic", "tool_use_input_json_delta")
    events = await collect(provider.stream(request(CLAUDE, PROMPT, tools=TOOLS)))
    assert kinds(events) == ["TextDelta", "ToolCallEvent", "Finished"]
    call = next(e for e in events if isinstance(e, ToolCallEvent))
    assert call == ToolCallEvent(
        id="toolu_01SoY1zB5eXd7pTv9aMr4uNf", name="update_tasks",
        input={"tasks": [{"content": "Write the tests", "status": "pending", "active_form": "Writing the tests"}]},
        signature=None)
    assert finished(events).stop_reason == "tool_use"


async def test_refusal_keeps_partial_text_and_reports_stop_details(replay) -> None:
    _, provider = replay("anthropic", "refusal_with_stop_details")
    events = await collect(provider.stream(request(CLAUDE, PROMPT)))
    assert text_of(events) == "Here is how the loader"
    done = finished(events)
    assert done.stop_reason == "refusal"
    assert done.refusal == Refusal(
        provider="anthropic", category="cyber",
        explanation="This request may enable the development of malware, which our usage policy does not allow.")
    assert done.usage == Usage(input_tokens=344, output_tokens=9)


async def test_refusal_without_category_is_still_a_refusal(replay) -> None:
    _, provider = replay("anthropic", "refusal_without_category")
    events = await collect(provider.stream(request(CLAUDE, PROMPT)))
    assert kinds(events) == ["Finished"]
    done = finished(events)
    assert done.stop_reason == "refusal"
    assert done.refusal == Refusal(provider="anthropic", category=None, explanation=None)


async def test_cache_usage_bills_reads_and_5m_and_1h_writes_apart(replay) -> None:
    _, provider = replay("anthropic", "cache_usage_5m_1h")
    events = await collect(provider.stream(request(CLAUDE, PROMPT)))
    assert finished(events).usage == Usage(input_tokens=21, output_tokens=58, cache_read_tokens=18230,
                                           cache_write_tokens=1024, cache_write_1h_tokens=2048)


async def test_cache_write_without_ttl_breakdown_counts_as_5m_write(replay) -> None:
    _, provider = replay("anthropic", "cache_usage_without_breakdown")
    events = await collect(provider.stream(request(CLAUDE, PROMPT)))
    assert finished(events).usage == Usage(input_tokens=9, output_tokens=5, cache_write_tokens=1536)


async def test_overloaded_error_event_in_200_stream_is_overloaded(replay) -> None:
    _, provider = replay("anthropic", "error_event_overloaded_midstream")
    events, error = await failure(provider.stream(request(CLAUDE, PROMPT)))
    assert text_of(events) == "First, the"
    assert (error.kind, error.provider, error.retryable) == ("overloaded", "anthropic", True)
    assert "Overloaded" in error.provider_message


async def test_stream_closed_after_pings_without_message_stop_is_stream_cut(replay) -> None:
    _, provider = replay("anthropic", "cut_after_pings")
    events, error = await failure(provider.stream(request(CLAUDE, PROMPT)))
    assert text_of(events) == "Okay"
    assert (error.kind, error.retryable) == ("stream_cut", True)
    assert error.provider_message


async def test_max_tokens_inside_tool_call_names_the_cut_call_and_emits_no_call(replay) -> None:
    _, provider = replay("anthropic", "max_tokens_inside_tool_call")
    events = await collect(provider.stream(request(CLAUDE, PROMPT, tools=TOOLS)))
    assert not [e for e in events if isinstance(e, ToolCallEvent)], "an incomplete tool call was emitted"
    assert text_of(events) == "Recording the full plan."
    done = finished(events)
    assert (done.stop_reason, done.truncated_call) == ("max_tokens", "update_tasks")


async def test_max_tokens_in_text_has_no_truncated_call(replay) -> None:
    _, provider = replay("anthropic", "max_tokens_text")
    events = await collect(provider.stream(request(CLAUDE, PROMPT)))
    done = finished(events)
    assert (done.stop_reason, done.truncated_call) == ("max_tokens", None)
    assert text_of(events) == "The first step is to"


async def test_event_the_sdk_cannot_place_becomes_internal_error(replay) -> None:
    _, provider = replay("anthropic", "malformed_event_unknown_index")
    _, error = await failure(provider.stream(request(CLAUDE, PROMPT)))
    assert (error.kind, error.retryable) == ("internal", False)
    assert error.provider_message.strip()
    assert API_KEY not in error.provider_message


async def test_stream_of_only_keepalive_pings_ends_with_timeout(replay) -> None:
    import time

    _, provider = replay("anthropic", "keepalive_pings_only", timeout=1.5)
    started = time.monotonic()
    events, error = await failure(provider.stream(request(CLAUDE, PROMPT)))
    assert time.monotonic() - started < 10, "pings kept the turn alive"
    assert text_of(events) == "Okay"
    assert (error.kind, error.retryable) == ("timeout", True)
    assert error.provider_message
