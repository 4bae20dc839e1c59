"""Fixtures for conversation tests (helpers live in ``conversation_support``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conversation_support import provider_daemon
from support import DaemonProcess

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
async def c1(live: DaemonProcess):
    async with live.client("c1") as c:
        yield c


@pytest.fixture
async def c2(live: DaemonProcess):
    async with live.client("c2") as c:
        yield c
