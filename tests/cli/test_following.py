"""`duologue attach` and `duologue chat --plain` keep following a session: across a
daemon restart and a client/dropped notice each later event is shown exactly once,
and a notification this version does not know (a newer daemon's) is ignored."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from pathlib import Path

import pytest
from cli_support import Output
from relay_support import NewerDaemon

from duologue.clients.rpc.sync_client import Client
from duologue.protocol import methods as m
from support import DaemonProcess, wait_until

BIG_TASKS = [m.TaskInput(content=f"task {i} " + "x" * 1900) for i in range(10)]  # ~20 KB an event


def stored_seqs(lines: list[str]) -> list[int]:
    """The seqs of the events `duologue attach --json` printed, in order."""
    return [json.loads(line)["params"]["seq"] for line in lines if line.startswith("{")]


def renamed_to(title: str) -> Callable[[str], bool]:
    return lambda line: line.startswith("{") and json.loads(line)["params"].get("title") == title


@pytest.fixture
def writer(daemon: DaemonProcess):
    with Client(daemon.paths, autostart=False, client_name="writer", timeout=20) as c:
        yield c


def test_attach_survives_a_daemon_restart_and_shows_later_events_once(daemon: DaemonProcess):
    with Client(daemon.paths, autostart=False, timeout=20) as c:
        sid = c.create_session(title="followed").id
        c.rename_session(sid, "before the restart")
    attach = Output(daemon.env, "attach", sid, "--since", "0", "--json")
    try:
        attach.wait_for(renamed_to("before the restart"), "the rename before the restart")
        daemon.restart()
        with Client(daemon.paths, autostart=False, timeout=20) as c:
            c.rename_session(sid, "after the restart")
            c.rename_session(sid, "and once more")
        attach.wait_for(renamed_to("and once more"), "the renames after the restart")
        assert stored_seqs(attach.lines) == [1, 2, 3, 4]
    finally:
        attach.stop()


def test_attach_catches_up_after_a_client_dropped_notice_and_shows_later_events_once(home: Path):
    config = home / "config"
    config.mkdir(parents=True)
    (config / "config.toml").write_text("client_queue_bytes = 65536\n")
    daemon = DaemonProcess(home).start()
    attach = None
    try:
        with Client(daemon.paths, autostart=False, client_name="writer", timeout=20) as writer:
            sid = writer.create_session(title="flooded").id
            attach = Output(daemon.env, "attach", sid, "--since", "0", "--json")
            attach.wait_for(lambda line: line.startswith("{"), "the first event")
            attach.proc.send_signal(signal.SIGSTOP)  # it reads nothing, its queue fills
            for _ in range(300):
                writer.update_tasks(sid, BIG_TASKS)
                if "behind" in daemon.log():
                    break
            wait_until(lambda: "behind" in daemon.log(), timeout=20)  # dropped with a notice
            attach.proc.send_signal(signal.SIGCONT)
            writer.rename_session(sid, "after the drop")
            attach.wait_for(renamed_to("after the drop"), "the rename after the drop", timeout=60)
            last = writer.get_session(sid, limit=1).session.last_seq
        assert stored_seqs(attach.lines) == list(range(1, last + 1))
    finally:
        if attach is not None:
            attach.stop()
        daemon.stop()


def test_attach_ignores_a_notification_it_does_not_know(daemon: DaemonProcess, writer: Client):
    sid = writer.create_session(title="newer").id
    with NewerDaemon(daemon) as newer:
        attach = Output(daemon.env, "attach", sid, "--since", "0")
        try:
            attach.wait_for(lambda line: "newer" in line, "the session header")
            newer.notify("session/annotated", {"session_id": sid, "seq": 1, "note": "from a newer daemon"})
            newer.notify("daemon/notice", {"text": "a notice for every client"})
            writer.rename_session(sid, "after the unknown ones")
            attach.wait_for(lambda line: "[renamed: after the unknown ones]" in line, "the rename")
            assert attach.proc.poll() is None
            assert not any("annotated" in line or "notice" in line for line in attach.lines)
        finally:
            attach.stop()
        assert "Traceback" not in attach.stderr()


def chat(env: dict[str, str], sid: str) -> Output:
    out = Output(env, "chat", "--plain", sid, stdin=True)
    out.wait_for(lambda line: "/help" in line, "the chat's prompt hint")
    return out


def leave(out: Output) -> None:
    assert out.proc.stdin is not None
    out.proc.stdin.close()  # end of input: the chat ends
    assert out.proc.wait(20) == 0, out.stderr()


def test_chat_plain_ignores_a_notification_it_does_not_know(daemon: DaemonProcess, writer: Client):
    sid = writer.create_session(title="chatting").id
    with NewerDaemon(daemon) as newer:
        out = chat(daemon.env, sid)
        newer.notify("session/annotated", {"session_id": sid, "seq": 1, "note": "from a newer daemon"})
        writer.rename_session(sid, "still printed")
        out.wait_for(lambda line: "[renamed: still printed]" in line, "the rename after the unknown one")
        leave(out)


def test_chat_plain_goes_on_printing_after_a_daemon_restart(daemon: DaemonProcess):
    with Client(daemon.paths, autostart=False, timeout=20) as c:
        sid = c.create_session(title="chatting").id
    out = chat(daemon.env, sid)
    daemon.restart()
    out.wait_for(lambda line: "[reconnected" in line, "the reconnection")
    with Client(daemon.paths, autostart=False, timeout=20) as c:
        c.rename_session(sid, "after the restart")
    out.wait_for(lambda line: "[renamed: after the restart]" in line, "the rename after the restart")
    leave(out)
    assert sum("[renamed: after the restart]" in line for line in out.lines) == 1
