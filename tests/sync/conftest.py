"""Fixtures for replication: a real nats-server with JetStream in a temporary
directory, and two real daemons (separate homes, one device name each) on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support import DaemonProcess
from sync_support import NatsServer, sync_daemon


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path / "nats").start()
    try:
        yield server
    finally:
        server.stop()


def _device(tmp_path: Path, server: NatsServer, name: str) -> Iterator[DaemonProcess]:
    """A daemon of its own home on ``server``, named ``name``, stopped after the test."""
    d = sync_daemon(tmp_path / name, server.url, name).start()
    try:
        yield d
    finally:
        d.stop()


@pytest.fixture
def laptop(tmp_path: Path, nats_server: NatsServer) -> Iterator[DaemonProcess]:
    yield from _device(tmp_path, nats_server, "laptop")


@pytest.fixture
def desktop(tmp_path: Path, nats_server: NatsServer) -> Iterator[DaemonProcess]:
    yield from _device(tmp_path, nats_server, "desktop")
