"""The language server follows the protocol's sequence rules for the editor: after a
daemon restart that only the daemon's instance_id reveals, and after a client/dropped
notice, it attaches the editor's sessions again and forwards each event once."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from relay_support import NewerDaemon

from duologue.clients.lsp import commands as c
from duologue.clients.lsp.stdio_client import LspClient
from duologue.protocol import methods as m
from support import DaemonProcess, wait_until

STORED = {name for name, n in m.NOTIFICATIONS.items() if n.stored}
LSP_ARGV = [sys.executable, "-m", "duologue.clients.cli", "lsp"]
BIG_TASKS = [{"content": f"task {i} " + "x" * 1900} for i in range(10)]  # ~20 KB an event


def stored_seqs(editor: LspClient, session_id: str) -> list[int]:
    return [msg["params"]["seq"] for msg in editor.received
            if msg.get("method") in STORED and msg["params"]["session_id"] == session_id]


def renamed(title: str):
    return lambda msg: msg.get("method") == "session/renamed" and msg["params"]["title"] == title


async def test_a_restart_behind_a_relay_is_noticed_and_the_editor_misses_nothing(start_lsp, daemon: DaemonProcess):
    with NewerDaemon(daemon) as relay:
        editor = await start_lsp()
        session = (await editor.execute(c.NEW_SESSION, {"title": "relayed"}))["session"]
        await editor.wait_for(lambda msg: msg.get("method") == "session/created")
        assert relay.clients == 1

        await asyncio.to_thread(relay.restart_daemon)  # the server's connection stays up
        async with daemon.client("other") as other:
            await other.rename_session(session["id"], "after the restart")
        await editor.wait_for(renamed("after the restart"), timeout=30)
        await editor.wait_for(lambda msg: msg.get("method") == "window/logMessage"
                              and "restarted" in msg["params"]["message"])
        assert stored_seqs(editor, session["id"]) == [1, 2]
        await editor.shutdown_and_exit(10)


async def test_after_a_drop_notice_the_editor_gets_every_event_once_and_no_notice(home: Path, project: Path):
    config = home / "config"
    config.mkdir(parents=True)
    (config / "config.toml").write_text("client_queue_bytes = 65536\n")
    daemon = DaemonProcess(home).start()
    editor = None
    try:
        editor = await LspClient.spawn(LSP_ARGV, env=daemon.env, cwd=project)
        await editor.initialize(project)
        session = (await editor.execute(c.NEW_SESSION, {"title": "flooded"}))["session"]
        sid = session["id"]
        await editor.wait_for(lambda msg: msg.get("method") == "session/created")
        os.kill(editor.proc.pid, signal.SIGSTOP)  # the server reads nothing: its queue fills
        try:
            async with daemon.client("writer") as writer:
                for _ in range(300):
                    await writer.update_tasks(sid, [m.TaskInput(**t) for t in BIG_TASKS])
                    if "behind" in daemon.log():
                        break
                await asyncio.to_thread(wait_until, lambda: "behind" in daemon.log(), 20)
        finally:
            os.kill(editor.proc.pid, signal.SIGCONT)
        async with daemon.client("writer") as writer:
            await writer.rename_session(sid, "after the drop")
            last = (await writer.get_session(sid, limit=1)).session.last_seq
        await editor.wait_for(renamed("after the drop"), timeout=60)
        assert stored_seqs(editor, sid) == list(range(1, last + 1))
        assert not editor.notifications("client/dropped")  # the server caught up for the editor
        await editor.shutdown_and_exit(10)
    finally:
        if editor is not None and editor.proc.returncode is None:
            await editor.kill()
        daemon.stop()
