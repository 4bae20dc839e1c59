"""``duologue sync status``: connected or not, the server, the device, what lags;
a bad url or bad credentials is a clear message there and in the log, never a hang,
and the daemon serves locally all the same."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from support import DaemonProcess
from sync_support import NatsServer, free_port, sync_daemon, wait_for

SCRIPT = Path(sys.executable).parent / "duologue"


def _sync_status(daemon: DaemonProcess, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), "sync", "status", *flags], env=daemon.env, capture_output=True,
                          text=True, timeout=60)


async def test_sync_status_says_connected_with_the_server_and_device(laptop: DaemonProcess,
                                                                     nats_server: NatsServer):
    async with laptop.client() as c:
        await wait_for(lambda: _connected(c), what="connected")
    said = json.loads(_sync_status(laptop, "--json").stdout)
    assert said["configured"] and said["connected"]
    assert (said["server"], said["device_name"]) == (nats_server.url, "laptop")
    assert said.get("sessions", []) == []  # omitted when empty
    text = _sync_status(laptop).stdout
    assert f"laptop -> {nats_server.url}: connected" in text and "every session is in sync" in text


async def _connected(c) -> bool:
    return (await c.sync_status()).connected


async def _error(c) -> str | None:
    return (await c.sync_status()).error


async def test_no_server_at_the_url_is_a_clear_status_and_the_daemon_serves_meanwhile(tmp_path: Path):
    d = sync_daemon(tmp_path / "alone", f"nats://127.0.0.1:{free_port()}", "alone").start()
    try:
        async with d.client() as c:
            error = await wait_for(lambda: _error(c), what="a connection error")
            assert "cannot connect to NATS at nats://127.0.0.1:" in error or "no NATS server answered" in error
            session = await c.create_session(title="offline all the same")
            assert (await c.get_session(session.id)).session.title == "offline all the same"
            status = await c.sync_status()
            assert not status.connected and [row.session_id for row in status.sessions] == [session.id]
            assert status.sessions[0].unpublished == 1
        assert "NOT connected" in _sync_status(d).stdout
        assert "sync: cannot connect" in d.log() or "sync: no NATS server answered" in d.log()
    finally:
        d.stop()


async def test_wrong_credentials_are_named_as_such_and_the_password_is_never_shown(tmp_path: Path):
    server = NatsServer(tmp_path / "nats", extra=["--user", "team", "--pass", "right-one"]).start()
    d = sync_daemon(tmp_path / "home", server.url, "laptop", 'user = "team"\npassword = "wrong-one"\n').start()
    try:
        async with d.client() as c:
            error = await wait_for(lambda: _error(c), what="a credentials error")
        assert "refused the credentials" in error
        shown = _sync_status(d, "--json").stdout + d.log()
        assert "wrong-one" not in shown and "right-one" not in shown
    finally:
        d.stop()
        server.stop()


async def test_sync_status_without_a_sync_table_says_nothing_leaves_the_machine(daemon: DaemonProcess):
    assert "nothing leaves this machine" in _sync_status(daemon).stdout
