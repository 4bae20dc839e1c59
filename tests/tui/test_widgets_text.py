"""The chat's pure parts: what the selector, the progress line and the picker make of
their inputs, without a screen. (The feed's sequence rules are the protocol's own,
tested in tests/protocol/test_subscriptions.py.)"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from duologue.clients.tui.model_selector import Entry, entries_of, selector_text
from duologue.clients.tui.picker import group_by_project
from duologue.clients.tui.progress import TurnState, progress_text
from duologue.protocol.entities import ModelInfo, Pricing, Session, Task, TaskList

T0 = datetime(2026, 11, 25, 10, 35, tzinfo=timezone.utc)


def info(id_: str, short: str, provider: str = "anthropic") -> ModelInfo:
    return ModelInfo(id=id_, provider=provider, display_name=id_.title(), short_name=short,
                     context_window=200_000, max_output_tokens=8000,
                     pricing=Pricing(input_per_mtok=1, output_per_mtok=2), tier="fast")


CATALOG = [info("claude-fable-5-1", "fable"), info("claude-opus-5-5", "opus"),
           info("claude-sonnet-5-5", "sonnet"), info("claude-haiku-4-5", "haiku"),
           info("gemini-3.1-pro-preview", "gem-pro", "gemini"), info("gemini-3.8-flash", "flash", "gemini"),
           info("gemini-3.5-flash-lite", "lite", "gemini")]


def test_selector_groups_providers_and_ends_with_auto():
    text = selector_text(entries_of(CATALOG), "claude-sonnet-5-5", "claude-sonnet-5-5", 80)
    assert text.plain == "fable opus sonnet haiku │ gem-pro flash lite │ auto"


def test_selector_at_80_columns_fits_numbered_by_a_window_around_the_cursor():
    entries = entries_of(CATALOG)
    for cursor in range(len(entries)):
        text = selector_text(entries, "claude-sonnet-5-5", "claude-sonnet-5-5", 60, cursor=cursor,
                             numbered=True)
        assert text.cell_len <= 60
        assert f"{cursor + 1}:{entries[cursor].label}" in text.plain if cursor < 9 else "auto" in text.plain


def test_narrow_selector_shows_the_chosen_model_with_arrows():
    text = selector_text(entries_of(CATALOG), "gemini-3.8-flash", "gemini-3.8-flash", 20)
    assert "flash" in text.plain and text.cell_len <= 20
    assert text.plain.startswith("‹") and text.plain.endswith("›")


names = st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1,
                max_size=30)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(names, st.sampled_from(["anthropic", "gemini"])), min_size=1, max_size=30),
       st.integers(0, 200), st.booleans(), st.data())
def test_selector_never_overflows(models, width, numbered, data):
    entries = [Entry(f"id{i}", short, provider) for i, (short, provider) in enumerate(models)]
    cursor = data.draw(st.none() | st.integers(0, len(entries) - 1))
    text = selector_text(entries, "id0", "id0", width, cursor=cursor, numbered=numbered)
    assert text.cell_len <= width


TASKS = TaskList(tasks=[Task(id="1", content="Read", status="completed"),
                        Task(id="2", content="Fix", status="in_progress",
                             active_form="Fixing the lifetime of the borrowed cache entry in the eviction path"),
                        Task(id="3", content="Test")])


def test_progress_line_shows_counts_and_cuts_the_active_task():
    line = progress_text(TurnState(running=True, model="x", output_tokens=42), TASKS, 80, "sonnet").plain
    assert line.startswith("● sonnet replying · 42 tok  ")
    assert "1/3 Fixing the lifetime" in line and line.endswith("…") and len(line) <= 80
    wide = progress_text(TurnState(), TASKS, 200).plain
    assert wide.endswith("Fixing the lifetime of the borrowed cache entry in the eviction path")


@given(st.integers(0, 300))
def test_progress_line_never_overflows(width):
    for turn in (TurnState(), TurnState(running=True, model="m", estimated_s=12.0),
                 TurnState(outcome="failed", error="x" * 500), TurnState(outcome="cancelled")):
        assert progress_text(turn, TASKS, width, "sonnet").cell_len <= width


def test_progress_line_says_how_the_last_turn_ended():
    assert progress_text(TurnState(outcome="cancelled"), TaskList(), 80).plain.startswith("■ cancelled")
    failed = progress_text(TurnState(outcome="failed", error="provider said no"), TaskList(), 80).plain
    assert failed == "✗ failed: provider said no"
    assert progress_text(TurnState(), TaskList(), 80).plain == "ready"


def session(id_: str, project: str | None, minutes: int) -> Session:
    t = T0 + timedelta(minutes=minutes)
    return Session(id=id_, title=id_, created_at=t, updated_at=t, model="m", current_model="m",
                   project_id=project)


def test_picker_puts_this_project_first_then_others_by_recency():
    groups = group_by_project([session("a", "/x", 1), session("b", "/here", 2), session("c", "/y", 5),
                               session("d", "/here", 3), session("e", None, 4)], "/here")
    assert [(p, [s.id for s in ss]) for p, ss in groups] == [
        ("/here", ["d", "b"]), ("/y", ["c"]), (None, ["e"]), ("/x", ["a"])]
