"""A damaged store is detected, explained and recoverable; never a crash, never "empty".

- data.mdb cut short (a full disk, a bad copy): today's read past its end was a
  SIGBUS. The daemon refuses at open with a message naming the store, the backups
  and `duologue db rollback`, and the client that started it shows that message.
- data.mdb cut to zero bytes opened as a new, empty store ("no sessions", exit 0):
  it is refused the same way.
- `duologue db rollback` restores the newest backup and sets the damaged file aside.
- `duologue db check` reads every page; on a store with garbage pages it says
  DAMAGED (exit 1) and `db status` then says so, instead of "up to date".
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from duologue.clients.rpc.sync_client import Client
from support import DaemonProcess

SCRIPT = Path(sys.executable).with_name("duologue")


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=120)


def _filled(home: Path, n: int = 60) -> DaemonProcess:
    """A stopped daemon's home whose store holds ``n`` sessions (with a backup of them)."""
    d = DaemonProcess(home).start()
    with Client(d.paths, autostart=False) as c:
        for i in range(n):
            c.create_session(title=f"kept {i} " + "x" * 150)
    d.stop()
    assert _cli(d.env, "db", "backup").returncode == 0
    return d


def _data(d: DaemonProcess) -> Path:
    return Path(d.paths.store_dir) / "data.mdb"


def _start(d: DaemonProcess) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "duologue.daemon", "--emulator"], env=d.env,
                          capture_output=True, text=True, timeout=60)


def _assert_refusal(text: str, d: DaemonProcess) -> None:
    assert str(d.paths.store_dir) in text, text
    assert "damaged" in text and "duologue db rollback" in text, text
    assert str(Path(d.paths.data_dir) / "backups") in text, text


@pytest.mark.parametrize("cut", ["half", "zero"])
def test_a_cut_data_file_is_refused_at_open_with_what_to_do(home: Path, cut: str):
    d = _filled(home)
    size = _data(d).stat().st_size
    os.truncate(_data(d), 0 if cut == "zero" else size // 2)
    done = _start(d)
    assert done.returncode not in (0, -signal.SIGBUS, -signal.SIGSEGV), done
    assert "Traceback" not in done.stderr
    _assert_refusal(done.stderr, d)
    listed = _cli(d.env, "list")  # the client that starts it shows why, and no "no sessions"
    assert listed.returncode == 3, listed
    assert "no sessions" not in listed.stdout
    _assert_refusal(listed.stderr, d)
    assert _data(d).stat().st_size == (0 if cut == "zero" else size // 2), "nothing was changed"


def test_db_status_says_damaged_not_up_to_date(home: Path):
    d = _filled(home)
    os.truncate(_data(d), _data(d).stat().st_size // 2)
    done = _cli(d.env, "db", "status")
    assert done.returncode == 1, done
    assert "DAMAGED" in done.stdout and "up to date" not in done.stdout
    as_json = json.loads(_cli(d.env, "db", "status", "--json").stdout)
    assert as_json["damage"] and "cut short" in as_json["damage"]


def test_rollback_restores_the_newest_backup_and_sets_the_damaged_file_aside(home: Path):
    d = _filled(home, n=20)
    cut = _data(d).stat().st_size // 3
    os.truncate(_data(d), cut)
    done = _cli(d.env, "db", "rollback", "--json")
    assert done.returncode == 0, done
    result = json.loads(done.stdout)
    aside = Path(d.paths.data_dir) / "backups" / result["previous_store_saved_as"]
    assert aside.name.endswith("-damaged") and (aside / "data.mdb").stat().st_size == cut
    d.start()
    try:
        with Client(d.paths, autostart=False) as c:
            assert c.status().sessions == 20
    finally:
        d.stop()
    again = json.loads(_cli(d.env, "db", "rollback", "--json").stdout)
    assert not again["restored"].endswith("-damaged"), "the default is never the damaged copy"


def _garble(path: Path) -> None:
    """Overwrite every page but the two meta pages with junk."""
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.seek(2 * 4096)
        f.write(os.urandom(size - 2 * 4096))


def test_db_check_reads_every_page_and_reports_damage(home: Path):
    d = _filled(home)
    fine = _cli(d.env, "db", "check", "--json")
    assert fine.returncode == 0, fine
    report: dict[str, Any] = json.loads(fine.stdout)
    assert report["ok"] and report["records"] >= 60 * 3, report
    assert "never checked" not in _cli(d.env, "db", "status").stdout
    _garble(_data(d))
    bad = _cli(d.env, "db", "check", "--json")
    assert bad.returncode == 1, bad
    assert "Traceback" not in bad.stderr
    found = json.loads(bad.stdout)
    assert not found["ok"] and found["problem"], found
    status = _cli(d.env, "db", "status")
    assert "DAMAGED when checked" in status.stdout, status.stdout


def test_db_check_shows_progress_on_a_terminal(home: Path):
    import pty

    d = _filled(home, n=10)
    leader, follower = pty.openpty()
    proc = subprocess.Popen([str(SCRIPT), "db", "check"], env=d.env, stdout=subprocess.PIPE,
                            stderr=follower)
    os.close(follower)
    out, _ = proc.communicate(timeout=120)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    os.close(leader)
    assert proc.returncode == 0, out
    assert b"checking [" in seen and b"100%" in seen, seen
    assert b"is whole" in out


def test_a_store_of_garbage_pages_is_refused_at_open_not_crashed_on(home: Path):
    d = _filled(home, n=10)
    _garble(_data(d))
    done = _start(d)
    assert done.returncode == 1, done
    assert done.returncode not in (-signal.SIGBUS, -signal.SIGSEGV)
    assert "Traceback" not in done.stderr
    _assert_refusal(done.stderr, d)
