"""`duologue chat` picks the Textual app on a terminal and the line chat otherwise; the
line chat has the full-screen one's commands where a line chat can do them."""

from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

DUOLOGUE = Path(sys.executable).with_name("duologue")


def _read_until(fd: int, needle: bytes, timeout: float) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while needle not in seen:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"{needle!r} not seen within {timeout}s; got {seen[-2000:]!r}")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                seen += os.read(fd, 65536)
            except OSError:  # the child closed the terminal
                break
    return seen


def _on_a_terminal(daemon, *args: str) -> tuple[subprocess.Popen, int]:
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = {**daemon.env, "TERM": "xterm-256color", "COLUMNS": "80", "LINES": "24"}
    proc = subprocess.Popen([str(DUOLOGUE), "chat", *args], stdin=slave, stdout=slave, stderr=slave,
                            env=env, cwd=daemon.home, start_new_session=True)
    os.close(slave)
    return proc, master


def test_on_a_terminal_chat_opens_the_app_with_the_emulator_banner(daemon):
    proc, master = _on_a_terminal(daemon)
    try:
        _read_until(master, b"EMULATOR", 30)
        _read_until(master, b"Message sonnet", 30)
        os.write(master, b"\x11")  # ctrl+q
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)


def test_plain_flag_keeps_the_line_chat_on_a_terminal(daemon):
    proc, master = _on_a_terminal(daemon, "--plain")
    try:
        _read_until(master, b"/help for commands", 30)
        os.write(master, b"/quit\n")
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)


def test_piped_input_keeps_the_line_chat(daemon):
    r = subprocess.run([str(DUOLOGUE), "chat"], input="hello from a pipe\n", capture_output=True,
                       text=True, env=daemon.env, cwd=daemon.home, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "EMULATOR" in r.stdout and "You just said: “hello from a pipe”" in r.stdout


def test_the_line_chat_has_the_session_commands_of_the_full_screen_one(daemon):
    lines = ["hello from a pipe", "/cost", "/find FROM A", "/retry", "/find nowhere-to-be-seen", "/copy", "/edit",
             "/switch", "/help"]
    r = subprocess.run([str(DUOLOGUE), "chat"], input="\n".join(lines) + "\n", capture_output=True, text=True,
                       env=daemon.env, cwd=daemon.home, timeout=90)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "sonnet (claude-sonnet-5-5): 1 reply" in out and "session total: emulator/$0" in out
    assert re.search(r"^#\d+ you: hello from a pipe$", out, re.M) and "2 of 2 messages hold 'FROM A'" in out
    assert out.count("\nclaude-sonnet-5-5:\n") == 2  # /retry sent it again: a second reply
    assert "'nowhere-to-be-seen' is in none of the 4 messages" in out
    assert "/copy: the clipboard is the terminal's (OSC 52), and this output is not a terminal" in out
    assert "/edit works in the full-screen chat only" in out
    assert "usage: /switch MODEL; /help lists every command" in out
    assert "/retry" in out.split("commands:")[-1] and "/edit" not in out.split("commands:")[-1]
