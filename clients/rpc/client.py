"""The async client: one DEALER socket to the daemon, typed calls, live events.

``AsyncClient`` finds the daemon (starting it when absent), checks the protocol
version, and offers every method of the protocol's table as a typed coroutine (its
:class:`~.calls.Calls`, answered here on the event loop). Notifications of attached
sessions arrive, decoded, on :meth:`events`.

A socket monitor tells when the connection drops and comes back (a daemon restart, or
ZeroMQ closing a connection that sent an oversized frame): requests in flight then
fail with :class:`ConnectionLost` instead of hanging, and :class:`Disconnected` and
:class:`Reconnected` are put on the event stream. The monitor only signals: whoever
reads the stream reattaches (``SessionEvents`` does it by the protocol's rules), so
no request is ever awaited inside the monitor.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import zmq
import zmq.asyncio
from zmq.utils.monitor import recv_monitor_message

from duologue.protocol import methods as m
from duologue.protocol.errors import RpcError
from duologue.protocol.jsonrpc import Incoming, Response, decode_result, encode_request, parse_replies

from .calls import Calls
from .connection import (
    HELLO_TIMEOUT_S,
    ClientSettings,
    ConnectionLost,
    Disconnected,
    Reconnected,
    open_dealer,
    read_notification,
)
from .launcher import DaemonUnavailable, start_daemon


def _expire(future: asyncio.Future[Any], method: str, timeout: float) -> None:
    if not future.done():
        future.set_exception(asyncio.TimeoutError(f"{method}: no answer within {timeout:g} s"))


class AsyncClient(ClientSettings, Calls):
    """The client library on asyncio: every method of the protocol, typed; the
    notifications of attached sessions through :meth:`events`."""

    def _init_state(self) -> None:
        self._ctx = zmq.asyncio.Context.instance()
        self._sock: zmq.asyncio.Socket | None = None
        self._raw: zmq.Socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, tuple[str, asyncio.Future[Any]]] = {}
        self._inbox: deque[Any] = deque()
        """What arrived and nobody took yet, oldest first: notifications still raw
        (:class:`Incoming`, typed as they are taken: a replay's thousands of messages
        decoded at once would be live objects for the collector to go over again and
        again) and the connection markers. Readers take from it while it holds
        something and wait (:meth:`wait_event`) only when it is empty, so a replay of
        thousands of events costs a wait per burst, not per event."""
        self._arrived: asyncio.Future[None] | None = None
        """Set when something is put in an empty inbox; the readers waiting share it."""
        self._tasks: list[asyncio.Task[None]] = []

    # --- connection ---------------------------------------------------------------------

    async def __aenter__(self) -> AsyncClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def connect(self) -> None:
        proc = self._spawn_if_absent()
        if proc is not None:
            self._settle(await asyncio.to_thread(start_daemon, proc, self.paths))
        sock = open_dealer(self._ctx, self.endpoint, self.curve)
        self._sock = sock
        self._start_reading(sock)
        monitor = sock.get_monitor_socket(zmq.EVENT_CONNECTED | zmq.EVENT_DISCONNECTED)
        self._tasks = [asyncio.create_task(self._watch(monitor))]
        try:
            await asyncio.wait_for(self.hello(), HELLO_TIMEOUT_S)
        except (asyncio.TimeoutError, ConnectionLost):
            await self.close()
            raise DaemonUnavailable(
                f"the daemon at {self.endpoint} does not answer; see {self.paths.log_file}") from None

    async def close(self) -> None:
        # The monitor is stopped before its PAIR socket is closed (by the watcher's
        # cancellation): libzmq's I/O thread would otherwise block for ever sending a
        # disconnect event nobody reads, and disable_monitor would wait on it.
        if self._sock is not None:
            self._sock.disable_monitor()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        self._fail_pending(ConnectionLost("the client was closed"))
        self._stop_reading()
        if self._sock is not None:
            self._sock.close(linger=0)
            self._sock = None

    async def _watch(self, monitor: zmq.asyncio.Socket) -> None:
        """Turn the monitor's events into markers on the event stream, and nothing more.

        A connection that comes up after a drop is a reconnect. The first connection's
        own event is no guide: the socket connects before the monitor is attached, so
        that event is often never seen."""
        down = False
        try:
            while True:
                event = await recv_monitor_message(monitor)
                if event["event"] == zmq.EVENT_DISCONNECTED:
                    down = True
                    self._fail_pending(ConnectionLost("the connection to the daemon was lost"))
                    self._put(Disconnected())
                elif event["event"] == zmq.EVENT_CONNECTED and down:
                    down = False
                    self._put(Reconnected())
        finally:
            monitor.close(linger=0)

    def _fail_pending(self, exc: Exception) -> None:
        for _, future in self._pending.values():
            if not future.done():
                future.set_exception(exc)
        self._pending.clear()

    # Frames are read and written through a blocking shadow of the socket with NOBLOCK,
    # driven by the loop's reader on ZeroMQ's notification fd: a round trip then costs
    # no future or task switch of zmq.asyncio's, and a replay of thousands of events
    # one wake-up. ZeroMQ's fd is edge-triggered and a send may consume its edge, so
    # every send is followed by a drain.

    def _start_reading(self, sock: zmq.asyncio.Socket) -> None:
        self._raw = zmq.Socket.shadow(sock.underlying)
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._raw.getsockopt(zmq.FD), self._drain)
        self._loop.call_soon(self._drain)

    def _stop_reading(self) -> None:
        if self._raw is not None and self._loop is not None:
            self._loop.remove_reader(self._raw.getsockopt(zmq.FD))
        self._raw = None

    def _drain(self) -> None:
        raw = self._raw
        while raw is not None and raw.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            self._dispatch(raw.recv(zmq.NOBLOCK))
            raw = self._raw

    async def _send(self, frame: bytes) -> None:
        """Send without waiting; when ZeroMQ's queue to the daemon is full (it is not
        reading), retry until it takes the frame."""
        while True:
            if self._raw is None:
                raise DaemonUnavailable("not connected; call connect() first")
            try:
                self._raw.send(frame, zmq.NOBLOCK)
                break
            except zmq.Again:
                await asyncio.sleep(0.005)
        self._loop.call_soon(self._drain)

    def _dispatch(self, frame: bytes) -> None:
        inbox = self._inbox
        for item in parse_replies(frame):
            if isinstance(item, Incoming):
                inbox.append(item)
            else:
                self._resolve(item)
        self._put_done()

    def _resolve(self, item: Response) -> None:
        entry = self._pending.pop(item.id, None) if isinstance(item.id, int) else None
        if entry is None:
            return
        method, future = entry
        if future.done():
            return
        if item.error is not None:
            future.set_exception(item.error)
        else:
            try:
                future.set_result(decode_result(method, item.result))
            except msgspec.DecodeError as exc:
                future.set_exception(RpcError(-32603, f"undecodable {method} result: {exc}"))

    # --- calls --------------------------------------------------------------------------

    async def call(self, method: str, params: Any = None) -> Any:
        """Send one request and wait for its typed result (RpcError on error)."""
        if self._sock is None:
            raise DaemonUnavailable("not connected; call connect() first")
        req_id = next(self._ids)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending[req_id] = (method, future)
        timer = loop.call_later(self.timeout, _expire, future, method, self.timeout)
        try:
            await self._send(encode_request(req_id, method, params if params is not None else {}))
            return await future
        finally:
            timer.cancel()
            self._pending.pop(req_id, None)

    async def send_raw(self, frame: bytes) -> None:
        """Send bytes as they are (tests and tools that probe the daemon)."""
        await self._send(frame)

    def _put(self, item: Any) -> None:
        self._inbox.append(item)
        self._put_done()

    def _put_done(self) -> None:
        """Wake the readers waiting, if something was put (once per frame, not per event)."""
        arrived = self._arrived
        if self._inbox and arrived is not None and not arrived.done():
            arrived.set_result(None)

    def take_event(self) -> Any:
        """The oldest notification received and not taken yet (typed, or raw when
        this client cannot read it) or connection marker; None when there is none.
        Never waits: with :meth:`wait_event`, what a reader that takes events as
        fast as they come uses."""
        if not self._inbox:
            return None
        item = self._inbox.popleft()
        return read_notification(item) if type(item) is Incoming else item

    async def wait_event(self, timeout: float | None = None) -> None:
        """Return once something is there to take; TimeoutError after ``timeout`` s.
        Readers waiting together share one future, so each put wakes them all."""
        while not self._inbox:
            arrived = self._arrived
            if arrived is None or arrived.done():
                arrived = self._arrived = asyncio.get_running_loop().create_future()
            done, _ = await asyncio.wait((arrived,), timeout=timeout)
            if not done:
                raise asyncio.TimeoutError(f"no event within {timeout:g} s")

    async def events(self) -> AsyncIterator[Any]:
        """Notifications of attached sessions, in the order the daemon sent them."""
        while True:
            item = self.take_event()
            if item is None:
                await self.wait_event()
                continue
            yield item

    async def next_event(self, timeout: float | None = None) -> Any:
        await self.wait_event(timeout)
        return self.take_event()

    # --- hello (the other typed methods are Calls') ------------------------------------

    async def hello(self) -> m.HelloResult:
        """Greet the daemon on this connection (again after a reconnect: it may be a
        new daemon, whose ``instance_id`` says so); kept as ``hello_result``."""
        self.hello_result = await self.call("daemon/hello", m.HelloParams(
            protocol_version=m.PROTOCOL_VERSION, client=self.client_name))
        return self.hello_result
