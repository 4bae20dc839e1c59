"""Sessions across ACP processes: load replays, list, resume, close and delete; two editors on
one session see each other's turns once; a daemon restart loses and repeats nothing."""

from __future__ import annotations

import asyncio

from acp import text_block

from duologue.protocol.methods import SessionDeleted, TaskInput


def stored_ids(recorder, session_id):
    """Each update's identity as the client can tell it: the chunks of one message
    and each tool call (a repeat would show as a repeated chunk run)."""
    return [(u.session_update, getattr(u, "message_id", None) or getattr(u, "tool_call_id", None),
             getattr(getattr(u, "content", None), "text", None)) for u in recorder.of(session_id)]


async def test_load_replays_the_history_as_updates_before_answering(start_acp, project):
    first = await start_acp()
    new = await first.conn.new_session(cwd=str(project))
    await asyncio.wait_for(first.conn.prompt(session_id=new.session_id, prompt=[text_block("hello there")]), 60)
    await asyncio.wait_for(first.conn.prompt(session_id=new.session_id, prompt=[text_block("make a plan")]), 60)

    second = await start_acp()
    await asyncio.wait_for(second.conn.load_session(cwd=str(project), session_id=new.session_id), 60)
    got = second.recorder
    users = [u.content.text for u in got.of(new.session_id, "user_message_chunk")]
    assert users == ["hello there", "make a plan"]
    assert got.text(new.session_id) == first.recorder.text(new.session_id)
    kinds = [u.session_update for u in got.of(new.session_id)]
    assert {"tool_call", "tool_call_update", "plan"} <= set(kinds)
    assert kinds.index("user_message_chunk") < kinds.index("agent_message_chunk")


async def test_list_names_the_projects_sessions_and_resume_and_close_follow_and_stop(start_acp, project):
    agent = await start_acp()
    a = await agent.conn.new_session(cwd=str(project))
    b = await agent.conn.new_session(cwd=str(project))
    listed = await agent.conn.list_sessions(cwd=str(project))
    assert {s.session_id for s in listed.sessions} == {a.session_id, b.session_id}
    assert all(s.cwd == str(project.resolve()) for s in listed.sessions)

    other = await start_acp()
    await other.conn.resume_session(cwd=str(project), session_id=a.session_id)
    await asyncio.wait_for(agent.conn.prompt(session_id=a.session_id, prompt=[text_block("after resume")]), 60)
    await other.recorder.wait_for(lambda: other.recorder.of(a.session_id, "usage_update"))
    assert [u.content.text for u in other.recorder.of(a.session_id, "user_message_chunk")] == ["after resume"]
    await other.conn.close_session(session_id=a.session_id)
    try:
        await other.conn.prompt(session_id=a.session_id, prompt=[text_block("closed")])
    except Exception as exc:
        assert "not open here" in str(exc)
    else:
        raise AssertionError("a closed session takes no prompt")


async def test_two_acp_processes_on_one_session_see_each_others_turns_once(start_acp, project):
    one = await start_acp()
    new = await one.conn.new_session(cwd=str(project))
    two = await start_acp()
    await two.conn.load_session(cwd=str(project), session_id=new.session_id)

    await asyncio.wait_for(one.conn.prompt(session_id=new.session_id, prompt=[text_block("from one")]), 60)
    await asyncio.wait_for(two.conn.prompt(session_id=new.session_id, prompt=[text_block("from two")]), 60)
    await one.recorder.wait_for(lambda: len(one.recorder.of(new.session_id, "usage_update")) == 2)
    await two.recorder.wait_for(lambda: len(two.recorder.of(new.session_id, "usage_update")) == 2)

    assert [u.content.text for u in one.recorder.of(new.session_id, "user_message_chunk")] == ["from two"]
    assert [u.content.text for u in two.recorder.of(new.session_id, "user_message_chunk")] == ["from one"]
    agent_one = [x for x in stored_ids(one.recorder, new.session_id) if x[0] == "agent_message_chunk"]
    agent_two = [x for x in stored_ids(two.recorder, new.session_id) if x[0] == "agent_message_chunk"]
    assert agent_one == agent_two and len({x[1] for x in agent_one}) == 2


async def test_a_daemon_restart_mid_session_then_a_prompt_works_and_nothing_is_seen_twice(start_acp, project, daemon):
    agent = await start_acp()
    new = await agent.conn.new_session(cwd=str(project))
    await asyncio.wait_for(agent.conn.prompt(session_id=new.session_id, prompt=[text_block("before")]), 60)
    before = stored_ids(agent.recorder, new.session_id)

    await asyncio.to_thread(daemon.stop)
    await asyncio.to_thread(daemon.start)
    async with daemon.client("other") as other:
        await other.send(new.session_id, "while the agent reconnects")
    answer = await asyncio.wait_for(agent.conn.prompt(session_id=new.session_id, prompt=[text_block("after")]), 90)
    assert answer.stop_reason == "end_turn"
    await agent.recorder.wait_for(lambda: len(agent.recorder.of(new.session_id, "usage_update")) == 3)

    seen = stored_ids(agent.recorder, new.session_id)
    assert seen[:len(before)] == before
    assert [u.content.text for u in agent.recorder.of(new.session_id, "user_message_chunk")] == \
        ["while the agent reconnects"]
    async with daemon.client("check") as check:
        got = await check.get_session(new.session_id)
    replies = [msg for msg in got.messages if msg.role == "assistant"]
    assert agent.recorder.text(new.session_id) == "".join(msg.text for msg in replies)


async def test_identical_prompts_from_two_acp_processes_each_show_once_to_the_other(start_acp, project, daemon):
    one = await start_acp()
    new = await one.conn.new_session(cwd=str(project))
    two = await start_acp()
    await two.conn.load_session(cwd=str(project), session_id=new.session_id)

    same = [text_block("the very same words")]
    await asyncio.wait_for(asyncio.gather(one.conn.prompt(session_id=new.session_id, prompt=same),
                                          two.conn.prompt(session_id=new.session_id, prompt=same)), 90)
    for agent in (one, two):
        await agent.recorder.wait_for(lambda: len(agent.recorder.of(new.session_id, "usage_update")) == 2)

    async with daemon.client("check") as check:
        got = await check.get_session(new.session_id)
    prompts = [msg for msg in got.messages if msg.role == "user"]
    assert len(prompts) == 2 and {msg.text for msg in prompts} == {"the very same words"}
    shown_to_one = [u.message_id for u in one.recorder.of(new.session_id, "user_message_chunk")]
    shown_to_two = [u.message_id for u in two.recorder.of(new.session_id, "user_message_chunk")]
    assert len(shown_to_one) == len(shown_to_two) == 1
    assert {shown_to_one[0], shown_to_two[0]} == {msg.id for msg in prompts}


async def test_fork_copies_the_history_and_tasks_into_a_new_session_that_goes_on_alone(start_acp, project,
                                                                                        daemon):
    agent = await start_acp()
    assert (await agent.conn.initialize(protocol_version=1)).agent_capabilities.session_capabilities.fork is not None
    new = await agent.conn.new_session(cwd=str(project))
    await agent.conn.set_config_option(config_id="model", session_id=new.session_id, value="flash")
    await asyncio.wait_for(agent.conn.prompt(session_id=new.session_id, prompt=[text_block("before the fork")]), 60)
    async with daemon.client("planner") as planner:
        await planner.update_tasks(new.session_id, [
            TaskInput(content="read lib.py", status="completed"),
            TaskInput(content="rename add", status="in_progress", active_form="Renaming add")])

    forked = await agent.conn.fork_session(session_id=new.session_id, cwd=str(project))
    assert forked.session_id != new.session_id
    assert next(o for o in forked.config_options if o.id == "model").current_value == "flash"
    answer = await asyncio.wait_for(agent.conn.prompt(session_id=forked.session_id,
                                                      prompt=[text_block("only in the fork")]), 60)
    assert answer.stop_reason == "end_turn"

    async with daemon.client("check") as check:
        source = await check.get_session(new.session_id)
        fork = await check.get_session(forked.session_id)
    texts = [(msg.role, msg.text) for msg in fork.messages]
    assert texts[:2] == [(msg.role, msg.text) for msg in source.messages]
    assert [t for role, t in texts if role == "user"] == ["before the fork", "only in the fork"]
    assert fork.session.metadata["forked_from"] == new.session_id
    assert fork.session.project_id == source.session.project_id
    assert [(t.content, t.status, t.active_form) for t in fork.tasks.tasks] == [
        ("read lib.py", "completed", None), ("rename add", "in_progress", "Renaming add")]


async def test_delete_removes_the_session_from_duologue_and_tells_the_other_clients(start_acp, project, daemon):
    agent = await start_acp()
    kept = await agent.conn.new_session(cwd=str(project))
    gone = await agent.conn.new_session(cwd=str(project))
    await asyncio.wait_for(agent.conn.prompt(session_id=gone.session_id, prompt=[text_block("soon gone")]), 60)
    caps = (await agent.conn.initialize(protocol_version=1)).agent_capabilities.session_capabilities
    assert caps.delete is not None
    async with daemon.client("watcher") as watcher:
        await watcher.attach(gone.session_id)
        # the SDK's client side has no typed call for it either: its request, raw
        await agent.conn._conn.send_request("session/delete", {"sessionId": gone.session_id})
        event = await watcher.next_event(30)
        assert isinstance(event, SessionDeleted) and event.session_id == gone.session_id
    listed = await agent.conn.list_sessions(cwd=str(project))
    assert [s.session_id for s in listed.sessions] == [kept.session_id]
    try:
        await agent.conn._conn.send_request("session/delete", {"sessionId": gone.session_id})
    except Exception as exc:
        assert gone.session_id in str(exc) or "no session" in str(exc).lower()
    else:
        raise AssertionError("deleting a session that is gone is an error")
