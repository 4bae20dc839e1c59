"""Any history, however ragged, becomes a request both APIs accept.

The emulator's wire validators (the same checks the real APIs make: alternation,
tool calls answered in the very next turn, one response per call) serve as the
oracle, without HTTP, so hypothesis can try many transcripts quickly.
"""

from __future__ import annotations

import base64

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from duologue.daemon.catalog import Catalog
from duologue.daemon.emulator import anthropic_wire, gemini_wire
from duologue.daemon.providers import TurnRequest
from duologue.daemon.providers.anthropic import build_params
from duologue.daemon.providers.gemini import build_contents
from duologue.daemon.providers.preparation import prepare_turns
from duologue.protocol.entities import (
    CodeContextBlock,
    Message,
    TextBlock,
    ToolCallBlock,
    ToolResultBlock,
)

ids = st.sampled_from(["c1", "c2", "c3", "odd id/with:chars"])
blocks = st.one_of(
    st.builds(TextBlock, text=st.sampled_from(["", "  ", "hello", "```x```"])),
    st.builds(CodeContextBlock, path=st.just("a.py"), text=st.text(max_size=20)),
    st.builds(ToolCallBlock, id=ids, name=st.just("update_tasks"), input=st.just({"tasks": []})),
    st.builds(ToolResultBlock, call_id=ids, name=st.just("update_tasks"), content=st.just("ok"),
              is_error=st.booleans()),
)
messages = st.lists(
    st.tuples(st.sampled_from(["user", "assistant"]), st.lists(blocks, max_size=4),
              st.sampled_from(["complete", "cancelled", "interrupted", "failed", "streaming"])),
    min_size=1, max_size=10,
)


def _history(raw: list[tuple[str, list, str]]) -> list[Message]:
    history = []
    for seq, (role, content, status) in enumerate(raw, start=1):
        # Call ids are unique per assistant message in practice; keep them so here.
        if role == "assistant":
            seen: set[str] = set()
            content = [b for b in content if not isinstance(b, ToolCallBlock) or not (b.id in seen or seen.add(b.id))]
        history.append(Message(id=f"m{seq}", session_id="s", seq=seq, role=role, content=content,
                               created_at=datetime(2026, 1, 1, tzinfo=UTC), status=status))
    history.append(Message(id="last", session_id="s", seq=99, role="user", content=[TextBlock(text="now?")],
                           created_at=datetime(2026, 1, 1, tzinfo=UTC)))
    return history


SONNET = Catalog().resolve("claude-sonnet-5-5")
FLASH = Catalog().resolve("gemini-3.8-flash")


def _wire_contents(contents: list[dict]) -> list[dict]:
    """Contents as the SDK puts them on the wire (bytes as url-safe base64)."""
    def part(p: dict) -> dict:
        signature = p.get("thought_signature")
        if signature is None:
            return p
        return {**p, "thought_signature": base64.urlsafe_b64encode(signature).decode()}
    return [{**c, "parts": [part(p) for p in c["parts"]]} for c in contents]


@settings(max_examples=300, deadline=None)
@given(messages)
def test_any_history_translates_to_valid_requests_for_both_apis(raw):
    history = _history(raw)
    turns = prepare_turns(history)
    assert all(turn.blocks for turn in turns)
    assert all(a.role != b.role for a, b in zip(turns, turns[1:], strict=False))

    # current models, which demand the most: Sonnet 5.5 thinks (a tool continuation must
    # open with its thinking block), Gemini 3 wants a signature on every function call
    claude = TurnRequest(model=SONNET.id, system="s", messages=history, tools=[], max_tokens=100, info=SONNET)
    params = build_params(claude)
    anthropic_wire.parse_request({"model": SONNET.id, "max_tokens": 100, "messages": params["messages"],
                                  **{k: params[k] for k in ("thinking", "system") if k in params}})
    gemini = TurnRequest(model=FLASH.id, system="s", messages=history, tools=[], max_tokens=100, info=FLASH)
    gemini_wire.parse_request(FLASH.id, True, {"contents": _wire_contents(build_contents(gemini))})


@given(messages)
def test_no_text_is_lost_in_translation(raw):
    history = _history(raw)
    sent = str(build_params(TurnRequest(model="m", system=None, messages=history, tools=[], max_tokens=1)))
    for message in history:
        if message.status == "failed" and not message.text.strip():
            continue
        for block in message.content:
            if isinstance(block, TextBlock) and block.text.strip():
                assert block.text in sent
