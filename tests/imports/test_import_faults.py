"""Imports under faults: hostile files are problems, not crashes; a batch lands whole
or not at all, also when the daemon is killed -9 half-way or a request of it fails.

- A JSON line nested 100,000 deep (RecursionError in any JSON parser that recurses),
  a file name that is not UTF-8, a message dated before 1970: each is reported as a
  problem, and the other files are imported.
- kill -9 of the daemon while one large request is being written, or between the
  requests of a batch: after the restart, none of the batch is there.
- A request of a batch that is refused undoes the batch's earlier requests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from duologue.clients import importers
from duologue.clients.rpc.sync_client import Client
from duologue.protocol import methods as m
from duologue.protocol.entities import TextBlock
from duologue.protocol.errors import ErrorCode, RpcError
from support import DaemonProcess, wait_until

SCRIPT = Path(sys.executable).with_name("duologue")


def _claude_line(sid: str, uuid: str, text: str, when: str = "2025-01-01T00:00:00Z") -> str:
    return json.dumps({"type": "user", "uuid": uuid, "parentUuid": None, "sessionId": sid,
                       "timestamp": when, "cwd": "/p", "message": {"role": "user", "content": text}})


@pytest.fixture
def hostile(tmp_path: Path) -> Path:
    root = tmp_path / "hostile"
    root.mkdir()
    deep = "[" * 100_000 + "]" * 100_000
    (root / "deep.jsonl").write_text(_claude_line("s-deep", "u1", "kept line") + "\n" + deep + "\n")
    (root / "deep-object.jsonl").write_text(_claude_line("s-deep", "u5", "second file") + "\n"
                                            + '{"a":' * 100_000 + "1" + "}" * 100_000 + "\n")
    with open(os.path.join(os.fsencode(root), b"caf\xe9-\xff.jsonl"), "w") as f:
        f.write(_claude_line("s-latin1", "u2", "from a latin-1 name") + "\n")
    (root / "old.jsonl").write_text(_claude_line("s-old", "u3", "moon", "1969-07-20T20:17:00Z") + "\n"
                                    + _claude_line("s-old2", "u4", "ok", "2025-01-01T00:00:00Z") + "\n")
    (root / "deep.json").write_text('{"history": ' + "[" * 50_000 + "]" * 50_000 + "}")
    return root


def test_the_parsers_report_hostile_files_and_go_on(hostile: Path):
    report = importers.ParseReport()
    sessions = importers.load([hostile], report)
    requests = importers.requests(sessions, report)
    sent = {s.external_id for chunk in requests for s in chunk}
    assert sent == {"claude-code:s-deep", "claude-code:s-latin1", "claude-code:s-old2"}, sent
    problems = [str(p) for p in report.problems]
    assert any("deep.jsonl:line 2" in p and "nested too deeply" in p for p in problems), problems
    assert any("deep-object.jsonl" in p and "nested too deeply" in p for p in problems), problems
    assert any("deep.json" in p and "nested too deeply" in p for p in problems), problems
    assert any("before 1970" in p for p in problems), problems
    latin = next(s for chunk in requests for s in chunk if s.external_id == "claude-code:s-latin1")
    assert latin.metadata["source_file"].endswith("caf\\xe9-\\xff.jsonl")
    json.dumps(report.to_json())  # printable and encodable


def test_duologue_import_reports_hostile_files_and_imports_the_rest(daemon: DaemonProcess, hostile: Path):
    r = subprocess.run([str(SCRIPT), "import", str(hostile), "--json"], env=daemon.env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    out = json.loads(r.stdout)
    assert out["created_sessions"] == 3
    assert len(out["parse"]["problems"]) >= 4
    text = subprocess.run([str(SCRIPT), "import", str(hostile), "--dry-run"], env=daemon.env,
                          capture_output=True, text=True, timeout=120)
    assert text.returncode == 0 and "Traceback" not in text.stderr, text.stderr
    assert "caf\\xe9" in text.stdout or "nested too deeply" in text.stdout


# --- whole or not at all -------------------------------------------------------------------

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)


def _sessions(n: int, prefix: str, messages: int = 2) -> list[m.ImportSession]:
    return [m.ImportSession(
        external_id=f"{prefix}:{i}", sources=["claude-code"], title=f"{prefix} {i}", created_at=T0,
        messages=[m.ImportMessage(external_id=f"{prefix}:{i}:{j}", role="user" if j % 2 == 0 else "assistant",
                                  content=[TextBlock(text=f"message {j} of session {i}")],
                                  created_at=T0 + timedelta(seconds=j))
                  for j in range(messages)])
        for i in range(n)]


def _count(d: DaemonProcess) -> int:
    with Client(d.paths, autostart=False) as c:
        return c.status().sessions


def _store_sessions(d: DaemonProcess) -> int:
    """Sessions in the store, read without the daemon's help (it is busy importing)."""
    r = subprocess.run([sys.executable, "-m", "duologue.daemon", "db", "status", "--json"], env=d.env,
                       capture_output=True, text=True, timeout=60)
    return json.loads(r.stdout).get("sessions", 0) if r.returncode == 0 else 0


def test_kill_9_while_a_large_request_is_written_leaves_none_of_it(home: Path):
    d = DaemonProcess(home).start()
    n = 1500
    c = Client(d.paths, autostart=False, timeout=120)
    failure: list[BaseException] = []

    def send() -> None:
        try:
            c.import_sessions(_sessions(n, "big"))
        except BaseException as exc:  # the daemon dies under it
            failure.append(exc)

    sender = threading.Thread(target=send)
    sender.start()
    try:
        landed = wait_until(lambda: _store_sessions(d) or None, timeout=60, interval=0.05)
        assert 0 < landed < n, "the kill must land while the request is being written"
        d.kill9()
    finally:
        sender.join(60)
        c.close()
    d.start()
    try:
        with Client(d.paths, autostart=False) as c2:
            assert c2.status().sessions == 0
            assert c2.list_imports() == []
        assert "undid incomplete import batch" in d.log()
    finally:
        d.stop()


def test_kill_9_between_the_requests_of_a_batch_leaves_none_of_it(home: Path):
    d = DaemonProcess(home).start()
    try:
        with Client(d.paths, autostart=False) as c:
            first = c.import_sessions(_sessions(5, "a"), more=True)
            c.import_sessions(_sessions(5, "b"), batch_id=first.batch_id, more=True)
            assert c.status().sessions == 10
        d.kill9()
        d.start()
        assert _count(d) == 0
    finally:
        d.stop()


def test_a_batch_whose_last_request_arrives_lands_whole_and_survives_kill_9(home: Path):
    d = DaemonProcess(home).start()
    try:
        with Client(d.paths, autostart=False) as c:
            first = c.import_sessions(_sessions(5, "a"), more=True)
            c.import_sessions(_sessions(5, "b"), batch_id=first.batch_id)
        d.kill9()
        d.start()
        assert _count(d) == 10
    finally:
        d.stop()


def test_a_refused_request_undoes_the_batch_so_far(home: Path):
    d = DaemonProcess(home).start()
    try:
        with Client(d.paths, autostart=False) as c:
            first = c.import_sessions(_sessions(3, "a"), more=True)
            bad = _sessions(2, "b")
            bad[1] = msgspec_replace(bad[1], created_at=datetime(1960, 1, 1, tzinfo=timezone.utc))
            with pytest.raises(RpcError) as err:
                c.import_sessions(bad, batch_id=first.batch_id)
            assert err.value.code == ErrorCode.INVALID_PARAMS
            assert err.value.data["path"] == "$.sessions[1].created_at"
            assert c.status().sessions == 0
            assert c.list_imports() == []
    finally:
        d.stop()


def msgspec_replace(x: Any, **changes: Any) -> Any:
    import msgspec

    return msgspec.structs.replace(x, **changes)
