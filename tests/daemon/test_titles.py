"""What an automatic title keeps of a first prompt (daemon/titles.py), on its own: the
first sentence of prose, without Markdown marks or code, cut at a word; attached files
when the prompt is only code; the reply's first line when the prompt holds no words."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from duologue.daemon.titles import MAX_CHARS, title_of
from duologue.protocol.entities import CodeContextBlock, LineRange, Message, TextBlock

AT = datetime(2026, 12, 1, tzinfo=timezone.utc)


def message(role: str, text: str, *context: CodeContextBlock) -> Message:
    content = ([TextBlock(text=text)] if text else []) + list(context)
    return Message(id="m", session_id="s", seq=1, role=role, content=content, created_at=AT)


@pytest.mark.parametrize(("prompt", "title"), [
    ("why does the borrow checker reject this?", "why does the borrow checker reject this?"),
    ("## Fix the **cache** eviction. Then the tests.", "Fix the cache eviction."),
    ("- first item\n- second", "first item"),
    ("1. step one", "step one"),
    ("2024 plans for `parse_context_arg`", "2024 plans for parse_context_arg"),
    ("```rust\nfn main() {}\n```\nwhat is wrong here?", "what is wrong here?"),
    ("\n\n   ---\n> quoted line", "quoted line"),
])
def test_the_title_is_the_first_sentence_of_prose(prompt: str, title: str):
    assert title_of(message("user", prompt)) == title


def test_a_long_prompt_is_cut_at_a_word_with_an_ellipsis():
    title = title_of(message("user", "explain " + "the borrow checker and lifetimes " * 5))
    assert len(title) <= MAX_CHARS and title.endswith("…") and not title[:-1].endswith(" ")
    assert title.startswith("explain the borrow checker and lifetimes the")


def test_attached_code_alone_is_named_by_its_files():
    ctx = [CodeContextBlock(path="src/lru.rs", text="x", range=LineRange(start=3, end=9)),
           CodeContextBlock(path="Cargo.toml", text="y")]
    assert title_of(message("user", "", *ctx)) == "About lru.rs:3-9, Cargo.toml"


def test_a_prompt_of_code_only_takes_the_replys_first_line():
    prompt = message("user", "```\npanic at src/main.rs:10\n```")
    assert title_of(prompt, message("assistant", "The panic comes from an unwrap.\nMore.")) == \
        "The panic comes from an unwrap."
    assert title_of(prompt) == ""
