"""A daemon restart under an attached editor: a pause, then the stream goes on with
no event lost or repeated, and requests made during the pause are answered."""

from __future__ import annotations

import asyncio

from duologue.clients.lsp import commands as c
from duologue.protocol import methods as m

STORED = {name for name, n in m.NOTIFICATIONS.items() if n.stored}


async def test_daemon_restart_under_an_attached_editor_resumes_the_stream_without_gaps(start_lsp, daemon):
    editor = await start_lsp()
    session = (await editor.execute(c.NEW_SESSION, {"title": "before"}))["session"]
    await editor.request("session/rename", {"session_id": session["id"], "title": "renamed once"})
    await editor.wait_for(lambda msg: msg.get("method") == "session/renamed")

    await asyncio.to_thread(daemon.stop)
    await editor.wait_for(lambda msg: msg.get("method") == "window/logMessage"
                          and "lost" in msg["params"]["message"])
    during = asyncio.create_task(editor.request("session/get", {"session_id": session["id"]}, timeout=40))
    await asyncio.to_thread(daemon.start)
    async with daemon.client("other") as other:
        # Possibly before the editor has reattached: it must arrive through the replay.
        await other.rename_session(session["id"], "renamed while reconnecting")

    renamed = await editor.wait_for(lambda msg: msg.get("method") == "session/renamed"
                                    and msg["params"]["title"] == "renamed while reconnecting", timeout=30)
    assert renamed["params"]["seq"] == 3
    got = await during
    assert got["session"]["id"] == session["id"]

    asked = await editor.execute(c.ASK, "still there?")
    await editor.wait_for(lambda msg: msg.get("method") == "progress"
                          and msg["params"]["turn_id"] == asked["turn_id"] and msg["params"]["kind"] == "end")
    seqs = [msg["params"]["seq"] for msg in editor.received
            if msg.get("method") in STORED and msg["params"]["session_id"] == session["id"]]
    assert seqs == list(range(1, len(seqs) + 1))
    assert not editor.notifications("window/showMessage")


async def test_a_dropped_request_that_is_safe_to_repeat_is_retried_after_the_restart(start_lsp, daemon):
    editor = await start_lsp()
    await editor.execute(c.NEW_SESSION)
    await asyncio.to_thread(daemon.stop)
    calls = [asyncio.create_task(editor.request("session/list", {}, timeout=40)) for _ in range(3)]
    await asyncio.to_thread(daemon.start)
    for result in await asyncio.gather(*calls):
        assert len(result["sessions"]) == 1
