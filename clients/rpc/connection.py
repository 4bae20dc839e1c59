"""What both clients share, with no event loop in it: how a client is made, its
DEALER socket to the daemon, and what a connection tells it.

:class:`ClientSettings` is the constructor of :class:`~.client.AsyncClient` and of
the blocking :class:`~.sync_client.Client`; :func:`open_dealer` their socket;
:class:`Disconnected` and :class:`Reconnected` the markers both put on their event
streams. Nothing here imports asyncio, so the blocking client (and the CLI on it)
starts without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
import zmq

from duologue.protocol import methods as m
from duologue.protocol.jsonrpc import Incoming, decode_notification
from duologue.protocol.paths import Paths, locate, with_runtime_pointer

from .launcher import DaemonUnavailable, EmulatorMode, daemon_running, spawn_if_absent

if TYPE_CHECKING:
    import subprocess

HELLO_TIMEOUT_S = 15.0
"""How long a daemon has to answer hello: one that just bound may still be finishing
its start (recovery, tightening an old home) on a loaded machine."""


# A frozen Struct rather than a dataclass: a dataclass is made by compiling its methods
# at import, some 30 times the cost, paid by every one-shot client at start-up.
class CurveKeys(msgspec.Struct, frozen=True):
    """CURVE keys (Z85) for a daemon's TCP endpoint: the server's public key and
    this client's key pair, whose public half is in the daemon's allow-list."""

    server_public: bytes
    public: bytes
    secret: bytes


def open_dealer(ctx: zmq.Context[Any], endpoint: str, curve: CurveKeys | None) -> Any:
    """The client's DEALER socket, connected: no linger on close, no receive limit
    (the daemon bounds what it queues), CURVE when the endpoint needs it."""
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVHWM, 0)
    if curve is not None:
        sock.curve_serverkey = curve.server_public
        sock.curve_publickey = curve.public
        sock.curve_secretkey = curve.secret
    sock.connect(endpoint)
    return sock


class ConnectionLost(DaemonUnavailable):
    """The daemon went away while a request was in flight."""


class ClientSettings:
    """What both clients are made with. ``emulator`` decides how a daemon the client
    starts answers: the default, "if-no-key", uses the offline emulator only when no
    provider key is configured (the daemon labels itself as such in daemon/status and
    every reply says so).

    ``endpoint`` connects elsewhere than the local ipc socket (a daemon's opt-in
    ``tcp://`` endpoint, which needs ``curve``); such a daemon is never started."""

    def __init__(self, paths: Paths | None = None, *, autostart: bool = True,
                 client_name: str = "python", timeout: float = 60.0,
                 emulator: EmulatorMode = "if-no-key", endpoint: str | None = None,
                 curve: CurveKeys | None = None):
        self.paths = paths or locate()
        self.endpoint = endpoint or self.paths.endpoint
        self.remote = endpoint is not None
        self.curve = curve
        self.autostart = autostart
        self.client_name = client_name
        self.timeout = timeout
        self.emulator = emulator
        self.hello_result: m.HelloResult | None = None
        self.started_daemon = False
        self._init_state()

    def _init_state(self) -> None:
        """The client's own state, made at the end of construction."""

    def daemon_running(self) -> bool:
        return daemon_running(self.paths)

    def _spawn_if_absent(self) -> subprocess.Popen[bytes] | None:
        """The daemon process this client started, or None (one runs, or the endpoint
        is remote). The paths are read again: the runtime dir may have moved."""
        if self.remote:
            return None
        self._settle(with_runtime_pointer(self.paths))
        proc = spawn_if_absent(self.paths, autostart=self.autostart, emulator=self.emulator)
        self.started_daemon = proc is not None
        return proc

    def _settle(self, paths: Paths) -> None:
        self.paths = paths
        if not self.remote:
            self.endpoint = paths.endpoint


def read_notification(note: Incoming) -> Any:
    """The notification's typed params; itself, raw, when this client cannot read it
    (a method it does not know, or params a newer daemon shaped otherwise)."""
    try:
        event = decode_notification(note)
    except msgspec.DecodeError:
        return note
    return note if event is None else event


class Disconnected(msgspec.Struct):
    """Put on the event stream when the connection to the daemon drops."""


class Reconnected(msgspec.Struct):
    """Put on the event stream when the connection comes back after a drop. Every
    subscription died with the old connection; a client reattaches them."""
