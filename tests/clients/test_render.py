"""What the CLI prints for records a person reads: tool rounds stay readable."""

from __future__ import annotations

from datetime import datetime, timezone

from duologue.clients import render
from duologue.protocol.entities import Message, TextBlock, ToolCallBlock, ToolResultBlock

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)


def _message(role: str, content: list, model: str | None = None) -> Message:
    return Message(id="m", session_id="s", seq=3, role=role, content=content, created_at=NOW, model=model)


def test_a_tool_call_is_one_line_under_the_models_text():
    msg = _message("assistant", [TextBlock(text="Let me plan."),
                                 ToolCallBlock(id="c1", name="update_tasks", input={"tasks": []})],
                   model="gemini-3.8-flash")
    assert render.message_block(msg) == "gemini-3.8-flash:\nLet me plan.\n[calls update_tasks]"


def test_a_message_of_tool_results_is_the_tools_not_the_users():
    msg = _message("user", [ToolResultBlock(call_id="c1", name="update_tasks",
                                            content="saved 3 tasks (0 completed)\nmore detail")])
    assert render.message_block(msg) == "tool:\n[update_tasks answered: saved 3 tasks (0 completed)]"


def test_a_failed_tool_result_says_so_and_is_cut_to_one_short_line():
    msg = _message("user", [ToolResultBlock(call_id="c1", name="update_tasks", content="x" * 300,
                                            is_error=True)])
    line = render.message_block(msg).splitlines()[1]
    assert line.startswith("[update_tasks failed: xxx") and line.endswith("…]") and len(line) < 130


def test_a_users_text_is_still_theirs():
    assert render.message_block(_message("user", [TextBlock(text="hi")])) == "you:\nhi"
