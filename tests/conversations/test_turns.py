"""Conversations end to end: real daemon, real SDKs, the emulator over loopback."""

from __future__ import annotations

import asyncio

import pytest
from conversation_support import collect_turn, provider_daemon, send_and_wait, stored

from duologue.daemon.emulator import Failure, Reply
from duologue.daemon.emulator.script import ToolCall
from duologue.protocol import methods as m
from duologue.protocol.entities import CodeContextBlock, LineRange


def _roles(body: dict, provider: str) -> list[str]:
    key = "messages" if provider == "anthropic" else "contents"
    return [turn["role"] for turn in body[key]]


def _texts(body: dict, provider: str) -> str:
    return str(body["messages"] if provider == "anthropic" else body["contents"])


async def test_claude_gemini_claude_each_model_receives_the_whole_history(c1, emulator):
    s = await c1.create_session(model="sonnet", system_prompt="be brief")
    await c1.attach(s.id, since_seq=s.last_seq)
    await send_and_wait(c1, s.id, "first question about lifetimes")
    await c1.switch_model(s.id, "flash")
    await send_and_wait(c1, s.id, "second question")
    await c1.switch_model(s.id, "sonnet")
    await send_and_wait(c1, s.id, "third question")

    received = emulator.received
    assert [r.provider for r in received] == ["anthropic", "gemini", "anthropic"]
    gemini_body = received[1].body
    assert _roles(gemini_body, "gemini") == ["user", "model", "user"]
    assert "first question about lifetimes" in _texts(gemini_body, "gemini")
    assert "[emulator claude-sonnet-5-5]" in _texts(gemini_body, "gemini")
    assert "be brief" in str(gemini_body.get("systemInstruction") or gemini_body.get("system_instruction"))
    last = received[2].body
    assert _roles(last, "anthropic") == ["user", "assistant", "user", "assistant", "user"]
    assert "[emulator gemini-3.8-flash]" in _texts(last, "anthropic")
    assert [block["text"] for block in last["system"]] == ["be brief"]

    got = await c1.get_session(s.id)
    replies = [msg for msg in got.messages if msg.role == "assistant"]
    assert [msg.model for msg in replies] == ["claude-sonnet-5-5", "gemini-3.8-flash", "claude-sonnet-5-5"]
    assert all(msg.status == "complete" and msg.usage and msg.ttft_ms is not None for msg in replies)
    assert "2 earlier turns" in replies[1].text  # the default reply says what it received
    assert [w.to_model for w in got.switches] == ["gemini-3.8-flash", "claude-sonnet-5-5"]


async def test_code_context_reaches_the_model_verbatim(c1, emulator):
    s = await c1.create_session(model="flash")
    await c1.attach(s.id, since_seq=s.last_seq)
    block = CodeContextBlock(path="src/lib.rs", text="fn main() { borrow(); }\n", language="rust",
                             range=LineRange(start=3, end=3))
    await send_and_wait(c1, s.id, "why does this not compile?", context=[block])
    body = str(emulator.received[-1].body)
    assert "src/lib.rs" in body and "fn main() { borrow(); }" in body


async def test_reply_streams_as_deltas_and_completes_with_usage_and_timings(c1, emulator):
    emulator.script("anthropic", Reply(chunks=["one ", "two ", "three"], chunk_delay=0.06))
    s = await c1.create_session(model="sonnet")
    await c1.attach(s.id, since_seq=s.last_seq)
    events = stored(await send_and_wait(c1, s.id, "count"))
    deltas = [e.text for e in events if isinstance(e, m.MessageDelta)]
    assert len(deltas) >= 2 and "".join(deltas) == "one two three"
    done = [e for e in events if isinstance(e, m.MessageCompleted)][-1].message
    assert done.text == "one two three" and done.status == "complete" and done.model == "claude-sonnet-5-5"
    assert done.stop_reason == "end_turn" and done.usage.output_tokens > 0
    assert done.latency_ms >= done.ttft_ms > 0
    seqs = [e.seq for e in events]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))


async def test_two_attached_clients_receive_identical_event_sequences(c1, c2, emulator):
    emulator.script("anthropic", Reply(text="a shared streamed answer in words", chunk_delay=0.02))
    s = await c1.create_session(model="sonnet")
    await c1.attach(s.id, since_seq=s.last_seq)
    await c2.attach(s.id, since_seq=s.last_seq)
    sent = await c1.send(s.id, "hello both")
    first, second = await asyncio.gather(collect_turn(c1, sent.turn_id), collect_turn(c2, sent.turn_id))
    assert stored(first) == stored(second) and len(stored(first)) >= 4


async def test_detach_mid_stream_and_reattach_since_seq_ends_with_the_same_text(c1, c2, emulator):
    emulator.script("anthropic", Reply(text=" ".join(f"w{i}" for i in range(30)), chunk_delay=0.02))
    s = await c1.create_session(model="sonnet")
    await c1.attach(s.id, since_seq=s.last_seq)
    await c2.attach(s.id, since_seq=s.last_seq)
    sent = await c1.send(s.id, "long answer please")
    seen = []
    async for event in c2.events():
        seen.append(event)
        if isinstance(event, m.MessageDelta):
            break
    await c2.detach(s.id)
    full = await collect_turn(c1, sent.turn_id)
    await c2.attach(s.id, since_seq=seen[-1].seq)
    resumed = []
    while not any(isinstance(e, m.MessageCompleted) for e in resumed):
        resumed.append(await c2.next_event(10))
    text_c2 = "".join(e.text for e in stored(seen + resumed) if isinstance(e, m.MessageDelta))
    text_c1 = "".join(e.text for e in stored(full) if isinstance(e, m.MessageDelta))
    assert text_c2 == text_c1 == " ".join(f"w{i}" for i in range(30))


async def test_cancel_stops_the_turn_and_keeps_partial_text_marked(c1, emulator):
    emulator.script("anthropic", Reply(text=" ".join(f"w{i}" for i in range(200)), chunk_delay=0.03, thinking=""))
    s = await c1.create_session(model="sonnet")
    await c1.attach(s.id, since_seq=s.last_seq)
    sent = await c1.send(s.id, "go on forever")
    async for event in c1.events():
        if isinstance(event, m.MessageDelta):
            break
    result = await c1.cancel(s.id)
    assert result.cancelled and result.turn_id == sent.turn_id
    async for event in c1.events():  # cancel answers once signalled; the reply ends after
        if isinstance(event, m.MessageCompleted) and event.message.role == "assistant":
            break
    reply = [msg for msg in (await c1.get_session(s.id)).messages if msg.role == "assistant"][-1]
    assert reply.status == "cancelled" and reply.text.startswith("w0")
    assert len(reply.text.split()) < 200
    with pytest.raises(Exception, match="no turn is running"):
        await c1.cancel(s.id)


async def test_concurrent_sends_to_one_session_are_answered_in_order(c1, emulator):
    s = await c1.create_session(model="haiku")
    await c1.attach(s.id, since_seq=s.last_seq)
    sends = await asyncio.gather(*(c1.send(s.id, f"question {i}") for i in range(4)))
    await collect_turn(c1, sends[-1].turn_id)
    msgs = (await c1.get_session(s.id)).messages
    replies = [msg for msg in msgs if msg.role == "assistant"]
    assert [r.turn_id for r in replies] == [x.turn_id for x in sends]
    assert all(r.status == "complete" for r in replies)
    # each turn saw exactly the earlier turns, in order, and none of the queued ones
    for i, request in enumerate(emulator.received):
        seen = [t["content"] for t in request.body["messages"] if t["role"] == "user"]
        assert len(seen) == i + 1
        assert f"question {i}" in str(seen[-1]) and all(f"question {j}" not in str(seen) for j in range(i + 1, 4))


@pytest.mark.parametrize("failure, kind", [
    (Failure(status=429, retry_after=0), "rate_limited"),
    (Failure(status=500), "server"),
    (Failure(status=529), "overloaded"),
    (Failure(cut_after=3), "stream_cut"),
])
async def test_retryable_error_fails_over_to_the_other_provider(c1, emulator, failure, kind):
    emulator.script("anthropic", failure)
    s = await c1.create_session(model="sonnet")
    await c1.attach(s.id, since_seq=s.last_seq)
    await send_and_wait(c1, s.id, "please answer")
    got = await c1.get_session(s.id)
    failed, answered = [msg for msg in got.messages if msg.role == "assistant"]
    assert failed.status == "failed" and failed.model == "claude-sonnet-5-5" and kind in failed.error
    assert answered.status == "complete" and answered.model == "gemini-3.8-flash"
    switch = got.switches[-1]
    assert switch.kind == "failover" and kind in switch.reason and switch.to_model == "gemini-3.8-flash"
    metrics = await c1.metrics()
    sonnet = next(x for x in metrics.models if x.name == "claude-sonnet-5-5")
    assert sonnet.errors == {kind: 1} and sonnet.failovers_from == 1


async def test_auth_error_fails_the_turn_with_a_clear_message_and_no_key(home, emulator):
    good = emulator.api_keys["anthropic"]
    d = provider_daemon(home, emulator, anthropic_key="invalid-" + good).start()
    try:
        async with d.client() as c:
            s = await c.create_session(model="sonnet")
            await c.attach(s.id, since_seq=s.last_seq)
            await send_and_wait(c, s.id, "hello")
            reply = [msg for msg in (await c.get_session(s.id)).messages if msg.role == "assistant"]
            assert len(reply) == 1 and reply[0].status == "failed" and "auth" in reply[0].error
            assert good not in reply[0].error
        assert good not in d.log() and emulator.api_keys["gemini"] not in d.log()
    finally:
        d.stop()


async def test_kill9_during_stream_keeps_partial_text_marked_interrupted(live, emulator):
    emulator.script("anthropic", Reply(text=" ".join(f"w{i}" for i in range(300)), chunk_delay=0.02, thinking=""))
    async with live.client() as c:
        s = await c.create_session(model="sonnet")
        await c.attach(s.id, since_seq=s.last_seq)
        await c.send(s.id, "stream a lot")
        deltas = 0
        async for event in c.events():
            if isinstance(event, m.MessageDelta):
                deltas += 1
                if deltas == 5:
                    break
    live.kill9()
    live.start()
    async with live.client() as c:
        reply = [msg for msg in (await c.get_session(s.id)).messages if msg.role == "assistant"][-1]
        assert reply.status == "interrupted" and reply.text.startswith("w0 w1")
        assert len(reply.text.split()) < 300


async def test_kill9_before_the_first_token_leaves_a_reply_that_says_to_send_again(live, emulator):
    """The reply is stored (empty, streaming) while the request is on its way: a
    daemon killed before the model's first text leaves it, and the restart must end
    it interrupted with a reason, in the model's name, once, and keep the prompt."""
    emulator.script("anthropic", Failure(delay=30))
    async with live.client() as c:
        s = await c.create_session(model="sonnet")
        await c.attach(s.id)
        sent = await c.send(s.id, "are you there?")
        while True:  # the opened reply reaches clients before any text
            event = await c.next_event(30)
            if isinstance(event, m.MessageCreated) and event.message.role == "assistant":
                break
        deadline = asyncio.get_running_loop().time() + 30
        while not emulator.received:
            assert asyncio.get_running_loop().time() < deadline, "the request was never made"
            await asyncio.sleep(0.05)
    live.kill9()
    live.start()
    async with live.client() as c:
        turn = [msg for msg in (await c.get_session(s.id)).messages if msg.turn_id == sent.turn_id]
    assert [(msg.role, msg.status) for msg in turn] == [("user", "complete"), ("assistant", "interrupted")]
    assert turn[0].text == "are you there?"
    assert turn[1].text == "" and turn[1].model == "claude-sonnet-5-5"
    assert "before this message was answered" in turn[1].error


async def test_kill9_between_tool_rounds_closes_the_turn_at_restart(live, emulator):
    """The tool results are the turn's last message when the daemon dies before the
    next round writes anything: a restart must close the turn, not take the results
    for its end, or a client waiting for the turn waits forever."""
    plan = {"tasks": [{"content": "read the code", "status": "in_progress"}]}
    emulator.script("anthropic", Reply(tool_calls=[ToolCall("update_tasks", plan)]), Failure(delay=30))
    async with live.client() as c:
        s = await c.create_session(model="sonnet")
        sent = await c.send(s.id, "plan, then work")
        deadline = asyncio.get_running_loop().time() + 60
        while len(emulator.received) < 2:  # the second round is asked; nothing of it is written
            assert asyncio.get_running_loop().time() < deadline, "the second round was never asked"
            await asyncio.sleep(0.05)
    live.kill9()
    live.start()
    async with live.client() as c:
        turn = [msg for msg in (await c.get_session(s.id)).messages if msg.turn_id == sent.turn_id]
    assert [(msg.role, msg.status) for msg in turn] == [
        ("user", "complete"), ("assistant", "complete"), ("user", "complete"), ("assistant", "interrupted")]
    assert "between two tool rounds" in turn[-1].error and turn[-1].model == "claude-sonnet-5-5"


@pytest.mark.parametrize("text, context, expect", [
    ("hi", [], "claude-haiku-5-5"),
    ("what does this do?", [CodeContextBlock(path="a.py", text="print(1)\n")], "claude-sonnet-5-5"),
    ("please design a storage engine for this", [], "claude-opus-5-5"),
    ("summarise", [CodeContextBlock(path="big.txt", text="x " * 50_000)], "gemini-3.8-flash"),
])
async def test_auto_picks_a_model_by_task_and_records_why(c1, text, context, expect):
    s = await c1.create_session(model="auto")
    await c1.attach(s.id, since_seq=s.last_seq)
    await send_and_wait(c1, s.id, text, context=context)
    got = await c1.get_session(s.id)
    reply = [msg for msg in got.messages if msg.role == "assistant"][-1]
    assert reply.model == expect
    if expect != "claude-sonnet-5-5":  # the session's starting model: no switch needed
        assert got.switches[-1].kind == "auto" and got.switches[-1].reason.startswith("auto:")
        assert got.switches[-1].to_model == expect
    assert got.session.model == "auto"


async def test_a_provider_that_times_out_fails_over(home, emulator):
    emulator.script("anthropic", Failure(delay=30.0))
    d = provider_daemon(home, emulator, timeout_s=2.0).start()
    try:
        async with d.client() as c:
            s = await c.create_session(model="sonnet")
            await c.attach(s.id, since_seq=s.last_seq)
            await send_and_wait(c, s.id, "hello?")
            got = await c.get_session(s.id)
            failed, answered = [msg for msg in got.messages if msg.role == "assistant"]
            assert failed.status == "failed" and "timeout" in failed.error
            assert answered.status == "complete" and answered.model == "gemini-3.8-flash"
    finally:
        d.stop()


async def test_a_provider_failing_repeatedly_cools_down_and_turns_go_elsewhere(c1, emulator):
    emulator.script("anthropic", *[Failure(status=500)] * 3)
    s = await c1.create_session(model="sonnet")
    await c1.attach(s.id, since_seq=s.last_seq)
    for i in range(3):
        await c1.switch_model(s.id, "sonnet")
        await send_and_wait(c1, s.id, f"attempt {i}")
    status = await c1.status()
    anthropic = next(p for p in status.providers if p.name == "anthropic")
    assert anthropic.cooling_down_until is not None
    await c1.switch_model(s.id, "sonnet")
    before = len([r for r in emulator.received if r.provider == "anthropic"])
    await send_and_wait(c1, s.id, "while cooling")
    assert len([r for r in emulator.received if r.provider == "anthropic"]) == before
    got = await c1.get_session(s.id)
    assert got.switches[-1].kind == "failover" and "cooling down" in got.switches[-1].reason
    assert got.messages[-1].model == "gemini-3.8-flash" and got.messages[-1].status == "complete"
    models = {mi.id: mi for mi in (await c1.list_models()).models}
    assert not models["claude-sonnet-5-5"].available and models["gemini-3.8-flash"].available
