"""Tasks written by models through the task tool and by clients, with live progress."""

from __future__ import annotations

import asyncio
import statistics

import pytest
from conversation_support import collect_turn, send_and_wait, stored

from duologue.daemon.emulator import Reply, ToolCall
from duologue.protocol import methods as m
from duologue.protocol.entities import Message

PLAN = {"tasks": [
    {"content": "Read the code", "status": "completed", "active_form": "Reading the code"},
    {"content": "Write the fix", "status": "in_progress", "active_form": "Writing the fix"},
    {"content": "Run the tests", "status": "pending", "active_form": "Running the tests"},
]}


@pytest.mark.parametrize("model, provider", [("sonnet", "anthropic"), ("flash", "gemini")])
async def test_model_writes_the_task_list_through_the_tool(c1, emulator, model, provider):
    emulator.script(provider, Reply(tool_calls=[ToolCall("update_tasks", PLAN)]),
                    Reply(text="Plan saved; working on it."))
    s = await c1.create_session(model=model)
    await c1.attach(s.id, since_seq=s.last_seq)
    events = await send_and_wait(c1, s.id, "fix the bug")
    changed = [e for e in events if isinstance(e, m.TasksChanged)]
    assert len(changed) == 1
    tasks = changed[0].tasks
    assert [t.status for t in tasks.tasks] == ["completed", "in_progress", "pending"]
    assert tasks.updated_by.startswith("claude" if provider == "anthropic" else "gemini")
    assert (await c1.list_tasks(s.id)) == tasks
    # the model got the tool result back and went on with the turn
    second = emulator.received[-1].body
    assert "saved 3 tasks (1 completed)" in str(second)
    final = [e for e in events if isinstance(e, m.MessageCompleted)][-1].message
    assert final.text == "Plan saved; working on it." and final.status == "complete"


async def test_default_emulator_plans_when_asked(c1):
    s = await c1.create_session(model="haiku")
    await c1.attach(s.id, since_seq=s.last_seq)
    await send_and_wait(c1, s.id, "please plan the migration")
    tasks = await c1.list_tasks(s.id)
    assert len(tasks.tasks) == 3 and tasks.updated_by == "claude-haiku-5-5"


async def test_malformed_tool_call_gets_a_tool_error_not_a_crashed_turn(c1, emulator):
    emulator.script("anthropic", Reply(tool_calls=[ToolCall("update_tasks", {"tasks": [{"status": "bogus"}]})]),
                    Reply(text="Sorry, fixed."))
    s = await c1.create_session(model="sonnet")
    await c1.attach(s.id, since_seq=s.last_seq)
    events = await send_and_wait(c1, s.id, "plan it")
    assert not [e for e in events if isinstance(e, m.TasksChanged)]
    assert "invalid update_tasks input" in str(emulator.received[-1].body)
    final = [e for e in events if isinstance(e, m.MessageCompleted)][-1].message
    assert final.status == "complete" and final.text == "Sorry, fixed."
    assert (await c1.list_tasks(s.id)).tasks == []


async def test_client_edit_during_a_turn_is_ordered_with_the_stream(c1, c2, emulator):
    emulator.script("anthropic", Reply(text=" ".join(f"w{i}" for i in range(40)), chunk_delay=0.02))
    s = await c1.create_session(model="sonnet")
    await c1.attach(s.id, since_seq=s.last_seq)
    await c2.attach(s.id, since_seq=s.last_seq)
    sent = await c1.send(s.id, "talk")
    while not [x for x in (await c1.get_session(s.id)).messages if x.role == "assistant"]:
        await asyncio.sleep(0.01)  # until the reply is opened: the edit lands mid-turn
    edited = await c2.update_tasks(s.id, [m.TaskInput(content="review", status="in_progress")])
    assert edited.updated_by == "client:c2"
    first, second = await asyncio.gather(collect_turn(c1, sent.turn_id), collect_turn(c2, sent.turn_id))
    assert stored(first) == stored(second)
    seqs = [e.seq for e in stored(first)]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert any(isinstance(e, m.TasksChanged) for e in first)


async def test_progress_begins_reports_and_ends_in_order_and_is_coalesced(c1, emulator):
    emulator.script("anthropic", Reply(chunks=[f"t{i} " for i in range(120)], chunk_delay=0.005))
    s = await c1.create_session(model="sonnet")
    await c1.attach(s.id, since_seq=s.last_seq)
    events = await send_and_wait(c1, s.id, "stream")
    progress = [e for e in events if isinstance(e, m.Progress)]
    kinds = [p.kind for p in progress]
    assert kinds[0] == "begin" and kinds[-1] == "end" and kinds.count("begin") == kinds.count("end") == 1
    assert progress[-1].outcome == "complete" and progress[-1].output_tokens > 0
    reports = [p for p in progress if p.kind == "report"]
    deltas = [e for e in events if isinstance(e, m.MessageDelta)]
    assert len(reports) <= len(deltas)
    # about ten a second at most: 120 chunks over ~0.6s must not yield dozens of reports
    assert len(reports) <= 12


def _expected_estimate(replies: list[Message]) -> float:
    """What the estimate promises, from the replies the daemon measured: the typical
    wait for the first token plus the typical reply length (output tokens) at the
    model's throughput (output tokens over seconds spent streaming). Computed from
    the very figures the replies carry, so no machine is too slow or too fast for it
    (the first reply includes the SDK's cold import: it weighs in as measured)."""
    ttft_s = statistics.median(r.ttft_ms for r in replies) / 1000
    outputs = [r.usage.output_tokens for r in replies]
    streaming_s = sum(max(r.latency_ms - r.ttft_ms, 1.0) / 1000 for r in replies)
    return ttft_s + statistics.median(outputs) / (sum(outputs) / streaming_s)


async def test_the_estimate_appears_once_measured_and_follows_the_models_replies(c1, emulator):
    def begin_and_reply(events: list) -> tuple[m.Progress, Message]:
        begin = next(e for e in events if isinstance(e, m.Progress) and e.kind == "begin")
        done = [e for e in events if isinstance(e, m.MessageCompleted) and e.message.role == "assistant"]
        return begin, done[-1].message

    def script(chunks: int, turns: int) -> None:
        emulator.script("anthropic", *[Reply(chunks=[f"w{i} " for i in range(chunks)], chunk_delay=0.01)
                                       for _ in range(turns)])

    s = await c1.create_session(model="haiku")
    await c1.attach(s.id, since_seq=s.last_seq)
    script(30, 3)
    replies: list[Message] = []
    estimates = []
    for k in range(3):
        begin, reply = begin_and_reply(await send_and_wait(c1, s.id, f"short {k}"))
        if replies:
            # Each estimate is the one the replies so far promise, to the rounding.
            assert begin.estimated_s == pytest.approx(_expected_estimate(replies), abs=0.011)
        estimates.append(begin.estimated_s)
        replies.append(reply)
    assert estimates[0] is None  # nothing measured yet for this model
    assert all(e is not None and e > 0 for e in estimates[1:])

    script(120, 4)
    for k in range(4):
        replies.append(begin_and_reply(await send_and_wait(c1, s.id, f"long {k}"))[1])
    script(120, 1)
    begin, _ = begin_and_reply(await send_and_wait(c1, s.id, "one more"))
    # The replies got longer (120 chunks instead of 30), and the estimate follows them.
    short_tokens = statistics.median(r.usage.output_tokens for r in replies[:3])
    assert statistics.median(r.usage.output_tokens for r in replies) >= 2 * short_tokens
    assert begin.estimated_s == pytest.approx(_expected_estimate(replies), abs=0.011)
    assert (await c1.status()).running_turns == []
