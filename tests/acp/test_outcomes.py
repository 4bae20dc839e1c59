"""What a turn's outcome looks like to an ACP client, on a scripted emulator: the
stop reasons ``refusal`` and ``max_tokens``, thinking as ``agent_thought_chunk``,
``usage_update`` with the model's window and the session's cost, the task tool's round
and plan, and a daemon killed between two tool rounds (the prompt ends with an
error, and the agent goes on serving)."""

from __future__ import annotations

import asyncio

import pytest
from acp import RequestError, text_block

from duologue.daemon.emulator.script import Failure, Reply, ToolCall, Usage

TASKS = {"tasks": [{"content": "read lib.py", "status": "completed"},
                   {"content": "rename add", "status": "in_progress"},
                   {"content": "run the tests", "status": "pending"}]}


async def _session(start_live_acp, project, model: str):
    agent = await start_live_acp()
    new = await agent.conn.new_session(cwd=str(project))
    await agent.conn.set_config_option(config_id="model", session_id=new.session_id, value=model)
    return agent, new.session_id


async def _ask(agent, session_id: str, text: str, timeout: float = 90):
    return await asyncio.wait_for(agent.conn.prompt(session_id=session_id, prompt=[text_block(text)]), timeout)


async def test_a_refusal_ends_the_prompt_refusal_with_its_partial_text(start_live_acp, project, emulator):
    emulator.script("anthropic", Reply(text="I would rather", refusal=("general_harms", "declined")))
    agent, sid = await _session(start_live_acp, project, "sonnet")
    answer = await _ask(agent, sid, "do the forbidden thing")
    assert answer.stop_reason == "refusal"
    assert agent.recorder.text(sid).startswith("I would rather")


async def test_a_reply_cut_by_the_output_limit_ends_max_tokens(start_live_acp, project, emulator):
    emulator.script("gemini", Reply(text="a long answer that stops", stop_reason="max_tokens"))
    agent, sid = await _session(start_live_acp, project, "flash")
    answer = await _ask(agent, sid, "write a novel")
    assert answer.stop_reason == "max_tokens"
    assert agent.recorder.text(sid) == "a long answer that stops"


async def test_thinking_streams_as_thought_chunks_and_usage_reports_window_and_cost(
        start_live_acp, project, emulator, live):
    emulator.script("gemini", Reply(text="it adds", thinking="add() returns the sum of its two arguments",
                                    usage=Usage(input_tokens=1200, output_tokens=300, thinking_tokens=100)))
    agent, sid = await _session(start_live_acp, project, "flash")
    answer = await _ask(agent, sid, "what does add() return?")
    assert answer.stop_reason == "end_turn"
    assert agent.recorder.text(sid, "agent_thought_chunk") == "add() returns the sum of its two arguments"
    assert agent.recorder.text(sid) == "it adds"
    kinds = [u.session_update for u in agent.recorder.of(sid)]
    assert kinds.index("agent_thought_chunk") < kinds.index("agent_message_chunk")

    usage = agent.recorder.of(sid, "usage_update")[-1]
    async with live.client() as other:
        got = await other.get_session(sid)
        models = {info.id: info for info in (await other.list_models()).models}
    reply = got.messages[-1]
    assert usage.used == reply.usage.prompt_tokens + reply.usage.output_tokens == 1500
    assert usage.size == models[reply.model].context_window
    assert usage.cost.currency == "USD" and usage.cost.amount == pytest.approx(got.session.cost_usd, abs=1e-6)
    assert usage.cost.amount > 0


async def test_a_task_tool_round_streams_the_call_its_result_and_the_plan_with_statuses(
        start_live_acp, project, emulator):
    emulator.script("anthropic", Reply(text="Planning.", tool_calls=[ToolCall("update_tasks", TASKS, id="call-1")],
                                       text_in_thinking=False),
                    Reply(text="Planned."))
    agent, sid = await _session(start_live_acp, project, "sonnet")
    answer = await _ask(agent, sid, "plan the rename")
    assert answer.stop_reason == "end_turn"
    call = agent.recorder.of(sid, "tool_call")[0]
    done = agent.recorder.of(sid, "tool_call_update")[0]
    assert call.tool_call_id == done.tool_call_id == "call-1"
    assert call.title == "Update the task list" and call.raw_input == TASKS and call.status == "in_progress"
    assert done.status == "completed"
    plan = agent.recorder.of(sid, "plan")[-1]
    assert [(e.content, e.status) for e in plan.entries] == [
        ("read lib.py", "completed"), ("rename add", "in_progress"), ("run the tests", "pending")]
    kinds = [u.session_update for u in agent.recorder.of(sid)]
    assert kinds.index("tool_call") < kinds.index("plan") and kinds.index("tool_call") < kinds.index("tool_call_update")
    assert agent.recorder.text(sid) == "Planning.Planned."


async def _poll(predicate, timeout: float = 60.0) -> None:
    """Wait for a condition nothing signals (what the emulator has received)."""
    async def loop() -> None:
        while not predicate():
            await asyncio.sleep(0.05)
    await asyncio.wait_for(loop(), timeout)


async def test_a_daemon_killed_between_tool_rounds_ends_the_prompt_and_the_agent_serves_on(
        start_live_acp, project, emulator, live):
    emulator.script("anthropic", Reply(tool_calls=[ToolCall("update_tasks", TASKS)]), Failure(delay=15))
    agent, sid = await _session(start_live_acp, project, "sonnet")
    asked = asyncio.create_task(agent.conn.prompt(session_id=sid, prompt=[text_block("plan, then work")]))
    await agent.recorder.wait_for(lambda: agent.recorder.of(sid, "tool_call_update"), 60)
    await _poll(lambda: len(emulator.received) == 2)  # the second round is asked, nothing of it written

    await asyncio.to_thread(live.kill9)
    await asyncio.to_thread(live.start)
    with pytest.raises(RequestError) as ended:
        await asyncio.wait_for(asked, 90)
    assert "between two tool rounds" in str(ended.value)  # the daemon closed the turn as it restarted

    answer = await _ask(agent, sid, "are you still there?")
    assert answer.stop_reason == "end_turn"
    assert "are you still there?" in agent.recorder.text(sid)


async def test_the_thought_level_is_each_sessions_own_and_reaches_only_its_turns(start_live_acp, project, emulator):
    agent = await start_live_acp()
    one = (await agent.conn.new_session(cwd=str(project))).session_id
    two = (await agent.conn.new_session(cwd=str(project))).session_id
    for sid in (one, two):
        await agent.conn.set_config_option(config_id="model", session_id=sid, value="sonnet")
    changed = await agent.conn.set_config_option(config_id="thinking", session_id=one, value="off")
    assert next(o for o in changed.config_options if o.id == "thinking").current_value == "off"
    await _ask(agent, two, "think as usual")
    await _ask(agent, one, "do not think")
    other = await agent.conn.set_config_option(config_id="model", session_id=two, value="sonnet")
    assert next(o for o in other.config_options if o.id == "thinking").current_value == "default"

    usual, unthinking = ({key: r.body.get(key) for key in ("thinking", "output_config")} for r in emulator.received)
    assert usual != unthinking  # the daemon asked the model for less thinking on session one's turn only
