"""Fixtures for conversation tests (helpers live in ``conversation_support``)."""

from __future__ import annotations


import pytest
from support import DaemonProcess



@pytest.fixture
async def c1(live: DaemonProcess):
    async with live.client("c1") as c:
        yield c


@pytest.fixture
async def c2(live: DaemonProcess):
    async with live.client("c2") as c:
        yield c
