"""Fixtures for the language server: ``duologue lsp`` child processes driven over
their real stdio with LSP framing, against a real daemon (the ``daemon`` fixture on
``--emulator``, or ``live`` on a scripted in-process emulator)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from support import DaemonProcess

from duologue.clients.lsp.stdio_client import LspClient

LSP_ARGV = [sys.executable, "-m", "duologue.clients.cli", "lsp"]

StartLsp = Callable[..., Awaitable[LspClient]]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    p = tmp_path / "project"
    p.mkdir()
    (p / "src").mkdir()
    (p / "src" / "lib.py").write_text("def add(a, b):\n    return a + b\n\n\ndef unused():\n    pass\n")
    return p


async def _servers(env: dict[str, str], project: Path) -> AsyncIterator[StartLsp]:
    started: list[LspClient] = []

    async def start(*, root: Path | None = None, args: tuple[str, ...] = (),
                    capabilities: dict | None = None, initialize: bool = True) -> LspClient:
        client = await LspClient.spawn([*LSP_ARGV, *args], env=env, cwd=root or project)
        started.append(client)
        if initialize:
            await client.initialize(root or project, capabilities)
        return client

    try:
        yield start
    finally:
        for client in started:
            if client.proc.returncode is None:
                try:
                    await client.shutdown_and_exit(10)
                except Exception:
                    await client.kill()


@pytest.fixture
async def start_lsp(daemon: DaemonProcess, project: Path) -> AsyncIterator[StartLsp]:
    """Start ``duologue lsp`` processes on the ``daemon`` fixture's home."""
    async for start in _servers(daemon.env, project):
        yield start


@pytest.fixture
async def start_live_lsp(live: DaemonProcess, project: Path) -> AsyncIterator[StartLsp]:
    """Start ``duologue lsp`` processes on a daemon whose providers are ``emulator``."""
    async for start in _servers(live.env, project):
        yield start
