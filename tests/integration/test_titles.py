"""Automatic session titles, through a real daemon on the emulator and the real client.

The daemon titles a session once, after its first reply completes, from the first
prompt, as a ``session/renamed`` event (so every attached client sees it), before the
turn's progress end. A title a person gave (at create or by ``session/rename``) and an
imported session's title are never replaced.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from duologue.daemon.emulator import Failure
from duologue.protocol import methods as m
from duologue.protocol.entities import CodeContextBlock, LineRange, TextBlock


async def _turn_events(client: Any, sid: str, text: str, **kwargs: Any) -> list[Any]:
    """Send and collect this session's events until the turn's progress end."""
    sent = await client.send(sid, text, **kwargs)
    events = []
    while True:
        event = await client.next_event(30)
        if getattr(event, "session_id", sid) != sid:
            continue
        events.append(event)
        if isinstance(event, m.Progress) and event.turn_id == sent.turn_id and event.kind == "end":
            return events


async def test_an_untitled_session_is_titled_from_its_first_prompt_once(client, client2):
    s = await client.create_session()
    assert s.title == "New session" and not s.title_given
    await client.attach(s.id)
    await client2.attach(s.id)
    events = await _turn_events(client, s.id, "## Why does the **borrow checker** reject this? It compiled before.")
    renamed = [e for e in events if isinstance(e, m.SessionRenamed)]
    assert [e.title for e in renamed] == ["Why does the borrow checker reject this?"]
    completed = next(i for i, e in enumerate(events) if isinstance(e, m.MessageCompleted))
    assert events.index(renamed[0]) > completed  # after the reply, before the progress end
    # the other client saw the same event
    while not isinstance(event := await client2.next_event(30), m.SessionRenamed):
        pass
    assert event.title == renamed[0].title and event.seq == renamed[0].seq
    got = (await client.get_session(s.id)).session
    assert got.title == "Why does the borrow checker reject this?" and not got.title_given

    later = await _turn_events(client, s.id, "and another question")
    assert not [e for e in later if isinstance(e, m.SessionRenamed)]
    assert (await client.get_session(s.id)).session.title == renamed[0].title


async def test_a_long_prompt_is_cut_at_a_word_with_an_ellipsis(client):
    s = await client.create_session()
    await client.attach(s.id)
    words = " ".join(f"word{i}" for i in range(40))
    events = await _turn_events(client, s.id, words)
    title = next(e.title for e in events if isinstance(e, m.SessionRenamed))
    assert len(title) <= 60 and title.endswith("…") and words.startswith(title[:-1])


async def test_a_prompt_of_attached_code_only_is_titled_by_its_file(client):
    s = await client.create_session()
    await client.attach(s.id)
    block = CodeContextBlock(path="src/cache/lru.rs", text="fn evict() {}\n", range=LineRange(start=10, end=42))
    events = await _turn_events(client, s.id, "", context=[block])
    assert [e.title for e in events if isinstance(e, m.SessionRenamed)] == ["About lru.rs:10-42"]


async def test_a_title_given_at_create_or_by_rename_is_never_replaced(client):
    given = await client.create_session(title="borrow checker")
    assert given.title_given
    renamed = await client.create_session()
    renamed = await client.rename_session(renamed.id, "New session")  # even the default's words, given
    assert renamed.title_given
    for s in (given, renamed):
        await client.attach(s.id)
        events = await _turn_events(client, s.id, "a question that would make a title")
        assert not [e for e in events if isinstance(e, m.SessionRenamed)]
    assert (await client.get_session(given.id)).session.title == "borrow checker"
    assert (await client.get_session(renamed.id)).session.title == "New session"


async def test_an_imported_session_keeps_its_title(client):
    at = datetime(2026, 1, 5, tzinfo=timezone.utc)
    result = await client.import_sessions([m.ImportSession(
        external_id="claude-code:abc", sources=["claude-code"], title="New session", created_at=at,
        messages=[m.ImportMessage(external_id="claude-code:abc:1", role="user",
                                  content=[TextBlock(text="hello")], created_at=at)])])
    sid = result.sessions[0].session_id
    assert (await client.get_session(sid)).session.title_given
    await client.attach(sid)
    events = await _turn_events(client, sid, "continue here")
    assert not [e for e in events if isinstance(e, m.SessionRenamed)]
    assert (await client.get_session(sid)).session.title == "New session"


async def test_a_failed_first_turn_leaves_the_title_for_the_first_that_completes(live, emulator):
    emulator.script("anthropic", Failure(status=400, message="scripted refusal of the request"))
    async with live.client("titles") as client:
        s = await client.create_session(model="sonnet")
        await client.attach(s.id)
        failed = await _turn_events(client, s.id, "first try")
        assert any(isinstance(e, m.MessageCompleted) and e.message.status == "failed" for e in failed)
        assert not [e for e in failed if isinstance(e, m.SessionRenamed)]
        events = await _turn_events(client, s.id, "second try works")
        assert [e.title for e in events if isinstance(e, m.SessionRenamed)] == ["second try works"]
