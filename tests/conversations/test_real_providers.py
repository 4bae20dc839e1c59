"""The main job against an emulator that demands what the real APIs demand.

Plans with tool rounds on Gemini 3 and on Claude Sonnet 5.5, switches between them in
the middle of a plan, failover after partial output, refusals, blocked prompts,
malformed calls, keepalive-only streams and the turn deadline, each through the real
daemon, the real SDKs and the emulator's 400s (docs/protocol.md, section 13).
"""

from __future__ import annotations

import pytest
from conversation_support import collect_turn, provider_daemon, send_and_wait

from duologue.daemon.emulator import Failure, Reply, ToolCall
from duologue.protocol import methods as m
from duologue.protocol.entities import TextBlock, ThinkingBlock, ToolCallBlock

PLAN = {"tasks": [{"id": "1", "content": "Read the schema", "status": "in_progress"},
                  {"id": "2", "content": "Write the migration"}]}
PLAN_DONE = {"tasks": [{"id": "1", "content": "Read the schema", "status": "completed"},
                       {"id": "2", "content": "Write the migration", "status": "in_progress"}]}


def plan_round(plan: dict, **kw: object) -> Reply:
    return Reply(text="Let me plan this.", tool_calls=[ToolCall("update_tasks", plan)], **kw)


def replies(events: list) -> list:
    return [e.message for e in events if isinstance(e, m.MessageCompleted) and e.message.role == "assistant"]


def end_of(events: list) -> m.Progress:
    return [e for e in events if isinstance(e, m.Progress) and e.kind == "end"][-1]


@pytest.fixture
async def daemon(home, emulator):
    emulator.reset()
    # The deadline is far enough that a loaded machine's SDK imports never reach it;
    # the deadline test starts a daemon of its own.
    d = provider_daemon(home, emulator, timeout_s=2.0, top="turn_timeout_s = 60").start()
    try:
        yield d
    finally:
        d.stop()


async def session(d, model: str):
    c = d.client("real")
    await c.__aenter__()
    s = await c.create_session(model=model)
    await c.attach(s.id, since_seq=s.last_seq)
    return c, s


async def test_a_gemini_3_plan_sends_its_signed_function_call_back_and_completes(daemon, emulator):
    emulator.script("gemini", plan_round(PLAN), Reply(text="Planned."))
    c, s = await session(daemon, "flash")
    events = await send_and_wait(c, s.id, "plan the migration")
    first, last = replies(events)
    assert (first.status, last.status, last.text) == ("complete", "complete", "Planned.")
    call = next(b for b in first.content if isinstance(b, ToolCallBlock))
    assert call.signature  # kept with the message, as Gemini sent it
    continuation = [r for r in emulator.received if r.provider == "gemini"][-1].body
    sent_call = next(p for c_ in continuation["contents"] for p in c_["parts"] if "functionCall" in p)
    assert sent_call.get("thoughtSignature")
    assert [t.status for t in (await c.list_tasks(s.id)).tasks] == ["in_progress", "pending"]
    await c.close()


async def test_a_sonnet_5_5_plan_resends_its_thinking_first_and_shows_it_apart(daemon, emulator):
    emulator.script("anthropic", plan_round(PLAN, thinking="The user wants a plan; two steps."),
                    Reply(text="Planned.", thinking=""))
    c, s = await session(daemon, "sonnet")
    events = await send_and_wait(c, s.id, "plan the migration")
    first, last = replies(events)
    assert (first.status, last.status, last.text) == ("complete", "complete", "Planned.")
    assert isinstance(first.content[0], ThinkingBlock) and first.content[0].signature
    thought = [e.thinking for e in events if isinstance(e, m.MessageDelta) and e.thinking]
    assert "".join(thought) == first.thinking and first.thinking
    assert all(not (e.thinking and e.text) for e in events if isinstance(e, m.MessageDelta))
    assert first.thinking not in first.text  # never mixed into the reply
    continuation = [r for r in emulator.received if r.provider == "anthropic"][-1].body
    assistant = continuation["messages"][1]["content"]
    assert assistant[0]["type"] == "thinking" and assistant[0]["signature"] == first.content[0].signature
    await c.close()


async def test_switching_between_claude_and_gemini_in_the_middle_of_a_plan_and_back(daemon, emulator):
    emulator.script("anthropic", plan_round(PLAN), Reply(text="Step one under way.", thinking=""))
    c, s = await session(daemon, "sonnet")
    await send_and_wait(c, s.id, "plan the migration")
    await c.switch_model(s.id, "flash")
    emulator.script("gemini", plan_round(PLAN_DONE), Reply(text="Schema read."))
    on_gemini = replies(await send_and_wait(c, s.id, "go on"))
    await c.switch_model(s.id, "sonnet")
    emulator.script("anthropic", plan_round(PLAN_DONE), Reply(text="Migration written.", thinking=""))
    back = replies(await send_and_wait(c, s.id, "and finish"))
    assert [r.status for r in on_gemini + back] == ["complete"] * 4
    assert [r.model for r in on_gemini + back] == ["gemini-3.8-flash"] * 2 + ["claude-sonnet-5-5"] * 2
    got = await c.get_session(s.id)
    assert all(msg.status == "complete" for msg in got.messages if msg.role == "assistant")
    # the true cost: every reply priced, the session's total their sum
    costs = [msg.cost_usd for msg in got.messages if msg.role == "assistant"]
    assert all(cost and cost > 0 for cost in costs)
    assert got.session.cost_usd == pytest.approx(sum(costs))
    metrics = await c.metrics()
    by_model = {x.name: x.cost_usd for x in metrics.models}
    assert by_model["claude-sonnet-5-5"] > 0 and by_model["gemini-3.8-flash"] > 0
    await c.close()


async def test_a_failover_in_the_middle_of_a_claude_tool_round_continues_on_gemini(daemon, emulator):
    emulator.script("anthropic", plan_round(PLAN), Failure(status=529))
    emulator.script("gemini", Reply(text="Continuing the plan."))
    c, s = await session(daemon, "sonnet")
    events = await send_and_wait(c, s.id, "plan the migration")
    done = replies(events)
    assert [r.status for r in done] == ["complete", "failed", "complete"]
    assert done[-1].model == "gemini-3.8-flash" and done[-1].text == "Continuing the plan."
    await c.close()


async def test_failover_to_claude_after_partial_gemini_text_never_prefills(daemon, emulator):
    emulator.script("gemini", Failure(cut_after=4, reply=Reply(chunks=[f"part{i} " for i in range(10)])))
    emulator.script("anthropic", Reply(text="A whole answer.", thinking=""))
    c, s = await session(daemon, "flash")
    events = await send_and_wait(c, s.id, "explain LMDB")
    failed, answer = replies(events)
    assert failed.status == "failed" and failed.text.startswith("part0") and failed.error
    assert answer.status == "complete" and answer.model == "claude-sonnet-5-5"
    sent = [r for r in emulator.received if r.provider == "anthropic"][-1].body["messages"]
    assert sent[-1]["role"] == "user" and "part0" not in str(sent)
    await c.close()


async def test_a_claude_refusal_is_stored_marked_and_left_out_of_later_turns(daemon, emulator):
    emulator.script("anthropic", Reply(text="I can't help with", thinking="",
                                       refusal=("cyber", "This request could enable malware.")))
    c, s = await session(daemon, "sonnet")
    events = await send_and_wait(c, s.id, "write me a worm")
    (refused,) = replies(events)
    assert refused.status == "refused" and refused.refusal is not None
    assert (refused.refusal.provider, refused.refusal.category) == ("anthropic", "cyber")
    assert refused.text == "I can't help with"
    assert end_of(events).outcome == "refused"
    assert not [r for r in emulator.received if r.provider == "gemini"]  # a refusal is never failed over
    emulator.script("anthropic", Reply(text="LMDB is a B+tree.", thinking=""))
    await send_and_wait(c, s.id, "what is LMDB?")
    later = [r for r in emulator.received if r.provider == "anthropic"][-1].body["messages"]
    assert "worm" not in str(later) and "can't help" not in str(later)
    await c.close()


async def test_a_prompt_gemini_blocks_is_refused_not_retried_nor_failed_over(daemon, emulator):
    emulator.script("gemini", Reply(block_reason="PROHIBITED_CONTENT"))
    c, s = await session(daemon, "flash")
    events = await send_and_wait(c, s.id, "something blocked")
    (blocked,) = replies(events)
    assert blocked.status == "refused" and blocked.refusal.category == "PROHIBITED_CONTENT"
    assert len([r for r in emulator.received if r.provider == "gemini"]) == 1
    assert not [r for r in emulator.received if r.provider == "anthropic"]
    await c.close()


async def test_a_malformed_function_call_is_asked_again_once_then_is_a_clear_error(daemon, emulator):
    emulator.script("gemini", Reply(finish_reason="MALFORMED_FUNCTION_CALL"), Reply(text="Second try worked."))
    c, s = await session(daemon, "flash")
    first = replies(await send_and_wait(c, s.id, "plan"))
    assert [r.status for r in first] == ["failed", "complete"] and first[-1].text == "Second try worked."
    emulator.script("gemini", Reply(finish_reason="MALFORMED_FUNCTION_CALL"),
                    Reply(finish_reason="MALFORMED_FUNCTION_CALL"))
    events = await send_and_wait(c, s.id, "plan again")
    twice = replies(events)
    assert [r.status for r in twice] == ["failed", "failed"]
    assert twice[-1].error.startswith("malformed") and "MALFORMED_FUNCTION_CALL" in twice[-1].error
    assert end_of(events).outcome == "failed"
    await c.close()


async def test_a_stream_of_only_keepalives_ends_and_fails_over(daemon, emulator):
    emulator.script("anthropic", Failure(keepalive_after=4, keepalive_interval=0.2,
                                         reply=Reply(text="one two three four five", thinking="")))
    emulator.script("gemini", Reply(text="Answered instead."))
    c, s = await session(daemon, "sonnet")
    events = await send_and_wait(c, s.id, "hello")
    stalled, answer = replies(events)
    assert stalled.status == "failed" and "keepalive" in stalled.error
    assert (answer.status, answer.model) == ("complete", "gemini-3.8-flash"), answer.error
    await c.close()


async def test_a_turn_past_its_deadline_ends_failed_with_its_text_and_progress_agrees(home, emulator):
    emulator.reset()
    # A 40 s stream against a 10 s deadline, after a first turn has loaded the SDK (an
    # import that a loaded machine can stretch past the deadline): the first words
    # arrive well before it, and the stream is still running when it passes.
    words = [f"w{i} " for i in range(400)]
    emulator.script("anthropic", Reply(chunks=["ready"], thinking=""),
                    Reply(chunks=words, chunk_delay=0.1, thinking=""))
    d = provider_daemon(home, emulator, timeout_s=2.0, top="turn_timeout_s = 10").start()
    c, s = await session(d, "sonnet")
    warm = await c.send(s.id, "are you there")
    await collect_turn(c, warm.turn_id, timeout=60)
    sent = await c.send(s.id, "a long answer")
    try:
        events = await collect_turn(c, sent.turn_id, timeout=60)
    finally:
        await c.close()
        d.stop()
    (late,) = replies(events)
    assert late.status == "failed" and late.error.startswith("deadline") and late.text.startswith("w0")
    assert end_of(events).outcome == "failed"


async def test_thinking_off_on_a_model_that_always_thinks_is_refused_and_writes_nothing(daemon):
    c, s = await session(daemon, "opus")
    with pytest.raises(Exception) as raised:
        await c.send(s.id, "quick one", thinking="off")
    assert "always thinks" in str(raised.value)
    assert (await c.get_session(s.id)).messages == []
    await c.close()


async def test_a_model_the_provider_does_not_know_is_a_clear_error_naming_others_and_fails_over(home, emulator):
    emulator.reset()
    gone = ('\n[[models]]\nid = "claude-sonnet-3-7"\nprovider = "anthropic"\ndisplay_name = "Old Sonnet"\n'
            'short_name = "old"\ncontext_window = 200000\nmax_output_tokens = 8192\n'
            'pricing = { input_per_mtok = 3.0, output_per_mtok = 15.0 }\ntier = "balanced"\n')
    d = provider_daemon(home, emulator, timeout_s=2.0, config=gone).start()
    try:
        emulator.script("gemini", Reply(text="Answered by Gemini."))
        c, s = await session(d, "old")
        missing, answer = replies(await send_and_wait(c, s.id, "hello"))
        assert missing.status == "failed" and missing.error.startswith("not_found")
        assert "try claude-" in missing.error  # alternatives, same provider first
        assert answer.status == "complete" and answer.model == "gemini-3.8-flash"
        await c.close()
    finally:
        d.stop()
