"""An ACP client's session: initialize, new, prompt, streamed updates, stop reasons."""

from __future__ import annotations

import asyncio

from acp import text_block

from duologue.daemon.emulator.script import Reply


async def test_initialize_advertises_load_list_resume_embedded_context_and_images(start_acp):
    agent = await start_acp(initialize=False)
    init = await asyncio.wait_for(agent.conn.initialize(protocol_version=1), 30)
    caps = init.agent_capabilities
    assert init.protocol_version == 1 and caps.load_session is True
    assert caps.prompt_capabilities.embedded_context is True and caps.prompt_capabilities.image is True
    assert caps.session_capabilities.list is not None and caps.session_capabilities.resume is not None
    assert init.agent_info.name == "duologue"


async def test_prompt_streams_agent_message_chunks_and_ends_end_turn(start_acp, project, daemon):
    agent = await start_acp()
    new = await agent.conn.new_session(cwd=str(project))
    answer = await asyncio.wait_for(agent.conn.prompt(session_id=new.session_id,
                                                      prompt=[text_block("what does add() return?")]), 60)
    assert answer.stop_reason == "end_turn"
    text = agent.recorder.text(new.session_id)
    assert "[emulator" in text and "what does add() return?" in text
    assert not agent.recorder.of(new.session_id, "user_message_chunk"), "the client's own prompt is not echoed"
    async with daemon.client() as other:
        got = await other.get_session(new.session_id)
    assert got.session.project_id == str(project.resolve())
    assert got.messages[-1].text == text
    usage = agent.recorder.of(new.session_id, "usage_update")[-1]
    assert got.messages[-1].cost_usd is None and usage.cost is None, "the emulator bills nothing: no cost, not 0"


async def test_the_model_selector_lists_the_catalog_and_a_change_switches_the_model(start_acp, project, daemon):
    agent = await start_acp()
    new = await agent.conn.new_session(cwd=str(project))
    model = next(o for o in new.config_options if o.id == "model")
    values = [o.value for o in model.options]
    assert values[0] == "auto" and "sonnet" in values and model.category == "model"
    changed = await agent.conn.set_config_option(config_id="model", session_id=new.session_id, value="flash")
    current = next(o for o in changed.config_options if o.id == "model")
    assert current.current_value == "flash"
    async with daemon.client() as other:
        got = await other.get_session(new.session_id)
    assert got.switches and got.switches[-1].reason == "chosen in the ACP client"


async def test_a_plan_request_streams_the_task_tool_round_and_the_plan(start_acp, project):
    agent = await start_acp()
    new = await agent.conn.new_session(cwd=str(project))
    answer = await asyncio.wait_for(agent.conn.prompt(session_id=new.session_id,
                                                      prompt=[text_block("make a plan for the refactor")]), 60)
    assert answer.stop_reason == "end_turn"
    kinds = [u.session_update for u in agent.recorder.of(new.session_id)]
    assert "tool_call" in kinds and "tool_call_update" in kinds and "plan" in kinds
    call = agent.recorder.of(new.session_id, "tool_call")[0]
    done = agent.recorder.of(new.session_id, "tool_call_update")[0]
    assert done.tool_call_id == call.tool_call_id and done.status == "completed"
    assert kinds.index("tool_call") < kinds.index("tool_call_update")
    entries = agent.recorder.of(new.session_id, "plan")[-1].entries
    assert len(entries) == 3 and entries[0].status == "in_progress"


async def test_embedded_resources_become_code_context(start_acp, project, daemon):
    from acp import embedded_text_resource, resource_block, resource_link_block
    agent = await start_acp()
    new = await agent.conn.new_session(cwd=str(project))
    uri = (project / "lib.py").as_uri()
    await asyncio.wait_for(agent.conn.prompt(session_id=new.session_id, prompt=[
        text_block("explain this"),
        resource_block(embedded_text_resource(uri, "def add(a, b):\n    return a + b\n", mime_type="text/x-python")),
        resource_link_block(name="lib.py", uri=uri),
    ]), 60)
    async with daemon.client() as other:
        got = await other.get_session(new.session_id)
    prompt = next(msg for msg in got.messages if msg.role == "user")
    contexts = [b for b in prompt.content if type(b).__name__ == "CodeContextBlock"]
    assert [c.path for c in contexts] == ["lib.py", "lib.py"] and "return a + b" in contexts[1].text


async def test_cancel_ends_the_prompt_cancelled_with_the_partial_text_kept(start_live_acp, project, emulator, live):
    emulator.script("anthropic", Reply(chunks=["slow "] * 200, chunk_delay=0.05))
    agent = await start_live_acp()
    new = await agent.conn.new_session(cwd=str(project))
    await agent.conn.set_config_option(config_id="model", session_id=new.session_id, value="sonnet")
    asked = asyncio.create_task(agent.conn.prompt(session_id=new.session_id, prompt=[text_block("take your time")]))
    await agent.recorder.wait_for(lambda: agent.recorder.of(new.session_id, "agent_message_chunk"))
    await agent.conn.cancel(session_id=new.session_id)
    answer = await asyncio.wait_for(asked, 30)
    assert answer.stop_reason == "cancelled"
    async with live.client() as other:
        got = await other.get_session(new.session_id)
    reply = got.messages[-1]
    assert reply.status == "cancelled" and reply.text.startswith("slow ")
    assert agent.recorder.text(new.session_id).startswith(reply.text)
