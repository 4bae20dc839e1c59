"""What goes back in the next request, read from the bytes the real SDK sent.

The rule under test (issue 11, item 1): side data (thinking, redacted thinking,
signatures) goes back byte-exact and in its original place only to the model that
wrote the message; any other model gets no thinking and no signatures, and a Gemini 3
target gets Google's placeholder on a function call it did not write. A request never
ends with an assistant message, and a refused exchange is left out of later requests.
"""

from __future__ import annotations

from typing import Any

import pytest
from conformance.messages import (
    CLAUDE,
    GEMINI,
    PLACEHOLDER,
    TOOLS,
    assistant_from_events,
    collect,
    dumps,
    message,
    part_call,
    part_response,
    part_signature,
    request,
    results_for,
    same_bytes,
    text_of,
)

from duologue.daemon.providers.base import TextSignature, ToolCallEvent
from duologue.protocol.entities import TextBlock, ThinkingBlock, ToolCallBlock, ToolResultBlock

ASK = "Plan the migration and record the tasks."
TEXT_CASE = {"anthropic": "text_stream_with_ping", "gemini": "text_stream"}
MODEL = {"anthropic": CLAUDE, "gemini": GEMINI}


def _bare(block: dict[str, Any]) -> dict[str, Any]:
    """An Anthropic block without the cache breakpoint the daemon may put on it."""
    return {k: v for k, v in block.items() if k != "cache_control"}


def _texts(provider: str, body: dict[str, Any]) -> list[tuple[str, str]]:
    """(role, text) of every text block/part sent, in order."""
    out: list[tuple[str, str]] = []
    if provider == "anthropic":
        for msg in body["messages"]:
            content = msg["content"]
            if isinstance(content, str):
                out.append((msg["role"], content))
                continue
            out.extend((msg["role"], b["text"]) for b in content if b.get("type") == "text")
    else:
        for content in body["contents"]:
            role = "assistant" if content["role"] == "model" else "user"
            out.extend((role, p["text"]) for p in content["parts"] if "text" in p and not p.get("thought"))
    return out


def _roles(provider: str, body: dict[str, Any]) -> list[str]:
    if provider == "anthropic":
        return [m["role"] for m in body["messages"]]
    return ["assistant" if c["role"] == "model" else "user" for c in body["contents"]]


# -- Claude ---------------------------------------------------------------------------


async def test_claude_tool_continuation_resends_thinking_first_with_its_signature_unchanged(replay) -> None:
    server, provider = replay("anthropic", "thinking_tool_round")
    ask = message("user", ASK, turn_id="t1")
    round1 = await collect(provider.stream(request(CLAUDE, [ask], tools=TOOLS)))
    calls = [e for e in round1 if isinstance(e, ToolCallEvent)]
    assert [c.id for c in calls] == ["toolu_01QmW8xZ3cVb5nRt7yKp2sLd"]
    history = [ask, assistant_from_events(round1, CLAUDE), results_for(calls)]
    round2 = await collect(provider.stream(request(CLAUDE, history, tools=TOOLS)))
    assert text_of(round2) == "The plan is recorded: schema first, then readers."

    body = server.requests[1].json()
    assert _roles("anthropic", body) == ["user", "assistant", "user"]
    assistant = body["messages"][1]["content"]
    assert assistant[0] == {
        "type": "thinking",
        "thinking": "Two steps. I should record them as tasks before answering.",
        "signature": "lb8J/0dQpd/71MbDGKW2xvplBpYqj5x5zmZ92BfpvrGvvlkb+Ac9FA1VUwh5ksUm15/JRGpx47vGqgWa5v4XeepIt9Rg"
                     "0BR6WdCRMp/9XlInV1vCgzM+D3Oq+W4uJUZqmRXa8/uAYSq5fv9s2d6Tc62EDYJnq7nb",
    }
    assert [_bare(b) for b in assistant[1:]] == [
        {"type": "text", "text": "I'll write the plan down."},
        {"type": "tool_use", "id": "toolu_01QmW8xZ3cVb5nRt7yKp2sLd", "name": "update_tasks",
         "input": {"tasks": [{"content": "Migrate the schema", "status": "in_progress"},
                             {"content": "Move the readers", "status": "pending"}]}},
    ]
    result = _bare(body["messages"][2]["content"][0])
    assert (result["type"], result["tool_use_id"]) == ("tool_result", "toolu_01QmW8xZ3cVb5nRt7yKp2sLd")


async def test_claude_redacted_thinking_goes_back_unchanged_in_its_place(replay) -> None:
    server, provider = replay("anthropic", "redacted_thinking_tool_round")
    ask = message("user", ASK, turn_id="t1")
    round1 = await collect(provider.stream(request(CLAUDE, [ask], tools=TOOLS)))
    calls = [e for e in round1 if isinstance(e, ToolCallEvent)]
    history = [ask, assistant_from_events(round1, CLAUDE), results_for(calls)]
    await collect(provider.stream(request(CLAUDE, history, tools=TOOLS)))

    assistant = server.requests[1].json()["messages"][1]["content"]
    assert [b["type"] for b in assistant] == ["thinking", "redacted_thinking", "tool_use"]
    assert assistant[0]["signature"] == ("sbJ2/kCBuoBcohYqnCBO3/Gzp5TutFk9APGxFeuPpRR5cERV4sxD0khJhFg7VeswCHhODA4sOv"
                                         "rBN3s8EMGlzYa4atmzS7/3")
    assert assistant[1] == {
        "type": "redacted_thinking",
        "data": "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpPkNRj2YfWXGmKDxH4mPnZ5sQ7vB5URj2pa"
                "bcN8Hf+9nZqhAFyKhS8bV2+3wRk4tLqGpZlU9YxCcJmTnE7oFdGh0Ai",
    }


async def test_claude_never_gets_unsigned_thinking(replay) -> None:
    server, provider = replay("anthropic", "text_stream_with_ping")
    history = [
        message("user", "First question", turn_id="t1"),
        message("assistant", ThinkingBlock(text="half a thought"), TextBlock(text="First answer"), model=CLAUDE,
                turn_id="t1"),
        message("user", "Next question", turn_id="t2"),
    ]
    await collect(provider.stream(request(CLAUDE, history)))
    body = server.requests[0].json()
    assert "half a thought" not in dumps(body)
    assert [_bare(b) for b in body["messages"][1]["content"]] == [{"type": "text", "text": "First answer"}]


async def test_gemini_thinking_and_signatures_never_reach_claude_and_its_tool_round_becomes_text(replay) -> None:
    server, provider = replay("anthropic", "text_stream_with_ping")
    g1, g2, g3 = "R2VtaW5pVGhvdWdodA+/==", "R2VtaW5pVGV4dA+/", "R2VtaW5pQ2FsbA+/"
    history = [
        message("user", ASK, turn_id="t1"),
        message("assistant", ThinkingBlock(text="Gemini's own reasoning", signature=g1),
                TextBlock(text="Recording the plan.", signature=g2),
                ToolCallBlock(id="call_7f3a", name="update_tasks", input={"tasks": []}, signature=g3),
                model=GEMINI, turn_id="t1"),
        message("user", ToolResultBlock(call_id="call_7f3a", name="update_tasks", content='{"ok": true}'),
                turn_id="t1"),
    ]
    await collect(provider.stream(request(CLAUDE, history, tools=TOOLS)))
    body = server.requests[0].json()
    sent = dumps(body)
    for secret in (g1, g2, g3, "Gemini's own reasoning"):
        assert secret not in sent
    assistant = body["messages"][1]["content"]
    assert all(b["type"] not in ("thinking", "redacted_thinking") for b in assistant)
    assert all("signature" not in b for b in assistant)
    assert _bare(assistant[0]) == {"type": "text", "text": "Recording the plan."}
    # A thinking Claude model refuses a tool continuation whose assistant turn does not
    # open with its own thinking block (Extended thinking, "Preserving thinking blocks"),
    # and no Claude thinking exists for Gemini's calls: the round may only travel as text.
    blocks = [b for m in body["messages"] for b in m["content"] if isinstance(m["content"], list)]
    assert not [b for b in blocks if b["type"] in ("tool_use", "tool_result")]
    visible = " ".join(b.get("text", "") for b in blocks)
    assert "update_tasks" in visible and '{"ok": true}' in visible, "the tool round was lost, not translated"


async def test_claude_tool_round_written_by_another_claude_model_keeps_no_thinking_and_travels_as_text(replay) -> None:
    server, provider = replay("anthropic", "text_stream_with_ping")
    other = "claude-opus-5-5"
    sig = "EqQBCkYIBRgCKkDx4iV1c3hTb2ZsYXVkZU9wdXM="
    history = [
        message("user", ASK, turn_id="t1"),
        message("assistant", ThinkingBlock(text="Opus reasoning", signature=sig),
                ToolCallBlock(id="toolu_01OpUs", name="update_tasks", input={"tasks": []}), model=other,
                turn_id="t1"),
        message("user", ToolResultBlock(call_id="toolu_01OpUs", name="update_tasks", content='{"ok": true}'),
                turn_id="t1"),
    ]
    await collect(provider.stream(request(CLAUDE, history, tools=TOOLS)))
    body = server.requests[0].json()
    assert sig not in dumps(body) and "Opus reasoning" not in dumps(body)
    blocks = [b for m in body["messages"] for b in m["content"] if isinstance(m["content"], list)]
    assert not [b for b in blocks if b["type"] in ("thinking", "tool_use", "tool_result")]
    assert "update_tasks" in " ".join(b.get("text", "") for b in blocks)


# -- Gemini ---------------------------------------------------------------------------


async def test_gemini3_function_call_continuation_carries_its_signature_and_drops_unsigned_thoughts(replay) -> None:
    server, provider = replay("gemini", "function_call_round")
    ask = message("user", ASK, turn_id="t1")
    round1 = await collect(provider.stream(request(GEMINI, [ask], tools=TOOLS)))
    calls = [e for e in round1 if isinstance(e, ToolCallEvent)]
    assert len(calls) == 1
    history = [ask, assistant_from_events(round1, GEMINI), results_for(calls)]
    round2 = await collect(provider.stream(request(GEMINI, history, tools=TOOLS)))
    assert text_of(round2) == "The plan is recorded."
    assert TextSignature("9LLwVgA3kQdbWTSP152NbFTzZ2JsYhb/165GKaEfmLSupSdN1cfZ8Q==") in round2

    first = server.requests[0].json()
    declared = first["tools"][0].get("functionDeclarations", first["tools"][0].get("function_declarations"))
    assert "update_tasks" in [d["name"] for d in declared]

    contents = server.requests[1].json()["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    model_parts = contents[1]["parts"]
    assert "Recording the plan" not in dumps(contents), "unsigned thought text was sent back"
    assert not [p for p in model_parts if p.get("thought")]
    call_parts = [p for p in model_parts if part_call(p)]
    assert len(call_parts) == 1
    call = part_call(call_parts[0])
    assert call is not None and call["name"] == "update_tasks"
    assert call["args"] == {"tasks": [{"content": "Migrate the schema", "status": "in_progress"},
                                      {"content": "Move the readers", "status": "pending"}]}
    wire = "CiQBjz3x8IjRItB9S3UIqVQvrsiKT8TUUlQP7snJhlO8Wv58EE52eGS7ZyX7lTED2KxxGKqHrAjYIVs3"
    assert same_bytes(wire, part_signature(call_parts[0])), call_parts[0]
    answers = [part_response(p) for p in contents[2]["parts"] if part_response(p)]
    assert [a["name"] for a in answers if a] == ["update_tasks"]


async def test_gemini_text_signature_goes_back_on_its_text_part(replay) -> None:
    server, provider = replay("gemini", "text_signature_round")
    ask = message("user", "How should I order the migration?", turn_id="t1")
    round1 = await collect(provider.stream(request(GEMINI, [ask])))
    follow = message("user", "And the readers come last?", turn_id="t2")
    await collect(provider.stream(request(GEMINI, [ask, assistant_from_events(round1, GEMINI), follow])))

    contents = server.requests[1].json()["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    parts = contents[1]["parts"]
    assert "".join(p.get("text", "") for p in parts) == "Two steps: schema, then readers."
    signed = [p for p in parts if part_signature(p)]
    assert len(signed) == 1 and signed[0] is parts[-1] and "text" in signed[0], parts
    assert same_bytes("9LLwVgA3kQdbWTSP152NbFTzZ2JsYhb/165GKaEfmLSupSdN1cfZ8Q==", part_signature(signed[0]))


async def test_gemini_signed_thought_goes_back_as_a_thought_part_and_unsigned_is_dropped(replay) -> None:
    server, provider = replay("gemini", "text_stream")
    sig = "g+vSzvtJKLO1fe7FnaWxt+qbCSs+go28ty8Ewal6JfW/lj9dhBJetVfKIbX6aTuP"
    history = [
        message("user", "First question", turn_id="t1"),
        message("assistant", ThinkingBlock(text="unsigned summary"), ThinkingBlock(text="signed thought", signature=sig),
                TextBlock(text="First answer"), model=GEMINI, turn_id="t1"),
        message("user", "Next question", turn_id="t2"),
    ]
    await collect(provider.stream(request(GEMINI, history)))
    parts = server.requests[0].json()["contents"][1]["parts"]
    assert "unsigned summary" not in dumps(parts)
    assert parts[0]["text"] == "signed thought" and parts[0].get("thought") is True
    assert same_bytes(sig, part_signature(parts[0]))
    assert parts[1] == {"text": "First answer"}


async def test_gemini3_gets_the_placeholder_for_a_claude_function_call_and_no_claude_thinking(replay) -> None:
    server, provider = replay("gemini", "text_stream")
    claude_sig = "EqQBCkYIBRgCKkDx4iV1c3hTb2ZsYXVkZVNpZ25hdHVyZQ=="
    history = [
        message("user", ASK, turn_id="t1"),
        message("assistant", ThinkingBlock(text="Claude's own reasoning", signature=claude_sig),
                TextBlock(text="Recording the plan."),
                ToolCallBlock(id="toolu_01AbCdEfGh", name="update_tasks", input={"tasks": []}),
                model=CLAUDE, turn_id="t1"),
        message("user", ToolResultBlock(call_id="toolu_01AbCdEfGh", name="update_tasks", content='{"ok": true}'),
                turn_id="t1"),
    ]
    await collect(provider.stream(request(GEMINI, history, tools=TOOLS)))
    contents = server.requests[0].json()["contents"]
    sent = dumps(contents)
    assert claude_sig not in sent and "Claude's own reasoning" not in sent
    parts = contents[1]["parts"]
    assert not [p for p in parts if p.get("thought")]
    text_parts = [p for p in parts if "text" in p]
    assert text_parts == [{"text": "Recording the plan."}]
    call_parts = [p for p in parts if part_call(p)]
    assert len(call_parts) == 1
    assert same_bytes(PLACEHOLDER, part_signature(call_parts[0])), call_parts[0]


# -- both -----------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["failed", "cancelled", "interrupted"])
@pytest.mark.parametrize("provider_name", ["anthropic", "gemini"])
async def test_request_never_ends_with_the_current_turns_broken_attempt(replay, provider_name: str,
                                                                         status: str) -> None:
    server, provider = replay(provider_name, TEXT_CASE[provider_name])
    history = [
        message("user", "Earlier question", turn_id="t0"),
        message("assistant", "Earlier answer", model=MODEL[provider_name], turn_id="t0"),
        message("user", "How should I order the migration?", turn_id="t1"),
        message("assistant", "Partial attempt that broke", model=MODEL[provider_name], status=status, turn_id="t1"),
    ]
    await collect(provider.stream(request(MODEL[provider_name], history)))
    body = server.requests[0].json()
    assert _roles(provider_name, body)[-1] == "user"
    assert _texts(provider_name, body) == [("user", "Earlier question"), ("assistant", "Earlier answer"),
                                           ("user", "How should I order the migration?")]


@pytest.mark.parametrize("provider_name", ["anthropic", "gemini"])
async def test_refused_exchange_and_its_prompt_are_left_out_of_later_requests(replay, provider_name: str) -> None:
    server, provider = replay(provider_name, TEXT_CASE[provider_name])
    model = MODEL[provider_name]
    history = [
        message("user", "First question", turn_id="t1"),
        message("assistant", "First answer", model=model, turn_id="t1"),
        message("user", "The refused question", turn_id="t2"),
        message("assistant", "Partial text before the refusal", model=model, status="refused", turn_id="t2"),
        message("user", "Next question", turn_id="t3"),
    ]
    await collect(provider.stream(request(model, history)))
    body = server.requests[0].json()
    assert _texts(provider_name, body) == [("user", "First question"), ("assistant", "First answer"),
                                           ("user", "Next question")]
