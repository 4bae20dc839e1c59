"""The one rule for provider side data, refusals and prefill, on the request bodies.

Pure: the adapters' request builders are fed stored messages and the bodies they
would send are read back (docs/protocol.md, section 13).
"""

from __future__ import annotations

import base64
import itertools
from datetime import UTC, datetime

from duologue.daemon.providers.anthropic import build_params
from duologue.daemon.providers.base import TurnRequest
from duologue.daemon.providers.gemini import PLACEHOLDER_SIGNATURE, build_config, build_contents, signature_text
from duologue.protocol.entities import (
    ContentBlock,
    Message,
    ModelInfo,
    Pricing,
    Refusal,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
    ToolResultBlock,
)

SONNET = "claude-sonnet-5-5"
OPUS = "claude-opus-5-5"
FLASH = "gemini-3.8-flash"
PRO = "gemini-3.1-pro-preview"
SIG = "EqQBCkgIARABGAIiQL2f" + "x" * 40
GEM_SIG = signature_text(b"\x01\x02gemini-signed\xff")
_seq = itertools.count(1)


def msg(role: str, *content: ContentBlock | str, model: str | None = None, status: str = "complete",
        turn: str | None = None, refusal: Refusal | None = None) -> Message:
    seq = next(_seq)
    blocks = [TextBlock(text=c) if isinstance(c, str) else c for c in content]
    return Message(id=f"m{seq}", session_id="s", seq=seq, role=role, content=blocks,  # type: ignore[arg-type]
                   created_at=datetime(2026, 12, 1, tzinfo=UTC), model=model, turn_id=turn or f"t{seq}",
                   status=status, refusal=refusal)  # type: ignore[arg-type]


def info(model: str, thinking: str = "default", control: str = "effort") -> ModelInfo:
    provider = "anthropic" if model.startswith("claude") else "gemini"
    return ModelInfo(id=model, provider=provider, display_name=model, short_name=model, context_window=1_000_000,
                     max_output_tokens=64_000, pricing=Pricing(input_per_mtok=1, output_per_mtok=2), tier="balanced",
                     thinking=thinking, thinking_control=control, forbids_prefill=provider == "anthropic")  # type: ignore[arg-type]


def claude(messages: list[Message], model: str = SONNET, **kw: object) -> dict:
    return build_params(TurnRequest(model=model, system=None, messages=messages, info=info(model), **kw))  # type: ignore[arg-type]


def gemini(messages: list[Message], model: str = FLASH) -> list[dict]:
    return build_contents(TurnRequest(model=model, system=None, messages=messages,
                                      info=info(model, "always", "level")))


def tool_round(model: str, *, thinking: bool) -> list[Message]:
    blocks: list[ContentBlock] = [ThinkingBlock(text="I should plan.", signature=SIG)] if thinking else []
    blocks.append(ToolCallBlock(id="toolu_1", name="update_tasks", input={"tasks": []},
                                signature=GEM_SIG if model.startswith("gemini") else None))
    return [msg("user", "plan it", turn="t"), msg("assistant", *blocks, model=model, turn="t"),
            msg("user", ToolResultBlock(call_id="toolu_1", name="update_tasks", content="ok"), turn="t")]


def test_claude_gets_its_own_thinking_back_first_and_unchanged_in_a_tool_continuation():
    body = claude(tool_round(SONNET, thinking=True))
    assistant = body["messages"][1]["content"]
    assert assistant[0] == {"type": "thinking", "thinking": "I should plan.", "signature": SIG}
    assert assistant[1]["type"] == "tool_use"


def test_another_claude_model_gets_neither_the_thinking_nor_the_structured_calls():
    body = claude(tool_round(SONNET, thinking=True), model=OPUS)
    assistant = body["messages"][1]["content"]
    assert all(b["type"] == "text" for b in assistant)
    assert "called tool update_tasks" in assistant[0]["text"]
    assert "result of tool update_tasks" in body["messages"][2]["content"][0]["text"]


def test_a_tool_round_gemini_started_reaches_claude_as_notes_not_as_an_unthought_tool_use():
    body = claude(tool_round(FLASH, thinking=False))
    kinds = [b["type"] for m in body["messages"] for b in m["content"]]
    assert "tool_use" not in kinds and "tool_result" not in kinds


def test_redacted_thinking_goes_back_as_its_data():
    messages = tool_round(SONNET, thinking=False)
    messages[1] = msg("assistant", ThinkingBlock(redacted="ENCRYPTED=="),
                      ToolCallBlock(id="toolu_1", name="update_tasks"), model=SONNET, turn="t")
    assert claude(messages)["messages"][1]["content"][0] == {"type": "redacted_thinking", "data": "ENCRYPTED=="}


def test_unsigned_thinking_is_never_sent():
    messages = [msg("user", "hi"), msg("assistant", ThinkingBlock(text="imported thought"), "hello", model=SONNET),
                msg("user", "again")]
    assert claude(messages)["messages"][1]["content"] == [{"type": "text", "text": "hello"}]
    own = [msg("user", "hi"), msg("assistant", ThinkingBlock(text="imported thought"), "hello", model=FLASH),
           msg("user", "again")]
    assert all("thought" not in p for c in gemini(own) for p in c["parts"])


def test_gemini_gets_its_own_signatures_back_on_the_call_and_the_text():
    messages = tool_round(FLASH, thinking=False)
    messages.insert(1, msg("assistant", TextBlock(text="Let me look.", signature=GEM_SIG), model=FLASH, turn="t0"))
    messages.insert(2, msg("user", "go on", turn="t0"))
    contents = gemini(messages)
    assert contents[1]["parts"][0]["thought_signature"] == b"\x01\x02gemini-signed\xff"
    call = contents[3]["parts"][0]
    assert "function_call" in call and call["thought_signature"] == b"\x01\x02gemini-signed\xff"


def test_a_function_call_from_another_model_gets_googles_placeholder_signature():
    contents = gemini(tool_round(SONNET, thinking=True), model=PRO)
    parts = contents[1]["parts"]
    assert [p.get("thought") for p in parts] == [None]  # Claude's thinking is not sent
    assert parts[0]["function_call"]["name"] == "update_tasks"
    assert base64.urlsafe_b64encode(parts[0]["thought_signature"]).decode() == PLACEHOLDER_SIGNATURE  # as the SDK writes it


def test_only_the_first_of_parallel_calls_carries_the_signature():
    calls = [ToolCallBlock(id=f"c{i}", name="update_tasks", signature=GEM_SIG if i == 0 else None) for i in range(2)]
    results = [ToolResultBlock(call_id=f"c{i}", name="update_tasks", content="ok") for i in range(2)]
    contents = gemini([msg("user", "go", turn="t"), msg("assistant", *calls, model=FLASH, turn="t"),
                       msg("user", *results, turn="t")])
    assert ["thought_signature" in p for p in contents[1]["parts"]] == [True, False]


def test_a_failed_attempt_never_becomes_a_trailing_assistant_message():
    messages = [msg("user", "explain", turn="t"),
                msg("assistant", "Partial answ", model=SONNET, status="failed", turn="t")]
    assert claude(messages, model=OPUS)["messages"][-1]["role"] == "user"
    assert gemini(messages)[-1]["role"] == "user"


def test_a_refused_exchange_is_left_out_of_later_requests():
    refusal = Refusal(provider="anthropic", category="cyber", explanation="no")
    messages = [msg("user", "something bad", turn="r"),
                msg("assistant", "I can't", model=SONNET, status="refused", turn="r", refusal=refusal),
                msg("user", "tell me about LMDB")]
    sent = claude(messages)["messages"]
    assert [m["content"][0]["text"] for m in sent] == ["tell me about LMDB"]


def test_claude_requests_mark_tools_system_and_the_last_two_user_turns_for_caching():
    messages = [msg("user", "one"), msg("assistant", "a", model=SONNET), msg("user", "two"),
                msg("assistant", "b", model=SONNET), msg("user", "three")]
    body = build_params(TurnRequest(model=SONNET, system="Be brief.", messages=messages, info=info(SONNET),
                                    tools=[]))
    assert body["system"][-1]["cache_control"] == {"type": "ephemeral"}
    marked = [m["content"][-1]["text"] for m in body["messages"] if "cache_control" in m["content"][-1]]
    assert marked == ["two", "three"]


def test_the_same_history_renders_the_same_bytes_every_time():
    messages = tool_round(SONNET, thinking=True)
    assert claude(messages) == claude(list(messages))


def test_thinking_depth_maps_onto_each_models_control():
    assert claude([msg("user", "x")], thinking="high")["output_config"] == {"effort": "high"}
    assert claude([msg("user", "x")], thinking="off")["thinking"] == {"type": "between_tools"}
    assert claude([msg("user", "x")])["thinking"] == {"type": "adaptive", "display": "summarized"}
    haiku = TurnRequest(model="claude-haiku-4-5", system=None, messages=[msg("user", "x")], max_tokens=8192,
                        info=info("claude-haiku-4-5", "optional", "budget"), thinking="medium")
    params = build_params(haiku)
    assert params["thinking"] == {"type": "enabled", "budget_tokens": 8192}
    assert params["max_tokens"] > 8192
    config = build_config(TurnRequest(model=PRO, system=None, messages=[], info=info(PRO, "always", "level"),
                                      thinking="low"))
    assert config["thinking_config"] == {"include_thoughts": True, "thinking_level": "LOW"}
