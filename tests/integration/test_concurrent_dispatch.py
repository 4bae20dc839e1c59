"""No request holds up another client: handlers that wait are answered from tasks.

- A big import (thousands of sessions, one transaction each) lets other clients in
  between its slices: their ``daemon/status`` is answered while the import is still
  being written (before: the receive loop awaited the import, so every client
  waited for it).
- ``session/cancel`` answers once it has signalled the turn: its response comes
  before the reply's ``message/completed`` (cancelled), which follows the teardown.

Both are checked by the order frames arrive in, not by how long anything took.
"""

from __future__ import annotations

import json

import zmq
from conversation_support import provider_daemon
from reliability_support import Raw

from duologue.daemon.emulator import Reply

SESSIONS = 4000


def _import_params(n: int) -> dict:
    return {"sessions": [
        {"external_id": f"concurrent-{i}", "sources": ["claude-code"], "title": f"imported {i}",
         "created_at": "2025-01-01T00:00:00Z",
         "messages": [{"external_id": f"concurrent-{i}:0", "role": "user",
                       "content": [{"type": "text", "text": f"message of session {i}"}],
                       "created_at": "2025-01-01T00:00:00Z"}]}
        for i in range(n)]}


def test_a_big_import_lets_other_clients_be_answered_while_it_is_written(daemon):
    ctx = zmq.Context()
    importer = Raw(ctx, daemon.paths.endpoint, timeout_ms=120_000)
    other = Raw(ctx, daemon.paths.endpoint, timeout_ms=60_000)
    try:
        importer.request("import/run", _import_params(SESSIONS))
        answers = []
        while not importer.sock.poll(0):
            status = other.call("daemon/status")["result"]
            answers.append(status["sessions"])
            if len(answers) >= 3 and answers[-1] > answers[0]:
                break
        assert importer.sock.poll(0) == 0, "the import ended before another client was answered twice"
        assert len(answers) >= 3 and 0 < answers[-1] < SESSIONS, (
            f"status answered with {answers} sessions: not while the import was being written")
        result = json.loads(importer.recv_frame())["result"]
        assert result["created_sessions"] == SESSIONS
        assert other.call("daemon/status")["result"]["sessions"] == SESSIONS
    finally:
        importer.close()
        other.close()
        ctx.term()


def test_cancel_answers_once_signalled_and_the_cancelled_reply_follows(home, emulator):
    d = provider_daemon(home, emulator).start()
    ctx = zmq.Context()
    raw = Raw(ctx, d.paths.endpoint, timeout_ms=30_000)
    try:
        sid = raw.call("session/create", {"model": "sonnet"})["result"]["session"]["id"]
        raw.call("session/attach", {"session_id": sid})
        emulator.script("anthropic", Reply(chunks=["word "] * 2000, chunk_delay=0.01))
        raw.call("session/send", {"session_id": sid, "text": "go on for a while"})
        while True:  # the reply streams
            frame = json.loads(raw.recv_frame())
            if frame.get("method") == "message/delta" and frame["params"].get("text"):
                break
        cancel_id = raw.request("session/cancel", {"session_id": sid})
        order = []
        while "completed" not in order:
            frame = json.loads(raw.recv_frame())
            if frame.get("id") == cancel_id:
                assert frame["result"]["cancelled"] is True
                order.append("response")
            elif frame.get("method") == "message/completed":
                assert frame["params"]["message"]["status"] == "cancelled"
                assert frame["params"]["message"]["content"], "the partial text is kept"
                order.append("completed")
        assert order == ["response", "completed"]
    finally:
        raw.close()
        ctx.term()
        d.stop()
