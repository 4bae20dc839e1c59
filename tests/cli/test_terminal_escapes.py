"""Control characters in what others wrote (an imported transcript, a model's reply)
never reach the terminal raw: `list`, `show` and `attach` print them escaped, while
``--json`` keeps the exact text (JSON escapes it itself)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from duologue.clients.rpc.sync_client import Client
from duologue.protocol import methods as m
from duologue.protocol.entities import TextBlock
from support import DaemonProcess

SCRIPT = Path(sys.executable).with_name("duologue")
HOSTILE_TITLE = "\x1b]0;pwned\x07\x1b[2Jtitle\rfake\u202eevil"
HOSTILE_TEXT = "before \x1b[31mred\x1b[0m \x1b]52;c;ZWNobyBoaQ==\x07 after\x9b1m"
RAW = ("\x1b", "\x07", "\r", "\u202e", "\x9b")


def _import(daemon: DaemonProcess) -> str:
    at = datetime(2025, 5, 1, tzinfo=timezone.utc)
    session = m.ImportSession(
        external_id="test:hostile", sources=["claude-code"], title=HOSTILE_TITLE, created_at=at,
        messages=[m.ImportMessage(external_id="test:hostile:1", role="user",
                                  content=[TextBlock(text=HOSTILE_TEXT)], created_at=at)])
    with Client(daemon.paths, autostart=False) as c:
        return c.import_sessions([session]).sessions[0].session_id


def _run(env: dict[str, str], *args: str) -> str:
    r = subprocess.run([str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, (args, r.stdout, r.stderr)
    return r.stdout


def _assert_escaped(out: str) -> None:
    for c in RAW:
        assert c not in out, f"{c!r} reached the terminal raw: {out!r}"


def test_list_and_show_escape_control_characters(daemon: DaemonProcess):
    sid = _import(daemon)
    listed = _run(daemon.env, "list")
    _assert_escaped(listed)
    assert "\\x1b]0;pwned\\x07" in listed and sid in listed
    shown = _run(daemon.env, "show", sid)
    _assert_escaped(shown)
    assert "\\x1b[31mred\\x1b[0m" in shown and "\\x1b[2Jtitle\\x0dfake\\u202eevil" in shown
    assert len(listed.strip().splitlines()) == 1, "a title is one line"


def test_json_output_keeps_the_exact_text(daemon: DaemonProcess):
    sid = _import(daemon)
    listed = json.loads(_run(daemon.env, "list", "--json"))
    assert listed["sessions"][0]["title"] == HOSTILE_TITLE
    shown = json.loads(_run(daemon.env, "show", sid, "--json"))
    assert shown["messages"][0]["content"][0]["text"] == HOSTILE_TEXT


def test_attach_escapes_control_characters(daemon: DaemonProcess):
    sid = _import(daemon)
    proc = subprocess.Popen([str(SCRIPT), "attach", sid, "--since", "0"], env=daemon.env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        out = b""
        deadline = time.monotonic() + 30
        while b"after" not in out and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            out += line
    finally:
        proc.terminate()
        proc.wait(10)
    text = out.decode()
    assert "after" in text, text
    _assert_escaped(text)
    assert "\\x1b[31mred" in text
