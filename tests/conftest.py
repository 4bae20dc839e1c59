"""Shared fixtures: a real daemon process in a temporary $DUOLOGUE_HOME.

``daemon`` starts ``python -m duologue.daemon --emulator`` as a child process (see
``support.DaemonProcess``), waits until its socket answers, and stops it afterwards.
Clients connect with the real client library over the real ipc socket.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conversation_support import provider_daemon
from support import DaemonProcess

from duologue.daemon.emulator import Emulator


def pytest_addoption(parser: pytest.Parser) -> None:
    # Declared here, not in tests/reliability/conftest.py: pytest only takes options
    # from the conftests it loads at startup, and that one is not among them.
    parser.addoption("--long", action="store_true", default=False,
                     help="tests/reliability: run the bigger numbers (also DUOLOGUE_LONG=1)")


@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "home"
    h.mkdir()
    return h


@pytest.fixture
def daemon(home: Path) -> Iterator[DaemonProcess]:
    d = DaemonProcess(home).start()
    try:
        yield d
    finally:
        d.stop()


@pytest.fixture
async def client(daemon: DaemonProcess):
    async with daemon.client("first") as c:
        yield c


@pytest.fixture
async def client2(daemon: DaemonProcess):
    async with daemon.client("second") as c:
        yield c


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    """The provider emulator, scripted by the test; real HTTP on loopback."""
    with Emulator() as emu:
        yield emu


@pytest.fixture
def live(home: Path, emulator: Emulator) -> Iterator[DaemonProcess]:
    """A daemon whose providers are configured (fake keys, base URLs) to reach
    ``emulator``, as a user's would reach the real APIs."""
    d = provider_daemon(home, emulator).start()
    try:
        yield d
    finally:
        d.stop()
