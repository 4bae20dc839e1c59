"""The ZeroMQ transport: one ROUTER socket, one DEALER per client, one frame per
JSON-RPC message.

The daemon never blocks on a client. Frames go out with NOBLOCK; when a client's
pipe is full they wait in that client's outbox, which a flusher retries. What is
queued for a client counts every byte: its outbox, and the frames ZeroMQ's pipe may
still hold, which are at most the last ``SEND_HWM`` frames it took (the pipe is a
FIFO of at most that many), counted from when they were sent until the pipe is seen
full. A client whose queue passes ``queue_limit`` bytes is detached from every
session, its outbox is cleared, and it receives one ``client/dropped`` notification
naming every session it was dropped from; nothing of those sessions follows it (the
rest of a replay in progress is not sent), so a reattach with ``since_seq`` set to
the last seq before the notice loses nothing. A peer that has disconnected
(EHOSTUNREACH under ROUTER_MANDATORY) is forgotten.

A replay goes out as JSON-RPC batch frames read from the store only as the pipe
takes them (``replay``), ``PULLS_PER_PASS`` at most before the loop serves the
rest; the other frames one message each.

``MAXMSGSIZE`` bounds what a client may send: ZeroMQ closes the connection of a
peer that sends a larger message, so an oversized frame is never buffered.

``SNDHWM`` is kept small on purpose: ZeroMQ counts messages, not bytes, so its pipe
to a peer is only a short staging area (a few frames, counted as above) and the
byte-counted outbox is where a slow client's backlog accumulates (and is bounded).
The flusher retries at once while a pass makes progress, and waits
``FLUSH_INTERVAL_S`` only when no backlogged client took anything.

The ipc endpoint is protected by its 0700 directory. An opt-in TCP endpoint is a
second transport on its own ROUTER socket, with CURVE on (the server key pair and
the allow-list of client public keys come from :class:`CurveServer`, enforced by a
ZAP authenticator thread): CURVE options are per socket, so the ipc socket stays
plain. Peers of the two transports never share a key (``tag`` prefixes it).

The socket is a plain (synchronous) one watched with ``loop.add_reader``. Its file
descriptor is edge-triggered: any operation on the socket, a send included, may
consume the wake-up that says a message arrived. So every send re-checks
``EVENTS`` and wakes the reader, and the reader drains with NOBLOCK until ``EVENTS``
shows nothing more. (An asyncio socket for receiving plus a shadow for sending
loses that wake-up: a request then waits, unanswered, for the next one to arrive.)
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator
from zmq.utils.monitor import parse_monitor_message

from duologue.protocol.errors import ErrorCode, RpcError
from duologue.protocol.jsonrpc import encode_error, encode_notification
from duologue.protocol.methods import ClientDropped

from .dispatch import Dispatcher
from .hub import Hub
from .replay import Lazy, batch_bytes

log = logging.getLogger(__name__)

FLUSH_INTERVAL_S = 0.005
IDLE_PEER_S = 600.0
CLOSE_LINGER_MS = 1000
"""How long a stopping daemon keeps trying to deliver frames it already sent."""
SEND_HWM = 64
PULLS_PER_PASS = 8
"""Frames a flush reads from a replay (a page of the store each, built into a batch)
before other callbacks get their turn: a client whose pipe takes a long replay as
fast as it is read would otherwise hold the loop for all of it (115,001 events,
about 140 ms)."""


@dataclass(frozen=True)
class CurveServer:
    """The TCP endpoint's CURVE identity and the directory of allowed client keys
    (``*.key`` public certificates as ``zmq.auth.create_certificates`` writes them)."""

    public_key: bytes
    secret_key: bytes
    authorized_dir: Path


def curve_server(config_dir: Path) -> CurveServer:
    """The daemon's CURVE key pair (made on first use, the secret file 0600) and its
    allow-list directory: ``<config>/keys/server.key`` (public, give it to clients),
    ``<config>/keys/server.key_secret`` and ``<config>/authorized_clients/*.key``."""
    keys = config_dir / "keys"
    allowed = config_dir / "authorized_clients"
    for d in (keys, allowed):
        d.mkdir(mode=0o700, parents=True, exist_ok=True)
    secret_file = keys / "server.key_secret"
    if not secret_file.exists():
        old_umask = os.umask(0o077)
        try:
            zmq.auth.create_certificates(str(keys), "server")
        finally:
            os.umask(old_umask)
    os.chmod(secret_file, 0o600)
    public, secret = zmq.auth.load_certificate(str(secret_file))
    if not secret:
        raise ValueError(f"{secret_file} holds no secret key")
    return CurveServer(public_key=public, secret_key=secret, authorized_dir=allowed)


class Peer:
    """One connected client, known by its ROUTER identity (``routing_id``); ``key``
    is that identity prefixed by the transport's tag, unique across transports."""

    def __init__(self, routing_id: bytes, transport: ZmqTransport):
        self.routing_id = routing_id
        self.key = transport.tag + routing_id
        self.channel = transport
        self.outbox: deque[bytes | Lazy] = deque()
        """Frames (counted in ``outbox_bytes``) and lazy sources (a replay read from
        the store as it is sent, not counted until a frame is pulled)."""
        self.outbox_bytes = 0
        self.piped: deque[int] = deque(maxlen=SEND_HWM)
        """Sizes of the last frames ZeroMQ took: what its pipe to this peer may hold."""
        self.piped_bytes = 0
        self.sent = 0
        """Frames ZeroMQ took so far: a flush that sent any made progress."""
        self.dropped: list[str] = []
        """Sessions named by a drop notice not yet handed to ZeroMQ (a second drop
        before it goes out adds to it rather than replacing it)."""
        self.notice: bytes | None = None
        """That notice, at the head of the outbox until ZeroMQ takes it."""
        self.drops = 0
        self.last_seen = time.monotonic()

    @property
    def queued_bytes(self) -> int:
        return self.outbox_bytes + self.piped_bytes

    def piped_frame(self, size: int) -> None:
        self.sent += 1
        if len(self.piped) == self.piped.maxlen:
            self.piped_bytes -= self.piped[0]
        self.piped.append(size)
        self.piped_bytes += size

    def __repr__(self) -> str:
        return f"Peer({self.key.hex()})"


class ZmqTransport:
    def __init__(self, endpoint: str, dispatcher: Dispatcher, hub: Hub, *,
                 max_frame_bytes: int, queue_limit_bytes: int,
                 curve: CurveServer | None = None, tag: bytes = b""):
        if endpoint.startswith("tcp://") and curve is None:
            raise ValueError("a TCP endpoint requires CURVE")
        self.endpoint = endpoint
        self.tag = tag
        self._dispatcher = dispatcher
        self._hub = hub
        self._queue_limit = queue_limit_bytes
        self._batch_bytes = batch_bytes(queue_limit_bytes, SEND_HWM)
        self._curve = curve
        self._auth: ThreadAuthenticator | None = None
        self._ctx = zmq.Context()
        self._sock = self._ctx.socket(zmq.ROUTER)
        self._sock.setsockopt(zmq.MAXMSGSIZE, max_frame_bytes)
        self._sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
        self._sock.setsockopt(zmq.SNDHWM, SEND_HWM)
        self._sock.setsockopt(zmq.RCVHWM, 10_000)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._peers: dict[bytes, Peer] = {}
        self._connections: set[int] = set()
        """The file descriptors of connected clients (from the socket monitor)."""
        self._monitor = self._sock.get_monitor_socket(
            zmq.EVENT_ACCEPTED | zmq.EVENT_DISCONNECTED)
        self._backlogged: set[bytes] = set()
        self._flush_wakeup = asyncio.Event()
        self._waiter: asyncio.Future[None] | None = None

    @property
    def client_count(self) -> int:
        """Connected clients: connections accepted and not yet closed, as the socket
        monitor reports them (a DEALER is one connection)."""
        return len(self._connections)

    def _on_monitor(self) -> None:
        """Drain the socket monitor: connections come (handshake done) and go."""
        mon = self._monitor
        while mon is not None and mon.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            event = parse_monitor_message(mon.recv_multipart(zmq.NOBLOCK))
            if event["event"] == zmq.EVENT_ACCEPTED:
                self._connections.add(event["value"])
            elif event["event"] == zmq.EVENT_DISCONNECTED:
                self._connections.discard(event["value"])

    def bind(self) -> None:
        if self._curve is not None:
            self._auth = ThreadAuthenticator(self._ctx, log=log)
            self._auth.start()
            # Only the public keys in the allow-list may connect (read once, at start).
            self._auth.configure_curve(domain="*", location=str(self._curve.authorized_dir))
            self._sock.curve_server = True
            self._sock.curve_publickey = self._curve.public_key
            self._sock.curve_secretkey = self._curve.secret_key
        if not self.endpoint.startswith("ipc://"):
            self._sock.bind(self.endpoint)
            return
        path = Path(self.endpoint.removeprefix("ipc://"))
        if path.exists():
            path.unlink()  # stale: we hold the daemon lock, so nobody else serves it
        old_umask = os.umask(0o177)
        try:
            self._sock.bind(self.endpoint)
        finally:
            os.umask(old_umask)
        os.chmod(path, 0o600)

    async def serve(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        fd = self._sock.getsockopt(zmq.FD)
        loop.add_reader(fd, self._wake)
        monitor_fd = self._monitor.getsockopt(zmq.FD)
        loop.add_reader(monitor_fd, self._on_monitor)
        loop.call_soon(self._on_monitor)
        flusher = asyncio.create_task(self._flush_loop(stop), name="zmq-flusher")
        stopping = asyncio.ensure_future(stop.wait())
        stopping.add_done_callback(lambda _: self._wake())
        try:
            while not stop.is_set():
                # One plain future per idle wait, resolved by the fd's reader or by a
                # send that consumed the edge: no task is made per request.
                self._waiter = loop.create_future()
                while self._sock.getsockopt(zmq.EVENTS) & zmq.POLLIN:
                    self._on_message(self._sock.recv_multipart(zmq.NOBLOCK))
                    if stop.is_set():
                        break
                    if self._sock.getsockopt(zmq.EVENTS) & zmq.POLLIN:
                        await asyncio.sleep(0)  # a flood of requests must not starve running turns
                if stop.is_set():
                    break
                # EVENTS showed nothing since the waiter was made, and a later edge or
                # send resolves it, so no wake-up can be lost.
                await self._waiter
        finally:
            loop.remove_reader(fd)
            loop.remove_reader(monitor_fd)
            stopping.cancel()
            flusher.cancel()
            await asyncio.gather(flusher, stopping, return_exceptions=True)

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
        if self._backlogged:
            # The fd also signals ZeroMQ's own commands, such as a pipe that drained
            # enough to take frames again: the flusher tries at once.
            self._flush_wakeup.set()

    def close(self) -> None:
        """Deliver what was already answered, close the socket and remove its file.

        Linger is bounded but not zero: with zero, libzmq discards frames still in
        its pipes, so the answer to ``daemon/shutdown`` itself could be lost and the
        client would see a dropped connection instead. libzmq leaves an ipc file
        behind on close, and a clean stop should not look like a crash; we still
        hold the daemon lock here, so the file cannot be another daemon's."""
        for key in list(self._backlogged):
            peer = self._peers.get(key)
            if peer is not None:
                self._flush(peer)
        # Stopped before its PAIR socket closes: libzmq would otherwise block sending
        # events nobody reads.
        self._sock.disable_monitor()
        self._monitor.close(linger=0)
        self._monitor = None
        self._sock.close(linger=CLOSE_LINGER_MS)
        if self._auth is not None:
            self._auth.stop()
        self._ctx.term()
        if self.endpoint.startswith("ipc://"):
            Path(self.endpoint.removeprefix("ipc://")).unlink(missing_ok=True)

    def _on_message(self, parts: list[bytes]) -> None:
        routing_id = parts[0]
        peer = self._peers.get(routing_id)
        if peer is None:
            peer = self._peers[routing_id] = Peer(routing_id, self)
            self._forget_idle_peers()
        peer.last_seen = time.monotonic()
        if len(parts) != 2:
            self.send(peer, encode_error(None, RpcError(
                ErrorCode.INVALID_REQUEST, "send each JSON-RPC message as exactly one ZeroMQ frame")))
            return
        def respond(response: bytes | None, after: list[Lazy]) -> None:
            if response is not None:
                self.send(peer, response)
            for frames in after:
                self.send_lazily(peer, frames)

        self._dispatcher.handle(parts[1], peer, respond)

    # --- sending ------------------------------------------------------------------------

    def send(self, peer: Peer, frame: bytes) -> None:
        self._send(peer, frame, frame)
        self._wake_reader_if_pending()

    def broadcast(self, subs: list[Peer], frames: list[bytes]) -> None:
        """One publish to many peers: each frame becomes one ZeroMQ message, whose
        bytes every peer's send shares (``zmq_msg_copy`` counts a reference, it does
        not copy), and the reader's edge is checked once, after all the sends."""
        shared = [zmq.Frame(frame) for frame in frames]
        for peer in subs:
            for frame, message in zip(frames, shared):
                self._send(peer, frame, message)
        self._wake_reader_if_pending()

    def _send(self, peer: Peer, frame: bytes, message: bytes | zmq.Frame) -> None:
        """Send ``frame`` (as ``message``, the same bytes) or queue it in the outbox."""
        if peer.routing_id not in self._peers:
            return
        if peer.outbox:
            self._enqueue(peer, frame)
            return
        try:
            # two sends, not send_multipart: a quarter less Python per client and frame;
            # ROUTER refuses (Again, EHOSTUNREACH) at the identity part, before the body
            self._sock.send(peer.routing_id, zmq.SNDMORE | zmq.NOBLOCK)
            self._sock.send(message, zmq.NOBLOCK)
            peer.piped_frame(len(frame))
        except zmq.Again:
            self._enqueue(peer, frame)
        except zmq.ZMQError as exc:
            if exc.errno != errno.EHOSTUNREACH:
                raise
            self._forget(peer)

    def send_lazily(self, peer: Peer, frames: Lazy) -> None:
        """Send the frames of ``frames`` in order, pulling each only when the peer's
        connection took the one before: frames not pulled yet (a replay still in the
        store) are not queued bytes, so a long replay to a slow reader pauses rather
        than drops it. Frames sent to the peer later wait behind the rest."""
        if peer.routing_id not in self._peers:
            return
        peer.outbox.append(frames)
        self._backlogged.add(peer.routing_id)
        if len(peer.outbox) == 1:
            self._flush(peer)
        self._flush_wakeup.set()

    def _wake_reader_if_pending(self) -> None:
        """A send may have consumed the edge that announced an incoming message."""
        if self._sock.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            self._wake()

    def _enqueue(self, peer: Peer, frame: bytes) -> None:
        peer.outbox.append(frame)
        peer.outbox_bytes += len(frame)
        self._backlogged.add(peer.routing_id)
        self._flush_wakeup.set()
        if peer.queued_bytes > self._queue_limit:
            self._drop(peer)

    def _drop(self, peer: Peer) -> None:
        sessions = self._hub.detach_everywhere(peer)
        log.warning("client %s fell %d bytes behind (%d in its outbox, up to %d in ZeroMQ's pipe); "
                    "detached from %d session(s)", peer.key.hex(), peer.queued_bytes, peer.outbox_bytes,
                    peer.piped_bytes, len(sessions))
        if peer.notice is None:
            peer.dropped = []
        peer.dropped = sorted(set(peer.dropped) | set(sessions))
        peer.drops += 1
        peer.outbox.clear()
        notice = ClientDropped(session_ids=peer.dropped, reason=(
            "your outgoing queue passed its limit; reattach with since_seq set to the last seq "
            "you received to resume"))
        peer.notice = encode_notification("client/dropped", notice)
        peer.outbox.append(peer.notice)
        peer.outbox_bytes = len(peer.notice)

    def _forget(self, peer: Peer) -> None:
        self._hub.detach_everywhere(peer)
        self._peers.pop(peer.routing_id, None)
        self._backlogged.discard(peer.routing_id)

    def _forget_idle_peers(self) -> None:
        """Clients that left without a word and hold nothing are forgotten after a while."""
        cutoff = time.monotonic() - IDLE_PEER_S
        for key, peer in list(self._peers.items()):
            if peer.last_seen < cutoff and not peer.outbox and not self._hub.sessions_of(peer):
                del self._peers[key]

    async def _flush_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self._flush_wakeup.wait()
            self._flush_wakeup.clear()
            while self._backlogged:
                progress = False
                for key in list(self._backlogged):
                    peer = self._peers.get(key)
                    before = (peer.outbox_bytes, peer.sent) if peer is not None else None
                    if peer is None or self._flush(peer):
                        self._backlogged.discard(key)
                        progress = True
                    elif (peer.outbox_bytes, peer.sent) != before:
                        progress = True
                if not self._backlogged:
                    break
                if progress:
                    await asyncio.sleep(0)  # others' turn, then go on: clients take frames
                    continue
                # Nothing was taken: wait until ZeroMQ says a pipe drained (the socket's
                # fd wakes ``_wake``), or a little while at most.
                self._flush_wakeup.clear()
                try:
                    await asyncio.wait_for(self._flush_wakeup.wait(), FLUSH_INTERVAL_S)
                except asyncio.TimeoutError:
                    pass

    def _flush(self, peer: Peer) -> bool:
        """Send what the peer's pipe takes; True when its outbox is empty. A send may
        consume the reader's edge, so ``EVENTS`` is checked once after the burst."""
        try:
            return self._send_outbox(peer)
        finally:
            self._wake_reader_if_pending()

    def _send_outbox(self, peer: Peer) -> bool:
        pulled = 0
        while peer.outbox:
            head = peer.outbox[0]
            if not isinstance(head, bytes):  # a lazy source: its next frame becomes the head
                if pulled == PULLS_PER_PASS:
                    return False  # the flusher goes on after the loop's other work
                pulled += 1
                frame = head.next_frame(self._batch_bytes)
                if frame is None:
                    peer.outbox.popleft()
                    continue
                peer.outbox.appendleft(frame)
                peer.outbox_bytes += len(frame)
                continue
            frame = head
            try:
                self._sock.send_multipart((peer.routing_id, frame), flags=zmq.NOBLOCK)
            except zmq.Again:
                # A paced replay waits here without growing: only frames pushed to the
                # client (responses, live events) can pass the limit (``_enqueue``).
                return False
            except zmq.ZMQError as exc:
                if exc.errno != errno.EHOSTUNREACH:
                    raise
                self._forget(peer)
                return True
            peer.outbox.popleft()
            peer.outbox_bytes -= len(frame)
            peer.piped_frame(len(frame))
            if frame is peer.notice:
                peer.notice = None
                peer.dropped = []
        return True
