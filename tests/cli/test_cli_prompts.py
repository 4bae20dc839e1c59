"""The CLI's prompt input, its confirmation before deleting and its speakers, run as
real processes against a real daemon: ``-`` reads the prompt from standard input, a
context range past the file's end sends nothing, ``rm`` asks on a terminal and refuses
without one unless ``--yes``, ``attach`` names the model of a reply the daemon closed
as interrupted, ``stats`` names the emulator instead of dollars, ``chat --project``
chats about another directory, and ``paths`` lists where everything is kept."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import time
from pathlib import Path

from cli_support import SCRIPT, Output

from duologue.clients.rpc.sync_client import Client
from duologue.daemon.emulator import Failure
from support import DaemonProcess, wait_until

def run(env: dict[str, str], *args: str, stdin: str = "", cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *args], env=env, input=stdin, capture_output=True, text=True,
                          timeout=90, cwd=cwd)


def messages(daemon: DaemonProcess, sid: str) -> list:
    with Client(daemon.paths, autostart=False, timeout=20) as c:
        return c.get_session(sid).messages


def test_a_dash_reads_the_prompt_of_send_and_ask_from_stdin(daemon: DaemonProcess):
    pasted = "first line of the paste\n" + "".join(f"line {i}\n" for i in range(2, 401))
    r = run(daemon.env, "ask", "-", "--json", stdin=pasted)
    assert r.returncode == 0, r.stderr
    sid = json.loads(r.stdout)["session_id"]
    prompt = messages(daemon, sid)[0]
    assert prompt.role == "user" and prompt.text == pasted  # all 400 lines, not a literal "-"
    r = run(daemon.env, "send", sid, "-", stdin="a second prompt\nover two lines\n")
    assert r.returncode == 0, r.stderr
    assert [m.text for m in messages(daemon, sid) if m.role == "user"][1] == "a second prompt\nover two lines\n"


def test_a_dash_with_empty_stdin_is_a_usage_error_and_sends_nothing(daemon: DaemonProcess):
    with Client(daemon.paths, autostart=False, timeout=20) as c:
        sid = c.create_session(title="quiet").id
    r = run(daemon.env, "send", sid, "-", stdin="  \n")
    assert r.returncode == 2
    assert "standard input was empty" in r.stderr
    assert messages(daemon, sid) == []


def test_a_context_range_past_the_end_of_the_file_is_an_error_and_sends_nothing(daemon: DaemonProcess,
                                                                                 tmp_path: Path):
    source = tmp_path / "lib.rs"
    source.write_text("".join(f"fn f{i}() {{}}\n" for i in range(209)))
    with Client(daemon.paths, autostart=False, timeout=20) as c:
        sid = c.create_session(title="ranges").id
    r = run(daemon.env, "send", sid, "look at this", "--context", f"{source}:9999-10000")
    assert r.returncode == 2
    assert r.stderr.strip() == f"duologue: bad line range '9999-10000': {source} has 209 lines"
    assert messages(daemon, sid) == []


def test_rm_without_a_terminal_refuses_unless_yes(daemon: DaemonProcess):
    with Client(daemon.paths, autostart=False, timeout=20) as c:
        sid = c.create_session(title="keep me").id
    r = run(daemon.env, "rm", sid)
    assert r.returncode == 2
    assert "--yes" in r.stderr and "no terminal" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert messages(daemon, sid) == []  # still there
    r = run(daemon.env, "rm", sid, "--yes")
    assert r.returncode == 0 and f"deleted {sid}" in r.stdout
    assert "no sessions" in run(daemon.env, "list").stdout


class Terminal:
    """The CLI on a pseudo-terminal, as a person runs it: what it wrote so far."""

    def __init__(self, env: dict[str, str], *args: str):
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen([str(SCRIPT), *args], env=env, stdin=slave, stdout=slave, stderr=slave)
        os.close(slave)
        self.seen = b""

    def wait_for(self, text: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while text.encode() not in self.seen:
            left = deadline - time.monotonic()
            assert left > 0, f"no {text!r} on the terminal within {timeout}s: {self.seen.decode(errors='replace')}"
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    self.seen += os.read(self.master, 4096)
                except OSError:  # the child closed the terminal
                    assert text.encode() in self.seen, self.seen.decode(errors="replace")

    def type(self, line: str) -> None:
        os.write(self.master, line.encode() + b"\r")

    def close(self) -> int:
        code = self.proc.wait(30)
        os.close(self.master)
        return code


def test_rm_on_a_terminal_asks_names_the_sessions_and_says_how_to_keep_a_copy(daemon: DaemonProcess):
    with Client(daemon.paths, autostart=False, timeout=20) as c:
        sid = c.create_session(title="the design talk").id
    term = Terminal(daemon.env, "rm", sid)
    term.wait_for("delete? [y/N]")
    shown = term.seen.decode()
    assert "the design talk" in shown and f"duologue export {sid} --format json" in shown
    assert "import --from duologue" in shown and "cannot be undone" in shown
    term.type("n")
    term.wait_for("nothing deleted")
    assert term.close() == 2
    assert messages(daemon, sid) == []  # still there

    term = Terminal(daemon.env, "rm", sid)
    term.wait_for("delete? [y/N]")
    term.type("y")
    term.wait_for(f"deleted {sid}")
    assert term.close() == 0
    assert "no sessions" in run(daemon.env, "list").stdout


def test_attach_names_the_model_of_a_reply_closed_as_interrupted(live: DaemonProcess, emulator):
    emulator.script("anthropic", Failure(delay=120))  # the reply never starts before the crash
    with Client(live.paths, autostart=False, timeout=20) as c:
        sid = c.create_session(title="crashed", model="sonnet").id
        c.send(sid, "a question the crash cuts off")
        wait_until(lambda: c.status().running_turns, timeout=30)
    live.kill9()
    live.start()  # closes the unanswered turn with an interrupted reply
    r = run(live.env, "show", sid)
    assert r.returncode == 0, r.stderr
    with Client(live.paths, autostart=False, timeout=20) as c:
        reply = c.get_session(sid).messages[-1]
    assert reply.status == "interrupted" and reply.model == "claude-sonnet-5-5"
    attach = Output(live.env, "attach", sid, "--since", "0")
    try:
        attach.wait_for(lambda line: "[interrupted" in line, "the interrupted reply")
        assert "claude-sonnet-5-5:" in attach.lines and not any(line.startswith("None") for line in attach.lines)
    finally:
        attach.stop()


def test_paths_lists_every_directory_without_a_daemon(tmp_path: Path):
    env = {**os.environ, "DUOLOGUE_HOME": str(tmp_path / "home")}
    r = run(env, "paths", "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["data"] == str(tmp_path / "home" / "data")
    assert report["config_file"] == str(tmp_path / "home" / "config" / "config.toml")
    assert report["command"] == str(SCRIPT)
    assert not (tmp_path / "home").exists()  # it created nothing, and started no daemon
    text = run(env, "paths").stdout
    assert "to uninstall" in text and "(not created yet)" in text


def test_stats_and_show_name_the_emulator_instead_of_dollars(daemon: DaemonProcess):
    r = run(daemon.env, "ask", "what does this cost?")
    assert r.returncode == 0, r.stderr
    stats = run(daemon.env, "stats")
    assert stats.returncode == 0, stats.stderr
    rows = stats.stdout.splitlines()
    assert rows[1].startswith("claude-sonnet-5-5") and "emulator" in rows[1]
    assert "nothing was billed" in stats.stdout and "$" not in "\n".join(rows[1:])  # the header names the unit
    assert "$" not in run(daemon.env, "show", "last").stdout
    assert json.loads(run(daemon.env, "stats", "--json").stdout)["emulator"] is True


def test_chat_project_chats_about_that_directory_from_anywhere(daemon: DaemonProcess, tmp_path: Path):
    project = tmp_path / "myproject"
    (project / ".git").mkdir(parents=True)
    (project / "src").mkdir()
    r = run(daemon.env, "chat", "--plain", "--project", str(project / "src"), stdin="", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    sessions = json.loads(run(daemon.env, "list", "--project", str(project), "--json").stdout)["sessions"]
    assert [s["project_id"] for s in sessions] == [str(project)]  # the git root of the directory named
    r = run(daemon.env, "chat", "--plain", "--project", str(tmp_path / "nowhere"), stdin="")
    assert r.returncode == 2 and "no such directory" in r.stderr
