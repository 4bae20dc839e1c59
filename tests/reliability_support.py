"""Helpers for tests/reliability: an emulator in its own process, raw sockets, scans.

Importable as ``reliability_support`` (pytest puts tests/ on the path).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import zmq

from support import DaemonProcess

FAKE_ANTHROPIC_KEY = "sk-ant-reliability-FAKE-7f3a9c1e5b2d4086"
FAKE_GEMINI_KEY = "gm-reliability-FAKE-19e8d7c6b5a40312"


class Reachable(Protocol):
    """An emulator as a daemon reaches it: an in-process ``Emulator`` or an
    :class:`EmulatorAddress`."""

    @property
    def url(self) -> str: ...

    @property
    def api_keys(self) -> Mapping[str, str]: ...


@dataclass(frozen=True)
class EmulatorAddress:
    """Where an emulator in another process listens, and the keys it made."""

    url: str
    api_keys: Mapping[str, str]


@contextmanager
def emulator_process() -> Iterator[EmulatorAddress]:
    """The provider emulator in a child process (so a load test measures the daemon,
    not the test process's GIL), read from the two lines it prints at start."""
    proc = subprocess.Popen([sys.executable, "-m", "duologue.daemon.emulator"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        said = proc.stdout.readline() + proc.stdout.readline()
        found = re.search(r"(http://\S+)", said)
        keys = {name.lower(): key for name, key in re.findall(r"(ANTHROPIC|GEMINI)_API_KEY=(\S+)", said)}
        assert found and len(keys) == 2, f"the emulator did not start: {said!r}"
        yield EmulatorAddress(found.group(1), keys)
    finally:
        proc.terminate()
        proc.wait(10)


def configured_daemon(home: Path, emulator: Reachable, *, anthropic_key: str | None = None,
                      gemini_key: str | None = None, top: str = "", config: str = "",
                      timeout_s: float = 5.0) -> DaemonProcess:
    """A daemon configured like a user's (keys, base URLs) against ``emulator``, with
    its keys unless others are given. ``top`` holds top-level config keys, ``config``
    tables after the provider tables."""
    config_dir = home / "config"
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "config.toml").write_text(
        top + f"\n[providers.anthropic]\nmax_retries = 0\ntimeout_s = {timeout_s}\n"
        f"[providers.gemini]\nmax_retries = 0\ntimeout_s = {timeout_s}\n" + config)
    env = {"ANTHROPIC_API_KEY": anthropic_key or emulator.api_keys["anthropic"], "ANTHROPIC_BASE_URL": emulator.url,
           "GEMINI_API_KEY": gemini_key or emulator.api_keys["gemini"], "GEMINI_BASE_URL": emulator.url}
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
        self._items: deque[Any] = deque()  # the rest of a batch frame ``recv_item`` opened

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

    def recv_item(self) -> Any:
        """The next JSON-RPC message, decoded, whatever frame carries it: a replay
        comes as batch frames (arrays of notifications)."""
        if not self._items:
            value = json.loads(self.sock.recv())
            self._items.extend(value if isinstance(value, list) else [value])
        return self._items.popleft()

    def recv_items(self, n: int) -> list[Any]:
        return [self.recv_item() for _ in range(n)]

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
