"""Fixtures for ``duologue acp``: agent child processes driven over their real stdio by
the ACP SDK's own client side, against a real daemon (the ``daemon`` fixture on
``--emulator``, or ``live`` on a scripted in-process emulator)."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from acp import spawn_agent_process
from acp.client.connection import ClientSideConnection
from support import DaemonProcess

ACP_ARGV = [sys.executable, "-m", "duologue.clients.cli", "acp"]


class Recorder:
    """The ACP client's side: every ``session/update`` received, in order."""

    def __init__(self) -> None:
        self.updates: list[tuple[str, Any]] = []
        self._changed = asyncio.Event()

    async def session_update(self, session_id: str, update: Any, **kwargs: Any) -> None:
        self.updates.append((session_id, update))
        self._changed.set()

    async def request_permission(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def of(self, session_id: str, kind: str | None = None) -> list[Any]:
        return [u for sid, u in self.updates if sid == session_id and (kind is None or u.session_update == kind)]

    def text(self, session_id: str, kind: str = "agent_message_chunk") -> str:
        return "".join(u.content.text for u in self.of(session_id, kind) if u.content.type == "text")

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 30.0) -> Any:
        async def loop() -> Any:
            while True:
                value = predicate()
                if value:
                    return value
                self._changed.clear()
                await self._changed.wait()
        return await asyncio.wait_for(loop(), timeout)


class Agent:
    def __init__(self, conn: ClientSideConnection, proc: asyncio.subprocess.Process, recorder: Recorder):
        self.conn = conn
        self.proc = proc
        self.recorder = recorder


StartAcp = Callable[..., Awaitable[Agent]]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    p = tmp_path / "project"
    p.mkdir()
    (p / ".git").mkdir()
    (p / "lib.py").write_text("def add(a, b):\n    return a + b\n")
    return p


def _starter(stack: contextlib.AsyncExitStack, env: dict[str, str], project: Path) -> StartAcp:
    async def start(*, initialize: bool = True) -> Agent:
        recorder = Recorder()
        conn, proc = await stack.enter_async_context(spawn_agent_process(
            recorder, *ACP_ARGV, env=env, cwd=project, use_unstable_protocol=True,
            transport_kwargs={"limit": 50 * 1024 * 1024}))
        if initialize:
            await asyncio.wait_for(conn.initialize(protocol_version=1), 30)
        return Agent(conn, proc, recorder)
    return start


@pytest.fixture
async def start_acp(daemon: DaemonProcess, project: Path) -> AsyncIterator[StartAcp]:
    """Start ``duologue acp`` processes on the ``daemon`` fixture's home."""
    async with contextlib.AsyncExitStack() as stack:
        yield _starter(stack, daemon.env, project)


@pytest.fixture
async def start_live_acp(live: DaemonProcess, project: Path) -> AsyncIterator[StartAcp]:
    """Start ``duologue acp`` processes on a daemon whose providers are ``emulator``."""
    async with contextlib.AsyncExitStack() as stack:
        yield _starter(stack, live.env, project)


@pytest.fixture
async def start_acp_on(project: Path) -> AsyncIterator[Callable[[DaemonProcess], StartAcp]]:
    """``start_acp_on(d)`` starts ``duologue acp`` processes on a daemon the test made
    (they end at teardown, after the test has stopped its daemon)."""
    async with contextlib.AsyncExitStack() as stack:
        yield lambda d: _starter(stack, d.env, project)
