"""Sessions streamed to editors through the language server: the same stream for
every attached editor, turn progress as ordered work-done progress, errors shown."""

from __future__ import annotations

from typing import Any

import pytest

from duologue.clients.lsp import commands as c
from duologue.daemon.emulator import Failure, Reply
from duologue.protocol import methods as m
from duologue.protocol.errors import ErrorCode

STORED = {name for name, n in m.NOTIFICATIONS.items() if n.stored}


def progress_end(turn_id: str):
    def match(msg: dict[str, Any]) -> bool:
        return msg.get("method") == "progress" and msg["params"]["turn_id"] == turn_id \
            and msg["params"]["kind"] == "end"
    return match


def work_done_end(turn_id: str):
    def match(msg: dict[str, Any]) -> bool:
        return msg.get("method") == "$/progress" and msg["params"]["token"] == f"duologue/{turn_id}" \
            and msg["params"]["value"]["kind"] == "end"
    return match


def stored_stream(client, session_id: str) -> list[tuple[str, int, Any]]:
    return [(msg["method"], msg["params"]["seq"], msg["params"].get("text"))
            for msg in client.received
            if msg.get("method") in STORED and msg["params"]["session_id"] == session_id]


def reply_text(client, message_id: str) -> str:
    return "".join(p["text"] for p in client.notifications("message/delta") if p["message_id"] == message_id)


async def test_two_language_servers_attached_to_one_session_see_the_same_stream(start_lsp):
    first = await start_lsp()
    second = await start_lsp()
    session = (await first.execute(c.NEW_SESSION, {"title": "shared"}))["session"]
    attached = await second.execute(c.ATTACH, session["id"])
    assert attached["session"]["id"] == session["id"]

    asked = await first.execute(c.ASK, "what does add() return?")
    assert asked["session_id"] == session["id"]
    for client in (first, second):
        await client.wait_for(progress_end(asked["turn_id"]))
    done = [p for p in second.notifications("message/completed") if p["message"]["turn_id"] == asked["turn_id"]]
    assert done and done[-1]["message"].get("status", "complete") == "complete"

    stream = stored_stream(first, session["id"])
    assert stream == stored_stream(second, session["id"])
    assert [seq for _, seq, _ in stream] == list(range(1, len(stream) + 1))
    assert {"session/created", "message/created", "message/delta", "message/completed"} <= {x for x, _, _ in stream}
    final = done[-1]["message"]
    text = "".join(b["text"] for b in final["content"] if b["type"] == "text")
    assert reply_text(second, final["id"]) == text and "what does add() return?" in text


async def test_turn_progress_appears_as_work_done_progress_in_order(start_live_lsp, emulator):
    emulator.script("anthropic", Reply(chunks=["one ", "two ", "three ", "four"], chunk_delay=0.05))
    client = await start_live_lsp()
    await client.execute(c.NEW_SESSION, {"model": "sonnet"})
    asked = await client.execute(c.ASK, "count to four")
    token = f"duologue/{asked['turn_id']}"
    await client.wait_for(work_done_end(asked["turn_id"]))

    steps = [(msg["method"], msg["params"]) for msg in client.received
             if msg.get("params") and isinstance(msg["params"], dict) and msg["params"].get("token") == token]
    assert steps[0] == ("window/workDoneProgress/create", {"token": token})
    kinds = [params["value"]["kind"] for method, params in steps[1:]]
    assert kinds[0] == "begin" and kinds[-1] == "end" and set(kinds[1:-1]) <= {"report"}
    assert len(kinds) >= 3
    begin = steps[1][1]["value"]
    assert begin["title"] == "duologue: sonnet" and begin["cancellable"] is True
    tokens = [int(p["value"]["message"].split(" tokens")[0])
              for _, p in steps[2:-1] if " tokens" in p["value"]["message"]]
    assert tokens and tokens == sorted(tokens)
    assert steps[-1][1]["value"]["message"].startswith("complete")
    create_at = next(i for i, msg in enumerate(client.received) if msg.get("method") == "window/workDoneProgress/create")
    first_delta = next(i for i, msg in enumerate(client.received) if msg.get("method") == "message/delta")
    end_at = next(i for i, msg in enumerate(client.received) if work_done_end(asked["turn_id"])(msg))
    completed_at = next(i for i, msg in enumerate(client.received) if msg.get("method") == "message/completed")
    assert create_at < end_at and first_delta < completed_at < end_at


async def test_no_work_done_progress_for_an_editor_that_does_not_support_it(start_lsp):
    client = await start_lsp(capabilities={})
    await client.execute(c.NEW_SESSION)
    asked = await client.execute(c.ASK, "hello")
    await client.wait_for(progress_end(asked["turn_id"]))
    assert not client.notifications("$/progress")
    assert not client.notifications("window/workDoneProgress/create")


async def test_cancelling_the_work_done_progress_cancels_the_turn(start_live_lsp, emulator):
    emulator.script("anthropic", Reply(chunks=["slow "] * 200, chunk_delay=0.05))
    client = await start_live_lsp()
    await client.execute(c.NEW_SESSION, {"model": "sonnet"})
    asked = await client.execute(c.ASK, "take your time")
    await client.wait_for(lambda msg: msg.get("method") == "message/delta")
    client.notify("window/workDoneProgress/cancel", {"token": f"duologue/{asked['turn_id']}"})
    done = await client.wait_for(lambda msg: msg.get("method") == "message/completed"
                                 and msg["params"]["message"]["role"] == "assistant")
    assert done["params"]["message"]["status"] == "cancelled"
    await client.wait_for(work_done_end(asked["turn_id"]))


async def test_a_failed_reply_is_shown_to_the_user(start_live_lsp, emulator):
    emulator.script("anthropic", Failure(status=400, message="prompt is malformed"))
    client = await start_live_lsp()
    await client.execute(c.NEW_SESSION, {"model": "sonnet"})
    asked = await client.execute(c.ASK, "this will fail")
    await client.wait_for(progress_end(asked["turn_id"]))
    shown = await client.wait_for(lambda msg: msg.get("method") == "window/showMessage")
    assert shown["params"]["type"] == 1 and "failed" in shown["params"]["message"]


async def test_command_errors_are_answered_and_shown(start_lsp):
    client = await start_lsp()
    with pytest.raises(Exception) as caught:
        await client.execute(c.SWITCH_MODEL, "flash")
    assert caught.value.code == ErrorCode.INVALID_PARAMS and "no current session" in caught.value.message
    await client.execute(c.NEW_SESSION)
    with pytest.raises(Exception) as caught:
        await client.execute(c.SWITCH_MODEL, {"model": "gpt-9"})
    assert caught.value.code == ErrorCode.UNKNOWN_MODEL
    with pytest.raises(Exception) as caught:
        await client.execute(c.ASK, {"text": "hi", "colour": "red"})
    assert caught.value.code == ErrorCode.INVALID_PARAMS
    shown = [p for p in client.notifications("window/showMessage") if p["type"] == 1]
    assert len(shown) == 3 and "gpt-9" in shown[1]["message"]


async def test_switch_model_command_emits_the_switch_to_the_editor(start_lsp):
    client = await start_lsp()
    session = (await client.execute(c.NEW_SESSION, {"model": "sonnet"}))["session"]
    result = await client.execute(c.SWITCH_MODEL, {"model": "flash", "reason": "long read"})
    assert result["switch"]["to_model"] == "gemini-3.8-flash"
    event = await client.wait_for(lambda msg: msg.get("method") == "session/model_switched")
    assert event["params"]["session_id"] == session["id"]
    assert event["params"]["switch"]["reason"] == "long read"


async def test_ask_about_this_code_action_sends_the_selection_as_code_context(start_lsp, project):
    client = await start_lsp()
    uri = (project / "src" / "lib.py").resolve().as_uri()
    client.notify("textDocument/didOpen", {"textDocument": {
        "uri": uri, "languageId": "python", "version": 1,
        "text": (project / "src" / "lib.py").read_text()}})
    empty = await client.request("textDocument/codeAction", {
        "textDocument": {"uri": uri}, "range": {"start": {"line": 0, "character": 3}, "end": {"line": 0, "character": 3}},
        "context": {"diagnostics": []}})
    assert not empty
    actions = await client.request("textDocument/codeAction", {
        "textDocument": {"uri": uri}, "range": {"start": {"line": 0, "character": 4}, "end": {"line": 2, "character": 0}},
        "context": {"diagnostics": []}})
    assert [a["title"] for a in actions] == ["Ask duologue about this"]
    command = actions[0]["command"]
    assert command["command"] == c.ASK
    block = command["arguments"][0]["context"][0]
    assert block == {"type": "code_context", "path": "src/lib.py", "language": "python",
                     "range": {"start": 1, "end": 2}, "text": "def add(a, b):\n    return a + b\n"}

    asked = await client.execute(command["command"], *command["arguments"])
    await client.wait_for(progress_end(asked["turn_id"]))
    got = await client.request("session/get", {"session_id": asked["session_id"]})
    question = got["messages"][0]
    assert question["content"][1] == block or block in question["content"]
    assert got["session"]["title"] == c.title_from(question["content"][0]["text"])
