"""The daemon's life: restart with all state, one daemon per home, recovery after
kill -9, clean stops, file modes, a deep $DUOLOGUE_HOME, and autostart."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from duologue.clients.rpc.client import AsyncClient
from duologue.clients.rpc.launcher import read_pid
from duologue.protocol import methods as m
from support import DaemonProcess, wait_until


async def test_a_restart_shows_all_state(daemon: DaemonProcess):
    async with daemon.client() as c:
        a = await c.create_session(title="first", project_id="/p", system_prompt="terse",
                                   metadata={"k": "v"})
        b = await c.create_session(title="second")
        await c.rename_session(a.id, "first renamed")
        switched = await c.switch_model(a.id, "flash", reason="long read")
        tasks = await c.update_tasks(a.id, [m.TaskInput(content="one", status="completed"),
                                            m.TaskInput(content="two")])
        before_a = await c.get_session(a.id)
        before_b = await c.get_session(b.id)
        listed = await c.list_sessions()

    daemon.restart()

    async with daemon.client() as c:
        after_a = await c.get_session(a.id)
        assert after_a == before_a
        assert after_a.session.title == "first renamed"
        assert after_a.switches == [switched.switch]
        assert after_a.tasks == tasks
        assert await c.get_session(b.id) == before_b
        assert await c.list_sessions() == listed
        # Seqs continue where they stopped: the next event is last_seq + 1.
        renamed = await c.rename_session(a.id, "after restart")
        assert renamed.last_seq == before_a.session.last_seq + 1


async def test_a_client_reattaching_after_a_restart_misses_nothing(daemon: DaemonProcess):
    async with daemon.client() as c:
        s = await c.create_session()
        await c.attach(s.id, since_seq=s.last_seq)
        await c.rename_session(s.id, "before")
        seen = await c.next_event(10)
    daemon.restart()
    async with daemon.client() as writer, daemon.client() as reader:
        await writer.rename_session(s.id, "while away")
        result = await reader.attach(s.id, since_seq=seen.seq)
        assert result.replayed == 1
        event = await reader.next_event(10)
        assert isinstance(event, m.SessionRenamed) and event.title == "while away"
        assert event.seq == seen.seq + 1


def test_a_second_daemon_on_the_same_home_exits_3_and_names_the_running_pid(daemon: DaemonProcess):
    second = subprocess.run([sys.executable, "-m", "duologue.daemon", "--emulator"], env=daemon.env,
                            capture_output=True, text=True, timeout=30)
    assert second.returncode == 3
    assert f"pid {daemon.pid}" in second.stdout + second.stderr
    assert read_pid(daemon.paths) == daemon.pid  # the loser did not overwrite the lock file


async def test_stale_socket_and_lock_left_by_kill9_are_recovered(daemon: DaemonProcess):
    async with daemon.client() as c:
        s = await c.create_session(title="survivor")
    old_pid = daemon.pid
    daemon.kill9()
    assert Path(daemon.paths.socket_path).exists(), "kill -9 leaves the socket file behind"
    assert read_pid(daemon.paths) == old_pid, "kill -9 leaves the pid in the lock file"

    daemon.start()
    assert daemon.pid != old_pid
    async with daemon.client() as c:
        assert (await c.status()).pid == daemon.pid
        assert (await c.get_session(s.id)).session.title == "survivor"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_a_signal_stops_the_daemon_cleanly_and_keeps_the_store(daemon: DaemonProcess, sig: int):
    async with daemon.client() as c:
        s = await c.create_session(title="kept")
    assert daemon.stop(sig) == 0
    assert Path(daemon.paths.store_dir, "data.mdb").exists()
    assert read_pid(daemon.paths) is None, "a clean stop clears the pid"
    assert not Path(daemon.paths.socket_path).exists(), "a clean stop removes its socket"
    assert "stopped" in daemon.log()
    daemon.start()
    async with daemon.client() as c:
        assert (await c.get_session(s.id)).session.title == "kept"


async def test_daemon_shutdown_stops_it_cleanly_after_answering(daemon: DaemonProcess):
    async with daemon.client() as c:
        s = await c.create_session(title="kept")
        await c.shutdown()
    assert daemon.proc is not None
    assert daemon.proc.wait(15) == 0
    assert not Path(daemon.paths.socket_path).exists()
    daemon.start()
    async with daemon.client() as c:
        assert (await c.get_session(s.id)).session.title == "kept"


def test_runtime_dir_is_private_and_socket_is_owner_only(daemon: DaemonProcess):
    run = Path(daemon.paths.runtime_dir)
    assert stat.S_IMODE(run.stat().st_mode) == 0o700
    assert stat.S_IMODE(Path(daemon.paths.socket_path).stat().st_mode) == 0o600


def test_the_log_file_is_in_the_state_dir(daemon: DaemonProcess):
    log = Path(daemon.paths.log_file)
    assert log.parent == Path(daemon.paths.state_dir) == daemon.home / "state"
    # The socket appears before the line that reports it is written.
    wait_until(lambda: log.exists() and "listening on" in log.read_text())
    assert stat.S_IMODE(log.stat().st_mode) == 0o600


async def test_a_deep_home_uses_a_short_runtime_dir(tmp_path: Path):
    home = tmp_path.joinpath(*["a-rather-long-directory-name"] * 5)
    home.mkdir(parents=True)
    assert len(str(home / "run" / "daemon.sock")) > 110
    d = DaemonProcess(home)
    assert not str(d.paths.runtime_dir).startswith(str(home))
    assert len(str(d.paths.socket_path)) <= 107
    d.start()
    try:
        async with d.client() as c:
            s = await c.create_session(title="deep")
            assert (await c.get_session(s.id)).session.title == "deep"
            assert (await c.status()).home == str(home)
        assert Path(d.paths.store_dir).is_relative_to(home)
        assert stat.S_IMODE(Path(d.paths.runtime_dir).stat().st_mode) == 0o700
    finally:
        assert d.stop() == 0
        shutil.rmtree(d.paths.runtime_dir, ignore_errors=True)


async def test_a_client_with_autostart_starts_a_daemon_when_none_runs(home: Path,
                                                                      monkeypatch: pytest.MonkeyPatch):
    # The spawned daemon inherits the environment: it must find this home, not the user's.
    monkeypatch.setenv("DUOLOGUE_HOME", str(home))
    for key in ("ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY"):
        monkeypatch.delenv(key, raising=False)
    paths = DaemonProcess(home).paths
    assert not Path(paths.socket_path).exists()
    client = AsyncClient(paths, autostart=True, client_name="auto", timeout=20.0, emulator=True)
    try:
        async with client:
            assert client.started_daemon
            status = await client.status()
            assert status.emulator and status.home == str(home)
            s = await client.create_session(title="autostarted")
            assert (await client.get_session(s.id)).session.title == "autostarted"
            await client.shutdown()
    finally:
        wait_until(lambda: read_pid(paths) is None, timeout=15)
    assert not Path(paths.socket_path).exists()
    with pytest.raises(ProcessLookupError):
        # Reap it if it is our zombie, then prove it is gone.
        try:
            os.waitpid(status.pid, 0)
        except ChildProcessError:
            pass
        os.kill(status.pid, 0)


async def test_a_stale_lock_naming_a_live_unrelated_pid_does_not_block_clients(home: Path,
                                                                               monkeypatch: pytest.MonkeyPatch):
    """kill -9 (or power loss) leaves the socket file and the pid; the pid is then reused
    by an unrelated process. Whether a daemon runs is told by the lock and the socket."""
    d = DaemonProcess(home).start()
    async with d.client() as c:
        s = await c.create_session(title="before the crash")
    d.kill9()
    unrelated = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        Path(d.paths.lock_path).write_text(f"{unrelated.pid}\n")
        assert Path(d.paths.socket_path).exists()
        idle = AsyncClient(d.paths, autostart=False)
        assert not idle.daemon_running()
        status = subprocess.run([sys.executable, "-m", "duologue.clients.cli", "daemon", "status"], env=d.env,
                                capture_output=True, text=True, timeout=60)
        assert status.returncode == 3 and "no daemon is running" in status.stdout, status
        db = subprocess.run([sys.executable, "-m", "duologue.daemon", "db", "status", "--json"], env=d.env,
                            capture_output=True, text=True, timeout=60)
        assert json.loads(db.stdout)["daemon_pid"] is None, db
        monkeypatch.setenv("DUOLOGUE_HOME", str(home))
        client = AsyncClient(d.paths, autostart=True, client_name="after", timeout=20.0, emulator=True)
        async with client:
            assert client.started_daemon
            got = await client.get_session(s.id)
            assert got.session.title == "before the crash"
            assert (await client.status()).pid != unrelated.pid
            await client.shutdown()
        wait_until(lambda: read_pid(d.paths) is None, timeout=15)
    finally:
        unrelated.kill()
        unrelated.wait()
