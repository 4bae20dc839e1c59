"""The pure parts of the language server: command arguments, code-context blocks,
and the work-done progress texts."""

from __future__ import annotations

import pytest

from duologue.clients.lsp import commands as c
from duologue.clients.lsp.workdone import begin_value, end_value, report_value
from duologue.protocol import methods as m
from duologue.protocol.errors import ErrorCode, RpcError

LINES = ["a\n", "b\n", "c\n", "d\n"]


@pytest.mark.parametrize(("start", "end", "end_char", "expected"), [
    (0, 1, 0, (1, 1, "a\n")),        # ends at the start of line 1: line 1 is not selected
    (0, 1, 1, (1, 2, "a\nb\n")),
    (1, 3, 0, (2, 3, "b\nc\n")),
    (2, 2, 1, (3, 3, "c\n")),         # within one line
    (3, 9, 0, (4, 4, "d\n")),         # past the end of the document
])
def test_code_context_covers_the_whole_lines_a_selection_touches(start, end, end_char, expected):
    block = c.code_context("src/x.py", LINES, start, end, end_char, "python")
    assert (block.range.start, block.range.end, block.text) == expected
    assert block.path == "src/x.py" and block.language == "python"


def test_command_arguments_take_an_object_or_a_bare_string():
    assert c.decode_args(c.ASK, ["why?"]).text == "why?"
    assert c.decode_args(c.SWITCH_MODEL, [{"model": "flash", "reason": "r"}]).reason == "r"
    assert c.decode_args(c.ATTACH, ["01KA"]).since_seq == 0
    assert c.decode_args(c.SESSIONS, []).all is False
    assert c.decode_args(c.NEW_SESSION, [{}]).title is None


@pytest.mark.parametrize(("command", "arguments", "path"), [
    (c.ASK, [{"text": "x", "colour": "red"}], "$.colour"),
    (c.ASK, [{"text": ""}], "$.text"),
    (c.ASK, [{"text": "x", "context": [{"type": "code_context", "path": "p"}]}], "$.context[0]"),
    (c.ATTACH, [{"session_id": "s", "since_seq": -1}], "$.since_seq"),
    (c.NEW_SESSION, ["a title"], None),
    (c.ASK, ["a", "b"], None),
    (c.SESSIONS, [3], None),
])
def test_bad_command_arguments_are_invalid_params(command, arguments, path):
    with pytest.raises(RpcError) as caught:
        c.decode_args(command, arguments)
    assert caught.value.code == ErrorCode.INVALID_PARAMS
    if path is not None:
        assert caught.value.data["path"] == path


def test_display_path_is_relative_inside_the_workspace(tmp_path):
    inside = tmp_path / "src" / "a.py"
    assert c.display_path(str(inside), str(tmp_path)) == "src/a.py"
    assert c.display_path("/elsewhere/b.py", str(tmp_path)) == "/elsewhere/b.py"
    assert c.language_of("x.rs", None) == "rust" and c.language_of("x.rs", "rustic") == "rustic"


def test_progress_texts_name_the_model_tokens_tasks_and_outcome():
    p = m.Progress(session_id="s", seq=3, turn_id="t", kind="report", model="claude-sonnet-5-5",
                   output_tokens=42, tasks_completed=1, tasks_total=4, active_task="Writing tests",
                   estimated_s=3.2)
    assert begin_value(m.Progress(session_id="s", seq=1, turn_id="t", kind="begin", model="x"), "sonnet").title \
        == "duologue: sonnet"
    report = report_value(p)
    assert report.message == "42 tokens · 1/4 tasks · Writing tests · ~3s left" and report.percentage == 25
    end = end_value(m.Progress(session_id="s", seq=4, turn_id="t", kind="end", model="x", output_tokens=50,
                               outcome="cancelled"))
    assert end.message == "cancelled · 50 tokens"
