"""Every session method end to end: a real daemon, the real client library over the
real ipc socket, two clients at once where delivery is the point."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

from duologue.clients.rpc.client import AsyncClient
from duologue.clients.rpc.sync_client import Client
from duologue.protocol import methods as m
from duologue.protocol.entities import AUTO
from duologue.protocol.errors import ErrorCode, RpcError
from support import wait_until

UNKNOWN_SID = "01ARZ3NDEKTSV4RRFFQ69G5FAV"
EVENT_TIMEOUT = 30.0  # a wait, not a limit: a loaded CI machine with coverage on is slow


async def expect_error(code: ErrorCode, coro) -> RpcError:
    with pytest.raises(RpcError) as info:
        await coro
    assert info.value.code == code, info.value
    return info.value


async def events_until(client: AsyncClient, last_seq: int) -> list[m.Event]:
    """Every stored-event notification up to and including ``last_seq``."""
    out: list[m.Event] = []
    while not out or out[-1].seq < last_seq:
        event = await client.next_event(EVENT_TIMEOUT)
        if isinstance(event, m.Event):
            out.append(event)
    return out


async def completed_replies(client: AsyncClient, n: int) -> list[m.MessageCompleted]:
    """Wait for ``n`` message/completed notifications (the client must be attached)."""
    done: list[m.MessageCompleted] = []
    while len(done) < n:
        event = await client.next_event(EVENT_TIMEOUT)
        if isinstance(event, m.MessageCompleted):
            done.append(event)
    return done


async def no_event_within(client: AsyncClient, barrier: AsyncClient, session_id: str) -> list:
    """What ``client`` received by the time a round trip through the daemon completed.

    The daemon handles one frame at a time and publishes before answering, so once a
    later request of ``barrier`` has been answered and one of ``client`` too, any
    notification for ``client`` caused earlier would already be queued ahead of it.
    """
    await barrier.status()
    await client.status()
    got = []
    while (event := client.take_event()) is not None:
        got.append(event)
    return got


# --- create -----------------------------------------------------------------------------


async def test_create_uses_the_catalog_default_model(client: AsyncClient):
    models = await client.list_models()
    s = await client.create_session(title="t", project_id="/proj", system_prompt="sp",
                                    metadata={"k": "v"})
    assert s.model == s.current_model == models.default_model
    assert s.title == "t" and s.project_id == "/proj" and s.system_prompt == "sp"
    assert s.metadata == {"k": "v"}
    assert s.last_seq == 1 and s.message_count == 0
    assert len(s.id) == 26


async def test_create_without_a_title_gets_a_default_title(client: AsyncClient):
    s = await client.create_session()
    assert s.title


async def test_create_with_a_short_name_stores_the_model_id(client: AsyncClient):
    catalog = await client.list_models()
    target = next(mi for mi in catalog.models if mi.id != catalog.default_model)
    s = await client.create_session(model=target.short_name)
    assert s.model == s.current_model == target.id


async def test_create_with_auto_answers_with_the_default_model(client: AsyncClient):
    default = (await client.list_models()).default_model
    s = await client.create_session(model=AUTO)
    assert s.model == AUTO and s.current_model == default


async def test_create_with_an_unknown_model_is_unknown_model_and_creates_nothing(client: AsyncClient):
    err = await expect_error(ErrorCode.UNKNOWN_MODEL, client.create_session(model="gpt-9"))
    assert "gpt-9" in err.message and err.data == {"model": "gpt-9"}
    assert (await client.list_sessions()).sessions == []


# --- list -------------------------------------------------------------------------------


async def test_list_is_newest_first_and_pages_with_next_cursor(client: AsyncClient):
    created = [await client.create_session(title=f"s{i}") for i in range(7)]
    pages, cursor = [], None
    while True:
        page = await client.list_sessions(limit=3, before=cursor)
        pages.append([s.id for s in page.sessions])
        cursor = page.next_cursor
        if cursor is None:
            break
    assert [len(p) for p in pages] == [3, 3, 1]
    # Newest first; sessions updated in the same millisecond sort by id.
    expected = sorted(created, key=lambda s: (s.updated_at.replace(microsecond=s.updated_at.microsecond // 1000 * 1000), s.id),
                      reverse=True)
    assert sum(pages, []) == [s.id for s in expected]


async def test_list_with_an_exact_page_has_no_next_cursor(client: AsyncClient):
    for i in range(3):
        await client.create_session(title=f"s{i}")
    page = await client.list_sessions(limit=3)
    assert len(page.sessions) == 3 and page.next_cursor is None


async def test_list_filters_by_project(client: AsyncClient):
    a1 = await client.create_session(project_id="/a")
    await client.create_session(project_id="/a/b")
    await client.create_session()
    a2 = await client.create_session(project_id="/a")
    page = await client.list_sessions(project_id="/a")
    assert [s.id for s in page.sessions] == [a2.id, a1.id]
    one = await client.list_sessions(project_id="/a", limit=1)
    assert [s.id for s in one.sessions] == [a2.id] and one.next_cursor
    rest = await client.list_sessions(project_id="/a", before=one.next_cursor)
    assert [s.id for s in rest.sessions] == [a1.id]
    assert len((await client.list_sessions()).sessions) == 4


async def test_list_moves_a_renamed_session_to_the_front(client: AsyncClient):
    first = await client.create_session(title="first")
    second = await client.create_session(title="second")
    # Recency has millisecond resolution (ties sort by id): let the clock pass it.
    wait_until(lambda: datetime.now(timezone.utc) - second.updated_at > timedelta(milliseconds=2))
    await client.rename_session(first.id, "first again")
    assert (await client.list_sessions()).sessions[0].id == first.id


async def test_list_with_a_bad_cursor_is_invalid_params(client: AsyncClient):
    err = await expect_error(ErrorCode.INVALID_PARAMS, client.list_sessions(before="nonsense"))
    assert err.data == {"path": "$.before"}


# --- get --------------------------------------------------------------------------------


async def test_get_of_a_new_session_has_no_messages(client: AsyncClient):
    s = await client.create_session(title="empty")
    got = await client.get_session(s.id)
    assert got.session == s
    assert got.messages == [] and got.switches == [] and got.tasks.tasks == []
    assert got.has_more is False


async def test_get_pages_messages_by_since_seq_and_limit(client: AsyncClient):
    s = await client.create_session()
    await client.attach(s.id, since_seq=s.last_seq)
    for i in range(3):
        await client.send(s.id, f"hello {i}")
    await completed_replies(client, 3)
    got = await client.get_session(s.id)
    seqs = [x.seq for x in got.messages]
    assert len(seqs) == 6 and seqs == sorted(seqs)

    first = await client.get_session(s.id, limit=2)
    assert [x.seq for x in first.messages] == seqs[:2] and first.has_more
    after = await client.get_session(s.id, since_seq=first.messages[-1].seq, limit=10)
    assert [x.seq for x in after.messages] == seqs[2:] and not after.has_more
    exact = await client.get_session(s.id, since_seq=seqs[1], limit=4)
    assert [x.seq for x in exact.messages] == seqs[2:] and not exact.has_more
    assert (await client.get_session(s.id, since_seq=seqs[-1])).messages == []


async def test_get_of_an_unknown_session_is_unknown_session(client: AsyncClient):
    err = await expect_error(ErrorCode.UNKNOWN_SESSION, client.get_session(UNKNOWN_SID))
    assert err.data == {"session_id": UNKNOWN_SID}


# --- rename -----------------------------------------------------------------------------


async def test_rename_sets_the_title_and_advances_seq(client: AsyncClient):
    s = await client.create_session(title="old")
    r = await client.rename_session(s.id, "  new title  ")
    assert r.title == "new title" and r.last_seq == s.last_seq + 1
    assert (await client.get_session(s.id)).session.title == "new title"


@pytest.mark.parametrize("title", ["", "   ", "\t\n"])
async def test_rename_to_a_blank_title_is_invalid_params_and_changes_nothing(client: AsyncClient, title: str):
    s = await client.create_session(title="kept")
    err = await expect_error(ErrorCode.INVALID_PARAMS, client.rename_session(s.id, title))
    assert err.data["path"] == "$.title"
    after = (await client.get_session(s.id)).session
    assert after.title == "kept" and after.last_seq == s.last_seq


# --- delete -----------------------------------------------------------------------------


async def test_delete_removes_the_session_and_tells_attached_clients(client: AsyncClient, client2: AsyncClient):
    s = await client.create_session(title="doomed")
    keep = await client.create_session(title="kept")
    await client2.attach(s.id)
    await client.delete_session(s.id)
    event = await client2.next_event(EVENT_TIMEOUT)
    assert isinstance(event, m.SessionDeleted) and event.session_id == s.id
    await expect_error(ErrorCode.UNKNOWN_SESSION, client.get_session(s.id))
    await expect_error(ErrorCode.UNKNOWN_SESSION, client.delete_session(s.id))
    assert [x.id for x in (await client.list_sessions()).sessions] == [keep.id]
    assert (await client.status()).sessions == 1


async def test_status_counts_the_sessions_as_each_create_and_delete_leaves_them(client: AsyncClient):
    base = (await client.status()).sessions
    made = []
    for i in range(3):
        made.append(await client.create_session(title=f"counted {i}"))
        assert (await client.status()).sessions == base + i + 1
        assert (await client.status()).sessions == base + i + 1  # asked again, between writes
    for i, s in enumerate(made):
        await client.delete_session(s.id)
        assert (await client.status()).sessions == base + 2 - i


# --- switch_model -----------------------------------------------------------------------


async def test_switch_model_records_the_switch_with_index_and_reason(client: AsyncClient):
    models = await client.list_models()
    s = await client.create_session()
    other = next(mi for mi in models.models if mi.provider != "anthropic")
    r = await client.switch_model(s.id, other.short_name, reason="long file read")
    assert r.switch is not None
    w = r.switch
    assert (w.from_model, w.to_model) == (s.current_model, other.id)
    assert w.reason == "long file read" and w.kind == "manual" and not w.automatic
    assert w.message_index == 0 and w.seq == s.last_seq + 1
    assert r.session.model == r.session.current_model == other.id
    got = await client.get_session(s.id)
    assert got.switches == [w] and got.session.current_model == other.id


async def test_switch_model_index_counts_messages_before_the_switch(client: AsyncClient):
    s = await client.create_session()
    await client.attach(s.id, since_seq=s.last_seq)
    await client.send(s.id, "hi")
    await completed_replies(client, 1)
    r = await client.switch_model(s.id, "flash")
    assert r.switch is not None and r.switch.message_index == 2
    assert r.switch.reason  # a default reason is recorded when none is given


async def test_switching_to_the_same_model_records_nothing(client: AsyncClient):
    s = await client.create_session()
    r = await client.switch_model(s.id, s.current_model)
    assert r.switch is None and r.session.last_seq == s.last_seq
    assert (await client.get_session(s.id)).switches == []


async def test_switching_to_auto_keeps_the_answering_model_and_records_why(client: AsyncClient):
    s = await client.create_session()
    r = await client.switch_model(s.id, AUTO)
    assert r.session.model == AUTO and r.session.current_model == s.current_model
    assert r.switch is not None and r.switch.reason
    again = await client.switch_model(s.id, AUTO)
    assert again.switch is None


async def test_switching_to_an_unknown_model_is_unknown_model(client: AsyncClient):
    s = await client.create_session()
    await expect_error(ErrorCode.UNKNOWN_MODEL, client.switch_model(s.id, "gpt-9"))
    assert (await client.get_session(s.id)).session.last_seq == s.last_seq


# --- attach / detach ----------------------------------------------------------------------


async def test_an_attached_client_receives_every_event_with_gap_free_seqs(client: AsyncClient,
                                                                         client2: AsyncClient):
    s = await client.create_session()
    await client2.attach(s.id)
    for i in range(5):
        await client.rename_session(s.id, f"title {i}")
        await client.switch_model(s.id, "flash" if i % 2 == 0 else "sonnet")
    await client.update_tasks(s.id, [m.TaskInput(content="one")])
    final = (await client.get_session(s.id)).session
    events = await events_until(client2, final.last_seq)
    assert [e.seq for e in events] == list(range(s.last_seq + 1, final.last_seq + 1))
    assert all(e.session_id == s.id for e in events)
    kinds = {type(e) for e in events}
    assert kinds == {m.SessionRenamed, m.ModelSwitched, m.TasksChanged}


async def test_two_attached_clients_see_identical_sequences(client: AsyncClient, client2: AsyncClient,
                                                            daemon):
    async with daemon.client("third") as client3:
        s = await client.create_session()
        await client2.attach(s.id)
        await client3.attach(s.id)
        await asyncio.gather(*(client.rename_session(s.id, f"t{i}") for i in range(10)),
                             *(client3.rename_session(s.id, f"u{i}") for i in range(10)))
        last = (await client.get_session(s.id)).session.last_seq
        a = await events_until(client2, last)
        b = await events_until(client3, last)
        assert [(e.seq, e.title) for e in a] == [(e.seq, e.title) for e in b]
        assert [e.seq for e in a] == list(range(2, last + 1))


async def test_a_detached_client_receives_nothing_more(client: AsyncClient, client2: AsyncClient):
    s = await client.create_session()
    await client2.attach(s.id)
    await client.rename_session(s.id, "seen")
    assert isinstance(await client2.next_event(EVENT_TIMEOUT), m.SessionRenamed)
    await client2.detach(s.id)
    await client.rename_session(s.id, "unseen")
    await client.switch_model(s.id, "flash")
    assert await no_event_within(client2, client, s.id) == []


async def test_an_unattached_client_receives_no_events(client: AsyncClient, client2: AsyncClient):
    s = await client.create_session()
    other = await client.create_session()
    await client2.attach(other.id)
    await client.rename_session(s.id, "not for client2")
    assert await no_event_within(client2, client, s.id) == []


async def test_reattach_with_since_seq_replays_exactly_the_missed_events(client: AsyncClient,
                                                                         client2: AsyncClient):
    s = await client.create_session()
    await client2.attach(s.id)
    await client.rename_session(s.id, "a")
    seen = await events_until(client2, s.last_seq + 1)
    await client2.detach(s.id)
    for title in ("b", "c", "d"):
        await client.rename_session(s.id, title)
    await client.switch_model(s.id, "flash")
    missed_until = (await client.get_session(s.id)).session.last_seq

    result = await client2.attach(s.id, since_seq=seen[-1].seq)
    assert result.replayed == missed_until - seen[-1].seq
    assert result.last_seq == missed_until
    await client.rename_session(s.id, "live")
    got = await events_until(client2, missed_until + 1)
    assert [e.seq for e in got] == list(range(seen[-1].seq + 1, missed_until + 2))
    assert [getattr(e, "title", None) for e in got] == ["b", "c", "d", None, "live"]
    assert await no_event_within(client2, client, s.id) == []


async def test_attach_since_zero_replays_the_whole_history(client: AsyncClient, client2: AsyncClient):
    s = await client.create_session(title="from the start")
    await client.rename_session(s.id, "renamed")
    result = await client2.attach(s.id, since_seq=0)
    assert result.replayed == 2
    events = await events_until(client2, 2)
    assert isinstance(events[0], m.SessionCreated) and events[0].session.title == "from the start"
    assert isinstance(events[1], m.SessionRenamed)


async def test_attach_since_seq_beyond_last_seq_is_invalid_params(client: AsyncClient):
    s = await client.create_session()
    err = await expect_error(ErrorCode.INVALID_PARAMS, client.attach(s.id, since_seq=s.last_seq + 1))
    assert err.data == {"path": "$.since_seq"}


async def test_get_refuses_a_since_seq_beyond_last_seq_as_attach_does(client: AsyncClient):
    s = await client.create_session()
    assert (await client.get_session(s.id, since_seq=s.last_seq)).messages == []
    get = await expect_error(ErrorCode.INVALID_PARAMS, client.get_session(s.id, since_seq=s.last_seq + 1))
    attach = await expect_error(ErrorCode.INVALID_PARAMS, client.attach(s.id, since_seq=s.last_seq + 1))
    assert get.data == attach.data == {"path": "$.since_seq"}
    assert get.message == attach.message


# --- tasks ------------------------------------------------------------------------------


async def test_tasks_update_replaces_the_list_and_records_who(client: AsyncClient, client2: AsyncClient):
    s = await client.create_session()
    await client2.attach(s.id)
    tasks = await client.update_tasks(s.id, [
        m.TaskInput(content="read the file"),
        m.TaskInput(content="write the fix", status="in_progress", active_form="writing the fix"),
        m.TaskInput(content="test", id="t3", status="completed"),
    ], client="editor")
    assert [t.id for t in tasks.tasks] == ["1", "2", "t3"]
    assert tasks.updated_by == "client:editor" and isinstance(tasks.updated_at, datetime)
    assert await client.list_tasks(s.id) == tasks
    event = await client2.next_event(EVENT_TIMEOUT)
    assert isinstance(event, m.TasksChanged) and event.tasks == tasks and event.seq == s.last_seq + 1

    replaced = await client2.update_tasks(s.id, [m.TaskInput(content="only this")])
    assert [t.content for t in replaced.tasks] == ["only this"]
    assert replaced.updated_by == "client:second"
    assert (await client.get_session(s.id)).tasks == replaced


async def test_tasks_without_an_id_get_the_numbers_the_given_ids_leave_free(client: AsyncClient):
    s = await client.create_session()
    tasks = await client.update_tasks(s.id, [m.TaskInput(content="a"), m.TaskInput(content="b", id="1"),
                                             m.TaskInput(content="c"), m.TaskInput(content="d", id="3")])
    assert [t.id for t in tasks.tasks] == ["2", "1", "4", "3"]


async def test_tasks_with_duplicate_ids_are_invalid_tasks_and_change_nothing(client: AsyncClient):
    s = await client.create_session()
    before = await client.update_tasks(s.id, [m.TaskInput(content="x")])
    err = await expect_error(ErrorCode.INVALID_TASKS, client.update_tasks(s.id, [
        m.TaskInput(content="a", id="dup"), m.TaskInput(content="b", id="dup")]))
    assert "dup" in err.message
    assert await client.list_tasks(s.id) == before


# --- models, status, hello ----------------------------------------------------------------


async def test_models_list_has_the_catalog_fields(client: AsyncClient):
    r = await client.list_models()
    assert r.default_model in {mi.id for mi in r.models}
    providers = {mi.provider for mi in r.models}
    assert providers == {"anthropic", "gemini"}
    for mi in r.models:
        assert mi.id and mi.display_name and mi.short_name
        assert mi.context_window > 0 and mi.max_output_tokens > 0
        assert mi.pricing.input_per_mtok >= 0 and mi.pricing.output_per_mtok >= 0
        assert mi.tier in ("fast", "balanced", "frontier")
    assert len({mi.short_name for mi in r.models}) == len(r.models)


async def test_daemon_status_reports_itself(client: AsyncClient, client2: AsyncClient, daemon):
    await client.create_session()
    st = await client.status()
    assert st.protocol_version == m.PROTOCOL_VERSION
    assert st.pid == daemon.pid
    assert st.sessions == 1 and st.clients >= 2
    assert st.emulator is True
    assert st.socket == daemon.paths.endpoint
    assert st.home == str(daemon.home)
    assert st.uptime_s >= 0 and isinstance(st.started_at, datetime)
    assert {p.name for p in st.providers} == {"anthropic", "gemini"}
    assert st.running_turns == []


async def test_hello_with_another_major_version_is_protocol_mismatch(client: AsyncClient):
    assert client.hello_result is not None
    assert client.hello_result.protocol_version == m.PROTOCOL_VERSION
    err = await expect_error(ErrorCode.PROTOCOL_MISMATCH, client.call(
        "daemon/hello", m.HelloParams(protocol_version="99.0", client="future")))
    assert "99.0" in err.message and m.PROTOCOL_VERSION in err.message
    ok = await client.call("daemon/hello", m.HelloParams(protocol_version="1.99"))
    assert ok.protocol_version == m.PROTOCOL_VERSION


# --- the blocking client ------------------------------------------------------------------


def test_the_sync_client_drives_every_session_method(daemon):
    with Client(daemon.paths, autostart=False, client_name="script", timeout=20.0) as c, \
            Client(daemon.paths, autostart=False, client_name="watcher", timeout=20.0) as w:
        s = c.create_session(title="sync", project_id="/sync")
        w.attach(s.id)
        assert c.list_sessions(project_id="/sync").sessions[0].id == s.id
        renamed = c.rename_session(s.id, "sync renamed")
        assert renamed.title == "sync renamed"
        switched = c.switch_model(s.id, "flash", reason="try gemini")
        assert switched.switch is not None and switched.switch.reason == "try gemini"
        tasks = c.update_tasks(s.id, [m.TaskInput(content="a")])
        assert c.list_tasks(s.id) == tasks
        got = c.get_session(s.id)
        assert got.session.title == "sync renamed" and len(got.switches) == 1
        seqs = [w.next_event(EVENT_TIMEOUT).seq for _ in range(3)]
        assert seqs == [s.last_seq + 1, s.last_seq + 2, s.last_seq + 3]
        assert c.list_models().default_model
        assert c.status().sessions == 1
        w.detach(s.id)
        c.delete_session(s.id)
        with pytest.raises(RpcError) as info:
            c.get_session(s.id)
        assert info.value.code == ErrorCode.UNKNOWN_SESSION
