"""A newer daemon, as far as a client can tell: a relay in front of a real daemon that
passes every frame on, both ways, and can also send the clients notifications this
version of the protocol does not define (a newer minor version may add them).

Clients find the relay as they find a daemon whose runtime directory moved: the
pointer file ``<state dir>/runtime-dir`` (docs/protocol.md section 1) names the
relay's own private directory, where it listens on ``daemon.sock``. Each client gets
its own connection to the daemon, so subscriptions stay per client.

Importable as ``relay_support`` (pytest puts tests/ on the path).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

import zmq

from support import DaemonProcess, wait_until


class NewerDaemon:
    """Use as a context manager; :meth:`notify` sends every client seen so far one
    notification; :attr:`clients` counts them; :meth:`restart_daemon` restarts the
    daemon behind the relay, whose connections to the clients stay up (as a tunnel's
    or a proxy's may), so only the daemon's ``instance_id`` tells them."""

    def __init__(self, daemon: DaemonProcess):
        self.daemon = daemon
        self._upstream = daemon.paths.endpoint
        self._dir = Path(tempfile.mkdtemp(prefix="duo-relay-"))  # short (ipc paths) and 0700
        self._pointer = Path(daemon.paths.runtime_pointer)
        self._ctx = zmq.Context()
        self._control = f"inproc://relay-{id(self)}"
        self._thread = threading.Thread(target=self._run, name="newer-daemon", daemon=True)
        self._ready = threading.Event()
        self._peers: dict[bytes, zmq.Socket] = {}

    @property
    def clients(self) -> int:
        return len(self._peers)

    def __enter__(self) -> NewerDaemon:
        self._thread.start()
        self._ready.wait(5)
        self._pointer.write_text(str(self._dir))
        return self

    def __exit__(self, *exc: object) -> None:
        self._pointer.unlink(missing_ok=True)
        self._send_control(b"")
        self._thread.join(5)
        self._ctx.term()
        shutil.rmtree(self._dir, ignore_errors=True)

    def restart_daemon(self) -> None:
        """Restart the daemon in its own runtime dir (a pointer to the relay's would
        win), then point clients at the relay again."""
        self._pointer.unlink()
        self.daemon.restart()
        self._pointer.write_text(str(self._dir))

    def notify(self, method: str, params: dict[str, Any], *, to_clients: int = 1) -> None:
        """Send ``method`` to every client, once ``to_clients`` have connected."""
        wait_until(lambda: self.clients >= to_clients, timeout=20)
        self._send_control(json.dumps({"jsonrpc": "2.0", "method": method, "params": params}).encode())

    def _send_control(self, frame: bytes) -> None:
        # PUSH to a PULL: a bound PAIR takes one peer at a time, so a second control
        # socket that connected before the first one's pipe was gone was refused, and
        # its send blocked for ever (or its frame was lost), depending on timing.
        sock = self._ctx.socket(zmq.PUSH)
        sock.connect(self._control)
        sock.send(frame)
        sock.close(linger=1000)

    def _run(self) -> None:
        front = self._ctx.socket(zmq.ROUTER)
        front.bind(f"ipc://{self._dir / 'daemon.sock'}")
        control = self._ctx.socket(zmq.PULL)
        control.bind(self._control)
        poller = zmq.Poller()
        poller.register(front, zmq.POLLIN)
        poller.register(control, zmq.POLLIN)
        back_of: dict[zmq.Socket, bytes] = {}
        self._ready.set()
        try:
            while True:
                for sock, _ in poller.poll():
                    if sock is control:
                        frame = control.recv()
                        if not frame:
                            return
                        for peer in list(self._peers):
                            front.send_multipart([peer, frame])
                    elif sock is front:
                        peer, frame = front.recv_multipart()
                        back = self._peers.get(peer)
                        if back is None:
                            back = self._ctx.socket(zmq.DEALER)
                            back.connect(self._upstream)
                            poller.register(back, zmq.POLLIN)
                            back_of[back] = peer
                            self._peers[peer] = back
                        back.send(frame)
                    else:
                        front.send_multipart([back_of[sock], sock.recv()])
        finally:
            for sock in [front, control, *self._peers.values()]:
                sock.close(linger=0)
