"""What the benchmarks stand on: temporary homes, daemon processes, the emulator.

A benchmark's daemon is a real child process (``python -m duologue.daemon``) in a
temporary ``$DUOLOGUE_HOME`` on the same disk as the user's home would be (so a
synced commit costs what it costs a user). Providers are configured the way a user
configures them, with keys and base URLs pointing at a provider emulator that runs
in the benchmark process, so the benchmark can script replies and read what the
providers received.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from unittest import mock

import lmdb

from duologue.clients.rpc.client import AsyncClient
from duologue.clients.rpc.launcher import wait_for_socket
from duologue.daemon.store import Store
from duologue.protocol.paths import Paths, locate

if TYPE_CHECKING:
    from duologue.daemon.emulator import Emulator


@contextlib.contextmanager
def unsynced_store(path: Path) -> Iterator[Store]:
    """The daemon's own ``Store`` on ``path``, its commits not synced: for writing a
    benchmark's store before its daemon starts (setup, not a figure)."""
    real_open = lmdb.open

    def open_unsynced(*args: object, **kwargs: object) -> lmdb.Environment:
        kwargs.update(sync=False, metasync=False)
        return real_open(*args, **kwargs)

    with mock.patch.object(lmdb, "open", open_unsynced):
        store = Store(path)
    try:
        yield store
    finally:
        store.close()


@contextlib.contextmanager
def temp_home(prefix: str = "dlg-bench-") -> Iterator[Path]:
    """A fresh directory, removed afterwards. Short, so the ipc path stays short."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def home_env(home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY",
                        "ANTHROPIC_BASE_URL", "GEMINI_BASE_URL")}
    env["DUOLOGUE_HOME"] = str(home)
    env.update(extra or {})
    return env


class Daemon:
    """A daemon child process bound to one home."""

    def __init__(self, home: Path, *, emulator: Emulator | None = None, builtin_emulator: bool = False,
                 top: str = "", config: str = "", wrap: list[str] | None = None, timeout_s: float = 10.0):
        """``emulator``: configure both providers (its keys and base URL) to talk to an
        emulator the caller runs. ``builtin_emulator``: ``--emulator`` (the daemon's
        own, in-process). ``top``/``config``: config.toml text before/after the
        provider tables. ``wrap``: argv prefix (a profiler). ``timeout_s``: the providers'
        timeout (a request that takes the SDK long to encode needs more)."""
        self.home = home
        extra: dict[str, str] = {}
        if emulator is not None:
            extra = {"ANTHROPIC_API_KEY": emulator.api_keys["anthropic"], "ANTHROPIC_BASE_URL": emulator.url,
                     "GEMINI_API_KEY": emulator.api_keys["gemini"], "GEMINI_BASE_URL": emulator.url}
            config_dir = home / "config"
            config_dir.mkdir(parents=True, exist_ok=True)
            (config_dir / "config.toml").write_text(
                top + f"\n[providers.anthropic]\nmax_retries = 0\ntimeout_s = {timeout_s}\n"
                f"[providers.gemini]\nmax_retries = 0\ntimeout_s = {timeout_s}\n" + config)
        self.env = home_env(home, extra)
        self.paths: Paths = locate(self.env)
        self.builtin_emulator = builtin_emulator
        self.wrap = wrap or []
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> Daemon:
        args = [*self.wrap, sys.executable, "-m", "duologue.daemon"]
        if self.builtin_emulator:
            args.append("--emulator")
        self.proc = subprocess.Popen(args, env=self.env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_socket(self.paths, self.proc, timeout)
        return self

    @property
    def pid(self) -> int:
        """The daemon's own pid (the one that wrote the pid file, under any wrapper)."""
        from duologue.clients.rpc.launcher import read_pid

        pid = read_pid(self.paths)
        assert pid is not None
        return pid

    def client(self, name: str = "bench", timeout: float = 60.0) -> AsyncClient:
        return AsyncClient(self.paths, autostart=False, client_name=name, timeout=timeout)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def __enter__(self) -> Daemon:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def wait_turn(client: AsyncClient, turn_id: str, timeout: float = 60.0) -> list[object]:
    """Every event the client receives until the turn's progress end (inclusive)."""
    import asyncio

    from duologue.protocol import methods as m

    events: list[object] = []

    async def collect() -> None:
        while True:
            event = await client.next_event()
            events.append(event)
            if isinstance(event, m.Progress) and event.turn_id == turn_id and event.kind == "end":
                return

    await asyncio.wait_for(collect(), timeout)
    return events
