"""Fixtures for the terminal chat: the chat app attached to a real daemon.

``daemon`` (tests/conftest.py) runs with ``--emulator`` (the default reply, labelled
as the emulator); ``live`` is a daemon configured with keys and base URLs pointing
at an in-process emulator the test scripts (slow streams, failures).
"""

from __future__ import annotations


import pytest
from tui_support import FROZEN, PROJECT

from duologue.clients.tui import ChatApp


@pytest.fixture
def make_app():
    def make(client, session: str | None = None, project: str = PROJECT) -> ChatApp:
        return ChatApp(client, session=session, project=project, clock=lambda: FROZEN)
    return make
