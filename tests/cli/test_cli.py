"""The real `duologue` console script, run as a subprocess against a real daemon."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from duologue.clients.rpc.sync_client import Client
from duologue.protocol import methods as m
from support import DaemonProcess

SCRIPT = Path(sys.executable).with_name("duologue")
UNKNOWN_SID = "01ARZ3NDEKTSV4RRFFQ69G5FAV"


def duologue(env: dict[str, str], *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=60)


def ok(env: dict[str, str], *args: str, cwd: Path | None = None) -> str:
    r = duologue(env, *args, cwd=cwd)
    assert r.returncode == 0, (args, r.returncode, r.stdout, r.stderr)
    return r.stdout


def ok_json(env: dict[str, str], *args: str, cwd: Path | None = None) -> Any:
    return json.loads(ok(env, *args, "--json", cwd=cwd))


def fails(env: dict[str, str], code: int, *args: str) -> str:
    """Run, expect exit ``code`` and exactly one line on stderr; return that line."""
    r = duologue(env, *args)
    assert r.returncode == code, (args, r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("duologue: ")
    return lines[0]


@pytest.fixture
def env(daemon: DaemonProcess) -> dict[str, str]:
    return daemon.env


def test_the_console_script_is_installed():
    assert SCRIPT.exists(), f"{SCRIPT} missing: is the package installed in this venv?"


def test_new_then_list_show_rename_switch_rm_with_json(env: dict[str, str], tmp_path: Path):
    project = tmp_path / "proj"
    (project / ".git").mkdir(parents=True)
    (project / "sub").mkdir()

    created = ok_json(env, "new", "--title", "cli session", "--model", "flash", cwd=project / "sub")
    sid = created["id"]
    assert created["title"] == "cli session"
    assert created["current_model"].startswith("gemini")
    assert created["project_id"] == str(project)  # the git root above the working dir

    listed = ok_json(env, "list")
    assert [s["id"] for s in listed["sessions"]] == [sid]
    assert ok_json(env, "list", "--project", str(project))["sessions"][0]["id"] == sid
    assert ok_json(env, "list", "--project", str(tmp_path))["sessions"] == []

    shown = ok_json(env, "show", sid)
    assert shown["session"]["id"] == sid
    assert shown["messages"] == [] and shown["switches"] == []

    renamed = ok_json(env, "rename", sid, "new name")
    assert renamed["title"] == "new name"

    switched = ok_json(env, "switch", sid, "sonnet", "--reason", "needs depth")
    assert switched["switch"]["reason"] == "needs depth"
    assert switched["switch"]["to_model"] == switched["session"]["current_model"]
    assert ok_json(env, "show", "last")["switches"][0]["reason"] == "needs depth"

    removed = ok_json(env, "rm", sid, "--yes")
    assert removed == {"deleted": [sid]}
    assert ok_json(env, "list")["sessions"] == []


def test_text_output_of_each_command(env: dict[str, str], tmp_path: Path):
    out = ok(env, "new", "--title", "plain text", "--project", str(tmp_path))
    sid = out.split()[0]
    assert len(sid) == 26 and "plain text" in out
    assert sid in ok(env, "list")
    assert "plain text" in ok(env, "show", sid)
    assert "switched" in ok(env, "switch", sid, "flash")
    assert "already on" in ok(env, "switch", sid, "flash")
    assert "renamed!" in ok(env, "rename", sid, "renamed!")
    assert "no tasks" in ok(env, "tasks", sid)
    models = ok(env, "models")
    assert "claude-sonnet-5-5" in models and "flash" in models
    status = ok(env, "daemon", "status")
    assert "pid" in status and "EMULATOR" in status
    assert f"deleted {sid}" in ok(env, "rm", sid, "--yes")
    assert "no sessions" in ok(env, "list")


def test_models_tasks_and_daemon_status_as_json(env: dict[str, str], daemon: DaemonProcess):
    models = ok_json(env, "models")
    assert models["default_model"] in {mi["id"] for mi in models["models"]}
    assert {"id", "provider", "short_name", "context_window", "pricing", "tier"} <= set(models["models"][0])

    with Client(daemon.paths, autostart=False, timeout=20.0) as c:
        s = c.create_session(title="with tasks")
        c.update_tasks(s.id, [m.TaskInput(content="a", status="completed"), m.TaskInput(content="b")],
                       client="test")
    tasks = ok_json(env, "tasks", s.id)
    assert [t["content"] for t in tasks["tasks"]] == ["a", "b"]
    assert tasks["updated_by"] == "client:test"
    assert "1/2 completed" in ok(env, "tasks", s.id)

    status = ok_json(env, "daemon", "status")
    assert status["pid"] == daemon.pid
    assert status["emulator"] is True
    assert status["sessions"] == 1
    assert {"protocol_version", "daemon_version", "uptime_s", "home", "socket", "providers"} <= set(status)


def test_show_last_and_id_prefixes_resolve_to_the_session(env: dict[str, str]):
    first = ok_json(env, "new", "--title", "older")["id"]
    second = ok_json(env, "new", "--title", "newest")["id"]
    assert ok_json(env, "show", "last")["session"]["id"] == second
    # Ids of one millisecond share a long prefix; the shortest unique prefix resolves.
    n = next(i for i in range(1, 27) if first[:i] != second[:i])
    assert ok_json(env, "show", first[:n])["session"]["id"] == first
    assert ok_json(env, "show", second[:n].lower())["session"]["id"] == second
    line = fails(env, 2, "show", first[: n - 1])
    assert "matches 2 sessions" in line
    assert "no session id starts with" in fails(env, 2, "show", "ZZZZ")


def test_failures_print_one_line_and_exit_non_zero(env: dict[str, str]):
    assert UNKNOWN_SID in fails(env, 1, "show", UNKNOWN_SID)
    assert "unknown model" in fails(env, 1, "new", "--model", "gpt-9")
    sid = ok_json(env, "new")["id"]
    assert "blank" in fails(env, 1, "rename", sid, "   ")


def test_bad_usage_exits_2(env: dict[str, str]):
    r = duologue(env, "frobnicate")
    assert r.returncode == 2 and "invalid choice" in r.stderr
    r = duologue(env, "rename", "only-one-arg")
    assert r.returncode == 2 and "required" in r.stderr
    r = duologue(env, "list", "--limit", "many")
    assert r.returncode == 2


def test_show_last_without_sessions_is_a_usage_error(env: dict[str, str]):
    assert "no sessions yet" in fails(env, 2, "show", "last")


def test_daemon_status_without_a_daemon_exits_3(tmp_path: Path):
    env = DaemonProcess(tmp_path / "nohome").env
    r = duologue(env, "daemon", "status")
    assert r.returncode == 3
    assert "no daemon" in r.stdout + r.stderr
    r = duologue(env, "daemon", "status", "--json")
    assert r.returncode == 3 and json.loads(r.stdout) == {"running": False}
    assert duologue(env, "daemon", "stop").returncode == 0  # nothing to stop is not an error
    assert not (tmp_path / "nohome" / "run" / "daemon.sock").exists(), "status must not start a daemon"


def test_daemon_stop_stops_it(daemon: DaemonProcess, env: dict[str, str]):
    out = ok(env, "daemon", "stop")
    assert str(daemon.pid) in out
    assert daemon.proc is not None and daemon.proc.wait(15) == 0
    assert duologue(env, "daemon", "status").returncode == 3


def test_importing_the_cli_imports_no_sdk_and_not_the_daemon():
    probe = (
        "import sys, duologue.clients.cli\n"
        "bad = sorted(n for n in sys.modules if n == 'anthropic' or n.startswith(('anthropic.', "
        "'google.genai', 'duologue.daemon', 'lmdb')))\n"
        "print(','.join(bad))\n"
    )
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == ""


def imported_by(env: dict[str, str], *args: str) -> set[str]:
    """Every module the `duologue` process imported running ``args`` (from
    ``-X importtime``, which names each on stderr), after checking it succeeded."""
    r = subprocess.run([sys.executable, "-X", "importtime", str(SCRIPT), *args], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, (args, r.stdout, r.stderr)
    return {line.rpartition("|")[2].strip() for line in r.stderr.splitlines() if line.startswith("import time:")}


LOOP_AND_APPS = ("asyncio", "textual", "pygls", "duologue.clients.importers", "duologue.clients.tui",
                 "duologue.clients.lsp", "anthropic", "google.genai", "platformdirs")
"""What a one-shot command never needs: an event loop, the apps, a provider SDK, and,
with $DUOLOGUE_HOME set, the platform's directories."""


@pytest.mark.parametrize("args", [("list",), ("show", "last"), ("daemon", "status"), ("new", "--title", "x")])
def test_one_shot_commands_run_on_the_blocking_client_without_asyncio(env: dict[str, str], args: tuple[str, ...]):
    ok(env, "new", "--title", "to show")
    modules = imported_by(env, *args)
    assert "duologue.clients.rpc.sync_client" in modules  # the probe sees our imports
    loaded = sorted(n for n in modules if n in LOOP_AND_APPS or n.startswith(tuple(f"{x}." for x in LOOP_AND_APPS)))
    assert loaded == []


def test_commands_that_follow_events_still_run_on_the_async_client(env: dict[str, str]):
    sid = ok_json(env, "new", "--title", "followed")["id"]
    modules = imported_by(env, "send", sid, "hello")
    assert {"asyncio", "duologue.clients.rpc.client", "duologue.clients.rpc.session_events"} <= modules


def test_a_reader_that_goes_away_ends_attach_quietly(env: dict[str, str], daemon: DaemonProcess):
    sid = ok_json(env, "new", "--title", "piped")["id"]
    for i in range(3):
        ok(env, "rename", sid, f"title {i}")
    # Like `duologue attach SID --since 0 | head -1`: the pipe closes after one line.
    proc = subprocess.Popen([str(SCRIPT), "attach", sid, "--since", "0"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout is not None
    proc.stdout.readline()
    proc.stdout.close()
    ok(env, "rename", sid, "one more, so attach writes into the closed pipe")
    _, err = proc.communicate(timeout=20)
    assert b"Traceback" not in err, err.decode()
    assert proc.returncode == 1
