"""``FILE[:START-END]`` as code context: what is attached, and what is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from duologue.clients.code_context import ContextArgError, parse_context_arg
from duologue.protocol.entities import LineRange


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "module.py"
    path.write_text("".join(f"line {i}\n" for i in range(1, 210)))
    return path


def test_a_whole_file_is_attached_with_its_language(source: Path):
    block = parse_context_arg(str(source))
    assert (block.text.count("\n"), block.language, block.range) == (209, "python", None)


def test_a_range_attaches_those_lines_and_an_end_past_the_file_is_clipped(source: Path):
    block = parse_context_arg(f"{source}:200-9999")
    assert block.range == LineRange(start=200, end=209)
    assert block.text.splitlines() == [f"line {i}" for i in range(200, 210)]


@pytest.mark.parametrize(("rng", "says"), [
    ("9999-10000", "has 209 lines"),
    ("0-3", "need 1 <= START <= END"),
    ("5-2", "need 1 <= START <= END"),
    ("ten-twenty", "write START-END"),
])
def test_a_range_that_names_no_line_of_the_file_is_refused(source: Path, rng: str, says: str):
    with pytest.raises(ContextArgError, match=says):
        parse_context_arg(f"{source}:{rng}")


def test_an_unreadable_file_is_refused_with_its_name(tmp_path: Path):
    with pytest.raises(ContextArgError, match="cannot read .*missing.py"):
        parse_context_arg(str(tmp_path / "missing.py"))
