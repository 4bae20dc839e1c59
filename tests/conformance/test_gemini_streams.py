"""Gemini's streams, replayed through google-genai and GeminiProvider: what the adapter
yields (shown and stored) and what it bills."""

from __future__ import annotations

from conformance.messages import (
    API_KEY,
    GEMINI,
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

from duologue.daemon.providers.base import TextDelta, TextSignature, ThinkingDone, ToolCallEvent
from duologue.protocol.entities import Usage

PROMPT = [message("user", "How should I order the migration?", turn_id="t1")]
S1 = "x77tisbCaHjOJVO/dx+kXfcfIC2O0BRPQnirpRyAlEQAMGlBACUno9hStPoecuZSkZyK2FkhmBedIcgh"
S2 = "g+vSzvtJKLO1fe7FnaWxt+qbCSs+go28ty8Ewal6JfW/lj9dhBJetVfKIbX6aTuP"
S4 = "CiQBjz3x8IjRItB9S3UIqVQvrsiKT8TUUlQP7snJhlO8Wv58EE52eGS7ZyX7lTED2KxxGKqHrAjYIVs3"


async def test_text_stream_yields_text_then_end_turn_billing_thoughts_as_output(replay) -> None:
    server, provider = replay("gemini", "text_stream")
    events = await collect(provider.stream(request(GEMINI, PROMPT)))
    assert kinds(events) == ["TextDelta", "Finished"]
    assert text_of(events) == "Start with the schema, then move the readers."
    done = finished(events)
    assert (done.stop_reason, done.refusal) == ("end_turn", None)
    assert done.usage == Usage(input_tokens=398, output_tokens=12 + 146, thinking_tokens=146)
    sent = server.requests[0]
    assert sent.path == f"/v1beta/models/{GEMINI}:streamGenerateContent"
    assert sent.query.get("alt") == ["sse"]
    assert sent.headers.get("x-goog-api-key") == API_KEY


async def test_signature_on_an_empty_final_part_is_a_text_signature_alone(replay) -> None:
    _, provider = replay("gemini", "text_signature_in_final_empty_part")
    events = await collect(provider.stream(request(GEMINI, PROMPT)))
    assert events[:-1] == [TextDelta("Schema first,"), TextDelta(" then the readers."), TextSignature(S1)]
    assert finished(events).stop_reason == "end_turn"


async def test_signature_on_the_last_text_part_follows_that_parts_text(replay) -> None:
    _, provider = replay("gemini", "text_signature_on_last_text_part")
    events = await collect(provider.stream(request(GEMINI, PROMPT)))
    assert events[:-1] == [TextDelta("Schema first,"), TextDelta(" then the readers."), TextSignature(S2)]
    assert finished(events).usage == Usage(input_tokens=402, output_tokens=9 + 188, thinking_tokens=188)


async def test_thought_parts_are_thinking_never_reply_text(replay) -> None:
    _, provider = replay("gemini", "thought_summaries_then_text")
    events = await collect(provider.stream(request(GEMINI, PROMPT)))
    thoughts = ("**Ordering the migration**\n\nThe readers depend on the new columns, so the schema has to land first.\n"
                "**Checking rollback**\n\nEach step can be undone on its own.\n")
    assert thinking_streamed(events) == thoughts
    done_blocks = [e for e in events if isinstance(e, ThinkingDone)]
    assert "".join(b.text for b in done_blocks) == thoughts
    assert all(b.signature is None and b.redacted is None for b in done_blocks), done_blocks
    assert text_of(events) == "Migrate the schema, then the readers. Each step can be rolled back."
    order = kinds(events)
    assert order.index("TextDelta") > max(i for i, k in enumerate(order) if k.startswith("Thinking"))
    assert events[-2] == TextSignature(S4)
    assert finished(events).usage == Usage(input_tokens=388, output_tokens=14 + 611, thinking_tokens=611)


async def test_cached_content_is_taken_out_of_the_prompt_and_billed_as_cache_read(replay) -> None:
    _, provider = replay("gemini", "usage_cached_and_thoughts")
    events = await collect(provider.stream(request(GEMINI, PROMPT)))
    assert finished(events).usage == Usage(input_tokens=12000 - 8192, output_tokens=150 + 1200,
                                           cache_read_tokens=8192, thinking_tokens=1200)


async def test_function_call_carries_its_thought_signature_as_on_the_wire(replay) -> None:
    _, provider = replay("gemini", "function_call_with_signature")
    events = await collect(provider.stream(request(GEMINI, PROMPT, tools=TOOLS)))
    calls = [e for e in events if isinstance(e, ToolCallEvent)]
    assert len(calls) == 1
    assert calls[0].id
    assert (calls[0].name, calls[0].input, calls[0].signature) == (
        "update_tasks", {"tasks": [{"content": "Migrate the schema", "status": "in_progress"}]}, S1)
    assert finished(events).stop_reason == "tool_use"


async def test_parallel_calls_keep_the_signature_on_the_first_call_only(replay) -> None:
    _, provider = replay("gemini", "parallel_function_calls")
    events = await collect(provider.stream(request(GEMINI, PROMPT, tools=TOOLS)))
    calls = [e for e in events if isinstance(e, ToolCallEvent)]
    assert [(c.name, c.input, c.signature) for c in calls] == [
        ("read_file", {"path": "schema.sql"}, S2), ("read_file", {"path": "readers.py"}, None)]
    assert len({c.id for c in calls}) == 2 and all(calls[i].id for i in range(2))
    assert finished(events).stop_reason == "tool_use"


async def test_blocked_prompt_is_a_refusal_not_an_error(replay) -> None:
    _, provider = replay("gemini", "prompt_blocked_prohibited")
    events = await collect(provider.stream(request(GEMINI, PROMPT)))
    assert kinds(events) == ["Finished"]
    done = finished(events)
    assert done.stop_reason == "refusal"
    assert done.refusal is not None
    assert (done.refusal.provider, done.refusal.category) == ("gemini", "PROHIBITED_CONTENT")
    assert "prompt" in (done.refusal.explanation or "").lower()
    assert done.usage.input_tokens == 57


async def test_prompt_blocked_for_safety_is_a_refusal_naming_safety(replay) -> None:
    _, provider = replay("gemini", "prompt_blocked_safety")
    events = await collect(provider.stream(request(GEMINI, PROMPT)))
    done = finished(events)
    assert done.stop_reason == "refusal" and done.refusal is not None
    assert (done.refusal.provider, done.refusal.category) == ("gemini", "SAFETY")
    assert "prompt" in (done.refusal.explanation or "").lower()


async def test_malformed_function_call_is_a_malformed_error_not_an_empty_reply(replay) -> None:
    _, provider = replay("gemini", "malformed_function_call")
    events, error = await failure(provider.stream(request(GEMINI, PROMPT, tools=TOOLS)))
    assert not [e for e in events if isinstance(e, ToolCallEvent)]
    assert (error.kind, error.provider, error.retryable) == ("malformed", "gemini", False)
    assert "malformed" in error.provider_message.lower()


async def test_safety_stop_after_partial_text_is_a_refusal_keeping_the_text(replay) -> None:
    _, provider = replay("gemini", "safety_after_partial_text")
    events = await collect(provider.stream(request(GEMINI, PROMPT)))
    assert text_of(events) == "To mix the two compounds you"
    done = finished(events)
    assert done.stop_reason == "refusal" and done.refusal is not None
    assert (done.refusal.provider, done.refusal.category) == ("gemini", "SAFETY")
    assert (done.refusal.explanation or "").strip()
    assert done.usage == Usage(input_tokens=77, output_tokens=7 + 90, thinking_tokens=90)


async def test_recitation_stop_is_a_refusal_naming_recitation(replay) -> None:
    _, provider = replay("gemini", "recitation_after_partial_text")
    events = await collect(provider.stream(request(GEMINI, PROMPT)))
    assert text_of(events) == "Here are the opening lines:\n\n"
    done = finished(events)
    assert done.stop_reason == "refusal" and done.refusal is not None
    assert (done.refusal.provider, done.refusal.category) == ("gemini", "RECITATION")
    assert (done.refusal.explanation or "").strip()


async def test_max_tokens_in_text_is_max_tokens(replay) -> None:
    _, provider = replay("gemini", "max_tokens_text")
    events = await collect(provider.stream(request(GEMINI, PROMPT)))
    assert text_of(events) == "The first step is to"
    done = finished(events)
    assert (done.stop_reason, done.truncated_call) == ("max_tokens", None)


async def test_budget_spent_on_thinking_is_max_tokens_billed_as_thinking(replay) -> None:
    _, provider = replay("gemini", "max_tokens_all_thinking")
    events = await collect(provider.stream(request(GEMINI, PROMPT)))
    assert kinds(events) == ["Finished"]
    done = finished(events)
    assert done.stop_reason == "max_tokens"
    assert done.usage == Usage(input_tokens=210, output_tokens=1024, thinking_tokens=1024)


async def test_error_object_inside_a_200_stream_is_overloaded(replay) -> None:
    _, provider = replay("gemini", "error_chunk_in_200_stream")
    events, error = await failure(provider.stream(request(GEMINI, PROMPT)))
    assert text_of(events) == "First,"
    assert (error.kind, error.status, error.retryable) == ("overloaded", 503, True)
    assert "overloaded" in error.provider_message.lower()


async def test_stream_ending_without_finish_reason_is_stream_cut(replay) -> None:
    _, provider = replay("gemini", "stream_cut_without_finish_reason")
    events, error = await failure(provider.stream(request(GEMINI, PROMPT)))
    assert text_of(events) == "Start with the schema"
    assert (error.kind, error.retryable) == ("stream_cut", True)
