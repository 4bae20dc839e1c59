"""The unified history reaches each provider in its own shape (asserted on the wire)."""

from __future__ import annotations

import pytest
from providers.provider_helpers import BOTH, CLAUDE, GEMINI, MODELS, collect, finished, request, text_of

from duologue.daemon.providers.preparation import prepare_turns, render_code_context
from duologue.protocol.entities import CodeContextBlock, LineRange, ToolCallBlock, ToolResultBlock

CODE = CodeContextBlock(path="src/app.py", text="def f():\n    return 1\n", language="python",
                        range=LineRange(start=10, end=11))
PLAN = {"tasks": [{"content": "a", "status": "pending", "active_form": "A-ing"}]}


@pytest.fixture
def mixed_history(message):
    """Turns from both models, a tool round trip, a failed turn, a cancelled one, same-role runs."""
    return [
        message("user", "Explain this function", CODE),
        message("assistant", f"[emulator {CLAUDE}] It returns one.", model=CLAUDE),
        message("user", "Now plan the work"),
        message("assistant", f"[emulator {GEMINI}] Let me plan.",
                ToolCallBlock(id="call_1", name="update_tasks", input=PLAN), model=GEMINI),
        message("user", ToolResultBlock(call_id="call_1", name="update_tasks", content="ok")),
        message("assistant", f"[emulator {GEMINI}] Planned.", model=GEMINI),
        message("assistant", model=CLAUDE, status="failed"),
        message("user", "thanks"),
        message("user", "and one more thing"),
        message("assistant", f"[emulator {CLAUDE}] I was saying", model=CLAUDE, status="cancelled"),
        message("user", "continue"),
    ]


def _roles(body, name):
    if name == "anthropic":
        return [m["role"] for m in body["messages"]]
    return [c["role"] for c in body["contents"]]


@pytest.mark.parametrize("name", BOTH)
async def test_roles_strictly_alternate_after_merging_and_skipping(name, emu, make_provider, mixed_history):
    await collect(make_provider(name).stream(request(MODELS[name], mixed_history, system="Be brief.")))
    assistant = "assistant" if name == "anthropic" else "model"
    assert _roles(emu.received[-1].body, name) == ["user", assistant] * 4 + ["user"]


async def test_anthropic_request_puts_system_apart_and_encodes_tool_round_trip(emu, make_provider, mixed_history):
    await collect(make_provider("anthropic").stream(request(CLAUDE, mixed_history, system="Be brief.")))
    body = emu.received[-1].body
    assert body["system"] == [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}]
    messages = body["messages"]
    assert all(m["role"] != "system" for m in messages)
    tool_use = messages[3]["content"][1]
    assert tool_use == {"type": "tool_use", "id": "call_1", "name": "update_tasks", "input": PLAN}
    assert messages[4]["content"][0] == {"type": "tool_result", "tool_use_id": "call_1", "content": "ok",
                                         "is_error": False}
    assert [b["text"] for b in messages[6]["content"]] == ["thanks", "and one more thing"]
    assert messages[7]["content"][0]["text"].endswith("I was saying")


async def test_gemini_request_uses_model_role_system_instruction_and_function_parts(emu, make_provider,
                                                                                    mixed_history):
    await collect(make_provider("gemini").stream(request(GEMINI, mixed_history, system="Be brief.")))
    body = emu.received[-1].body
    assert body["systemInstruction"]["parts"] == [{"text": "Be brief."}]
    contents = body["contents"]
    call = contents[3]["parts"][1]["functionCall"]
    assert (call["name"], call["args"]) == ("update_tasks", PLAN)
    response = contents[4]["parts"][0]["functionResponse"]
    assert (response["name"], response["response"]) == ("update_tasks", {"output": "ok"})
    assert [p["text"] for p in contents[6]["parts"]] == ["thanks", "and one more thing"]


@pytest.mark.parametrize("name", BOTH)
async def test_code_context_is_sent_as_delimited_fenced_text(name, emu, make_provider, mixed_history):
    await collect(make_provider(name).stream(request(MODELS[name], mixed_history)))
    body = emu.received[-1].body
    first = body["messages"][0]["content"] if name == "anthropic" else body["contents"][0]["parts"]
    rendered = first[1]["text"]
    assert rendered.startswith('<code_context path="src/app.py" lines="10-11" language="python">')
    assert "```python\ndef f():\n    return 1\n```" in rendered


@pytest.mark.parametrize("name", BOTH)
async def test_history_from_both_models_is_visible_to_the_next_model(name, emu, make_provider, mixed_history):
    events = await collect(make_provider(name).stream(request(MODELS[name], mixed_history)))
    text = text_of(events)
    assert f"[emulator {MODELS[name]}]" in text
    assert "8 earlier turns (4 user, 4 assistant)" in text
    assert f"{CLAUDE} ×2" in text and f"{GEMINI} ×2" in text
    assert "“Explain this function" in text
    assert "You just said: “continue”" in text


@pytest.mark.parametrize("name", BOTH)
async def test_unanswered_tool_call_becomes_a_text_note(name, emu, make_provider, message):
    history = [
        message("user", "plan it"),
        message("assistant", "Planning", ToolCallBlock(id="call_9", name="update_tasks", input=PLAN),
                status="interrupted"),
        message("user", "never mind"),
    ]
    events = await collect(make_provider(name).stream(request(MODELS[name], history)))
    assert finished(events).stop_reason == "end_turn"  # the emulator rejects unpaired tool calls
    raw = str(emu.received[-1].body)
    assert "no result was recorded" in raw
    assert "tool_use" not in raw and "functionCall" not in raw and "function_call" not in raw


def test_code_fence_outgrows_backticks_inside_the_code():
    block = CodeContextBlock(path="README.md", text="```sh\nmake\n```")
    rendered = render_code_context(block)
    assert "\n````\n```sh\nmake\n```\n````\n" in rendered
    assert 'lines="' not in rendered and 'language="' not in rendered


def test_stray_tool_result_becomes_text_and_results_come_first(message):
    turns = prepare_turns([
        message("user", "hi"),
        message("assistant", "calling", ToolCallBlock(id="a", name="t")),
        message("user", "by the way", ToolResultBlock(call_id="a", name="t", content="1"),
                ToolResultBlock(call_id="zzz", name="t", content="2")),
    ])
    last = turns[-1].blocks
    assert isinstance(last[0], ToolResultBlock) and last[0].call_id == "a"
    assert [getattr(b, "text", None) for b in last[1:]] == ["by the way", "[result of tool t: 2]"]
