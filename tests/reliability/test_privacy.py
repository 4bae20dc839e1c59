"""Privacy against another local user: nothing of ours in a directory they made,
nothing of ours readable by them, and a clear word when they point duologue at us.

The attacker is a second uid (``nobody``): these tests need root and are skipped
otherwise. The victim is the uid running the tests.

- A runtime directory in a shared place (the short fallback for a deep home, or
  platformdirs' ``<temp>/runtime-<uid>``) that another user made first, or made a
  symlink, is not used: the daemon serves from a fresh private one, named in
  ``state/runtime-dir``, and clients find it there.
- The daemon runs with umask 077: every directory it keeps is 0700, every file 0600,
  and a home made with looser modes is tightened when the daemon starts.
- Another user running the CLI against our home gets one line, not a traceback.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from other_user import OTHER_UID, cli_as_other, needs_root, run_as_other, shared_base
from support import DaemonProcess

from duologue.protocol.paths import IPC_PATH_LIMIT


@pytest.fixture
def base() -> Iterator[Path]:
    with shared_base() as b:
        yield b


def _deep_home(base: Path) -> Path:
    home = base.joinpath(*["a-rather-long-directory-name"] * 4)
    home.mkdir(parents=True)
    for d in (home, *home.parents):
        if d == base.parent:
            break
        d.chmod(0o755)
    assert len(str(home / "run" / "daemon.sock")) > IPC_PATH_LIMIT
    return home


def _predictable_fallback(home: Path) -> Path:
    digest = hashlib.sha256(str(home / "run").encode()).hexdigest()[:16]
    return Path("/tmp") / f"duologue-{os.getuid()}-{digest}"


PRE_CREATE = """
import os, sys
target, kind = sys.argv[1], sys.argv[2]
if kind == "dir":
    os.mkdir(target, 0o777)
    os.chmod(target, 0o777)
else:
    trap = target + "-trap"
    os.mkdir(trap, 0o777)
    os.chmod(trap, 0o777)
    os.symlink(trap, target)
print("made")
"""


@needs_root
@pytest.mark.parametrize("kind", ["dir", "symlink"])
async def test_a_fallback_runtime_dir_another_user_made_first_is_not_used(base: Path, kind: str):
    home = _deep_home(base)
    trap = _predictable_fallback(home)
    made = run_as_other(PRE_CREATE, str(trap), kind)
    assert made.returncode == 0, made.stderr
    trap_dir = Path(str(trap) + "-trap") if kind == "symlink" else trap
    d = DaemonProcess(home)
    try:
        d.start()
        runtime = Path(d.paths.runtime_dir)
        assert runtime != trap and not str(runtime).startswith(str(trap))
        info = os.lstat(runtime)
        assert stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid()
        assert stat.S_IMODE(info.st_mode) == 0o700
        pointer = Path(d.paths.state_dir) / "runtime-dir"
        assert pointer.read_text().strip() == str(runtime)
        assert stat.S_IMODE(pointer.stat().st_mode) == 0o600
        assert list(trap_dir.iterdir()) == [], "something of ours went into the other user's directory"
        # A client that knows only the home finds the daemon (through the pointer).
        async with DaemonProcess(home).client("finder") as c:
            status = await c.status()
            assert status.socket == f"ipc://{runtime}/daemon.sock"
            s = await c.create_session(title="private")
            assert (await c.get_session(s.id)).session.title == "private"
        assert "not safe to use" in d.log()
    finally:
        d.stop()
        shutil.rmtree(d.paths.runtime_dir, ignore_errors=True)
        if trap.is_symlink():
            trap.unlink()
        shutil.rmtree(trap_dir, ignore_errors=True)


def _platform_env(base: Path) -> dict[str, str]:
    """An environment without DUOLOGUE_HOME or XDG_RUNTIME_DIR, so platformdirs falls
    back to ``$TMPDIR/runtime-<uid>``; TMPDIR is a sticky shared dir of the test's."""
    tmp = base / "tmp"
    tmp.mkdir()
    tmp.chmod(0o1777)
    user = base / "user"
    user.mkdir(mode=0o700)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("XDG_", "DUOLOGUE_", "ANTHROPIC_", "GEMINI_", "GOOGLE_"))}
    env.update(HOME=str(user), TMPDIR=str(tmp), XDG_DATA_HOME=str(user / "data"),
               XDG_STATE_HOME=str(user / "state"), XDG_CONFIG_HOME=str(user / "config"))
    return env


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "duologue.clients.cli", *args], env=env,
                          capture_output=True, text=True, timeout=60)


@needs_root
def test_a_tmp_runtime_dir_another_user_made_first_gives_a_working_daemon_not_a_traceback(base: Path):
    env = _platform_env(base)
    squatted = base / "tmp" / f"runtime-{os.getuid()}"
    made = run_as_other("import os, sys; os.mkdir(sys.argv[1], 0o700); print('made')", str(squatted))
    assert made.returncode == 0, made.stderr
    try:
        started = _cli(env, "daemon", "start", "--emulator", "--json")
        assert started.returncode == 0, started.stdout + started.stderr
        assert "Traceback" not in started.stderr
        socket = json.loads(started.stdout)["socket"]
        assert not socket.startswith(f"ipc://{squatted}")
        assert socket.startswith(f"ipc://{base / 'tmp'}/duologue-{os.getuid()}-")
        assert _cli(env, "new", "--title", "mine").returncode == 0
        listed = _cli(env, "list")
        assert listed.returncode == 0 and "mine" in listed.stdout, listed.stderr
        assert os.stat(squatted).st_uid == OTHER_UID
    finally:
        _cli(env, "daemon", "stop")


def _modes(root: Path) -> dict[str, str]:
    """Mode of every entry under ``root``, keyed by its path from ``root``'s grandparent."""
    out = {}
    for p in [root, *root.rglob("*")]:
        info = os.lstat(p)
        if stat.S_ISSOCK(info.st_mode):
            continue
        out[str(p.relative_to(root.parent.parent))] = f"{stat.S_IMODE(info.st_mode):04o}"
    return out


def test_every_directory_is_0700_and_every_file_0600_even_under_umask_022(home: Path, figures):
    old = os.umask(0o022)  # the daemon inherits it, and must not keep it
    try:
        d = DaemonProcess(home).start()
    finally:
        os.umask(old)
    try:
        backed_up = subprocess.run([sys.executable, "-m", "duologue.daemon", "db", "backup"], env=d.env,
                                   capture_output=True, text=True, timeout=60)
        assert backed_up.returncode == 0, backed_up.stderr
    finally:
        d.stop()
    modes = {}
    for sub in ("data", "state", "config", "run"):
        modes.update(_modes(home / sub))
    assert {"home/data/store/data.mdb", "home/data/store/lock.mdb", "home/state/daemon.log",
            "home/state/daemon.lock"} <= set(modes)
    assert any("backups" in p and p.endswith("data.mdb") for p in modes)
    loose = {p: m for p, m in modes.items() if m not in ("0700", "0600")}
    assert not loose, f"readable by others: {loose}"
    for p, m in modes.items():
        assert m == ("0700" if (home.parent / p).is_dir() else "0600"), (p, m)
    figures["private_files"] = {"checked": len(modes), "not_private": 0}


def test_a_home_an_older_version_left_readable_is_tightened_when_the_daemon_starts(home: Path):
    d = DaemonProcess(home).start()
    d.stop()
    for p in [home / "data", *(home / "data").rglob("*"), home / "state", *(home / "state").rglob("*"),
              home / "config"]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    d.start()
    try:
        for p in (home / "data", home / "data" / "store", home / "state", home / "config"):
            assert stat.S_IMODE(p.stat().st_mode) == 0o700, p
        for name in ("data.mdb", "lock.mdb"):
            assert stat.S_IMODE((home / "data" / "store" / name).stat().st_mode) == 0o600
        assert stat.S_IMODE((home / "state" / "daemon.log").stat().st_mode) == 0o600
    finally:
        d.stop()


@needs_root
def test_another_user_cannot_read_a_conversation_from_the_store(base: Path):
    home = base / "home"
    home.mkdir(mode=0o755)
    home.chmod(0o755)  # a 0755 home, as many are
    d = DaemonProcess(home).start()
    try:
        tried = run_as_other(
            "import sys\ntry:\n    open(sys.argv[1], 'rb').read(1)\n    print('read')\n"
            "except PermissionError:\n    print('refused')", str(home / "data" / "store" / "data.mdb"))
        assert tried.stdout.strip() == "refused", tried
    finally:
        d.stop()


@needs_root
def test_another_user_running_the_cli_on_our_home_gets_one_clear_line(base: Path):
    home = base / "home"
    home.mkdir(mode=0o755)
    home.chmod(0o755)
    d = DaemonProcess(home).start()
    try:
        for args in (["list"], ["daemon", "status"], ["new", "--title", "theirs"]):
            done = cli_as_other(*args, env={"DUOLOGUE_HOME": str(home)})
            assert done.returncode == 3, (args, done)
            assert "Traceback" not in done.stderr, done.stderr
            assert f"belong to uid {os.getuid()}" in done.stderr and f"you are uid {OTHER_UID}" in done.stderr
            assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    finally:
        d.stop()
