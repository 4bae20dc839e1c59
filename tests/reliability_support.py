"""Helpers for tests/reliability: an emulator in its own process, raw sockets, scans.

Importable as ``reliability_support`` (pytest puts tests/ on the path).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import zmq

from support import DaemonProcess

FAKE_ANTHROPIC_KEY = "sk-ant-reliability-FAKE-7f3a9c1e5b2d4086"
FAKE_GEMINI_KEY = "gm-reliability-FAKE-19e8d7c6b5a40312"


@contextmanager
def emulator_process() -> Iterator[str]:
    """The provider emulator in a child process (so a load test measures the daemon,
    not the test process's GIL); yields its base URL."""
    proc = subprocess.Popen([sys.executable, "-m", "duologue.daemon.emulator"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        found = re.search(r"(http://\S+)", line)
        assert found, f"the emulator did not start: {line!r}"
        yield found.group(1)
    finally:
        proc.terminate()
        proc.wait(10)


def configured_daemon(home: Path, url: str, *, anthropic_key: str = FAKE_ANTHROPIC_KEY,
                      gemini_key: str = FAKE_GEMINI_KEY, top: str = "", config: str = "",
                      timeout_s: float = 5.0) -> DaemonProcess:
    """A daemon configured like a user's (keys, base URLs) against an emulator at ``url``.
    ``top`` holds top-level config keys, ``config`` tables after the provider tables."""
    config_dir = home / "config"
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "config.toml").write_text(
        top + f"\n[providers.anthropic]\nmax_retries = 0\ntimeout_s = {timeout_s}\n"
        f"[providers.gemini]\nmax_retries = 0\ntimeout_s = {timeout_s}\n" + config)
    env = {"ANTHROPIC_API_KEY": anthropic_key, "ANTHROPIC_BASE_URL": url,
           "GEMINI_API_KEY": gemini_key, "GEMINI_BASE_URL": url}
    return DaemonProcess(home, emulator=False, env=env)


class Raw:
    """A DEALER socket that sends bytes as given and reads frames (tests only)."""

    def __init__(self, ctx: zmq.Context, endpoint: str, *, rcvhwm: int | None = None,
                 timeout_ms: int = 10_000):
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.RCVTIMEO, timeout_ms)
        if rcvhwm is not None:
            self.sock.setsockopt(zmq.RCVHWM, rcvhwm)
            self.sock.setsockopt(zmq.RCVBUF, 4096)
        self.sock.connect(endpoint)
        self._ids = 0
        self.aside: list[bytes] = []  # frames ``call`` read while waiting for its answer

    def next_id(self) -> int:
        self._ids += 1
        return self._ids

    def request(self, method: str, params: Any = None, req_id: int | None = None) -> int:
        req_id = self.next_id() if req_id is None else req_id
        body: dict[str, Any] = {"jsonrpc": "2.0", "id": req_id, "method": method}
        if params is not None:
            body["params"] = params
        self.sock.send(json.dumps(body).encode())
        return req_id

    def recv_frame(self) -> bytes:
        return self.sock.recv()

    def call(self, method: str, params: Any = None) -> Any:
        """Send a request and return its response; other frames go to ``aside``."""
        req_id = self.request(method, params)
        while True:
            frame = self.sock.recv()
            reply = json.loads(frame)
            if isinstance(reply, dict) and reply.get("id") == req_id:
                return reply
            self.aside.append(frame)

    def close(self) -> None:
        self.sock.close(linger=0)
