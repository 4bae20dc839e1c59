"""Fixtures for the terminal chat: the chat app attached to a real daemon.

``daemon`` (tests/conftest.py) runs with ``--emulator`` (the default reply, labelled
as the emulator); ``live`` is a daemon configured with keys and base URLs pointing
at an in-process emulator the test scripts (slow streams, failures).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conversation_support import provider_daemon
from support import DaemonProcess
from tui_support import FROZEN, PROJECT

from duologue.clients.tui import ChatApp
from duologue.daemon.emulator import Emulator


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    emu = Emulator().start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def live(home: Path, emulator: Emulator) -> Iterator[DaemonProcess]:
    d = provider_daemon(home, emulator).start()
    try:
        yield d
    finally:
        d.stop()


@pytest.fixture
def make_app():
    def make(client, session: str | None = None, project: str = PROJECT) -> ChatApp:
        return ChatApp(client, session=session, project=project, clock=lambda: FROZEN)
    return make
