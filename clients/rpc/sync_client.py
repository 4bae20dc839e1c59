"""The blocking client, for scripts: one DEALER socket read only by the calling thread.

A call sends its request and waits on the socket itself, polling it briefly before it
sleeps in ``recv``; there is no loop thread to hop to, and a daemon/status round trip
costs about what a bare pyzmq DEALER's does. Notifications that arrive while a call
waits are decoded and kept, in order, for :meth:`Client.next_event`.

The receive sleeps in slices of :data:`WATCH_INTERVAL_S`; between them the socket
monitor says whether the connection dropped: a call waiting for its answer then raises
:class:`ConnectionLost` within a slice instead of waiting out its timeout, and a
:class:`Disconnected` event is queued (and :class:`Reconnected` when it is back), as
in the async client. (zmq.Poller over the socket and the monitor would notice a drop
at once, but adds some 10 µs of CPU to every receive.)

Every typed method of :class:`AsyncClient` is offered with the same signature and
result: its own coroutine is run against a stand-in whose ``call`` answers without
suspending, so the parameters are built in one place for both clients.

A ``Client`` belongs to the thread that uses it; it is not safe to share.
"""

from __future__ import annotations

import itertools
import math
import os
import time
from collections import deque
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, Concatenate, ParamSpec, TypeVar

import msgspec
import zmq
from zmq.utils.monitor import recv_monitor_message

from duologue.protocol import methods as m
from duologue.protocol.errors import RpcError
from duologue.protocol.jsonrpc import (
    Incoming,
    Response,
    decode_result,
    encode_request,
    parse_replies,
)

from .client import (
    HELLO_TIMEOUT_S,
    AsyncClient,
    ClientSettings,
    ConnectionLost,
    Disconnected,
    Reconnected,
    open_dealer,
    read_notification,
)
from .launcher import DaemonUnavailable, start_daemon

WATCH_INTERVAL_S = 0.1
"""How long a receive blocks before the monitor is looked at: the longest a call
waits on a daemon that has gone away."""

SPIN_S = 100e-6 if (os.cpu_count() or 1) > 1 else 0.0
"""How long a call polls for its answer before it sleeps in ``recv``. A quick answer
comes sooner, and a thread woken from sleep takes tens of microseconds more to see it
than one that was polling (a third of a daemon/status round trip, see
bench/rpc_roundtrip.py). A slower answer costs this much CPU; on one core the spin
would only delay the daemon, so there is none."""

_POLLIN = int(zmq.POLLIN)

P = ParamSpec("P")
T = TypeVar("T")


def _blocking(method: Callable[Concatenate[Any, P], Coroutine[Any, Any, T]]) -> Callable[Concatenate[Client, P], T]:
    """``method`` of AsyncClient as a blocking method of Client, its coroutine run
    to completion in one step against the client's :class:`_CallsFor`."""
    def run(self: Client, *args: P.args, **kwargs: P.kwargs) -> T:
        coro = method(self._calls, *args, **kwargs)
        try:
            coro.send(None)
        except StopIteration as done:
            return done.value
        coro.close()
        raise RuntimeError(f"AsyncClient.{method.__name__} waited on something other than call()")

    run.__name__ = method.__name__
    run.__qualname__ = f"Client.{method.__name__}"
    run.__doc__ = method.__doc__
    run.__wrapped__ = method  # type: ignore[attr-defined]  # help() shows the real parameters
    return run


class Client(ClientSettings):
    """The blocking twin of :class:`AsyncClient`: same constructor, same methods, and
    it connects (starting the daemon when ``autostart`` allows) as it is made."""

    def _init_state(self) -> None:
        """The socket state, then the connection: a Client is connected once made."""
        self._sock: zmq.Socket | None = None
        self._monitor: zmq.Socket | None = None
        self._recv_timeout_ms = -1
        self._down = False
        """The connection dropped and has not come back yet."""
        self._ids = itertools.count(1)
        self._events: deque[Any] = deque()
        self._calls = _CallsFor(self)
        try:
            self.connect()
        except BaseException:
            self.close()
            raise

    # --- connection ---------------------------------------------------------------------

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def connect(self) -> None:
        """Find the daemon (start it if allowed) and say hello; a no-op when connected."""
        if self._sock is not None:
            return
        proc = self._spawn_if_absent()
        if proc is not None:
            self._settle(start_daemon(proc, self.paths))
        sock = open_dealer(zmq.Context.instance(), self.endpoint, self.curve)
        self._sock = sock
        self._recv_timeout_ms = -1
        self._monitor = sock.get_monitor_socket(zmq.EVENT_CONNECTED | zmq.EVENT_DISCONNECTED)
        hello = m.HelloParams(protocol_version=m.PROTOCOL_VERSION, client=self.client_name)
        try:
            self.hello_result = self._call("daemon/hello", hello, min(self.timeout, HELLO_TIMEOUT_S))
        except (TimeoutError, ConnectionLost):
            self.close()
            raise DaemonUnavailable(
                f"the daemon at {self.endpoint} does not answer; see {self.paths.log_file}") from None

    def close(self) -> None:
        """Close the socket; safe to call twice."""
        # The monitor is stopped before its PAIR socket is closed: libzmq's I/O thread
        # would otherwise block for ever sending a disconnect event nobody reads, and
        # disable_monitor would wait on it.
        if self._sock is not None:
            self._sock.disable_monitor()
        for sock in (self._monitor, self._sock):
            if sock is not None:
                sock.close(linger=0)
        self._monitor = None
        self._sock = None

    # --- calls --------------------------------------------------------------------------

    def call(self, method: str, params: Any = None) -> Any:
        """Send one request and wait for its typed result (RpcError on error,
        TimeoutError after ``timeout`` seconds, ConnectionLost when the daemon goes)."""
        return self._call(method, params, self.timeout)

    def hello(self) -> m.HelloResult:
        """Greet the daemon again, as :meth:`AsyncClient.hello` does (``hello_result``
        then names the daemon instance now connected)."""
        self.hello_result = self.call("daemon/hello", m.HelloParams(
            protocol_version=m.PROTOCOL_VERSION, client=self.client_name))
        return self.hello_result

    def send_raw(self, frame: bytes) -> None:
        """Send bytes as they are (tests and tools that probe the daemon)."""
        self._send(frame, time.monotonic() + self.timeout, "send_raw")

    def next_event(self, timeout: float | None = None) -> Any:
        """The next notification of an attached session (or :class:`Disconnected`),
        waiting up to ``timeout`` seconds (for ever when None); TimeoutError after."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._events:
            self._read(deadline)
            if not self._events and deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"no event within {timeout:g} s")
        return self._events.popleft()

    def events(self) -> Iterator[Any]:
        """Notifications of attached sessions, in the order the daemon sent them."""
        while True:
            yield self.next_event()

    def _call(self, method: str, params: Any, timeout: float) -> Any:
        self._watch()  # a drop noticed before this request is not this request's loss
        req_id = next(self._ids)
        deadline = time.monotonic() + timeout
        self._send(encode_request(req_id, method, params if params is not None else {}), deadline, method)
        self._spin()
        while True:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{method}: no answer within {timeout:g} s")
            responses, dropped = self._read(deadline)
            for response in responses:
                if response.id == req_id:
                    return _result(method, response)
            if dropped:
                raise ConnectionLost("the connection to the daemon was lost")

    def _send(self, frame: bytes, deadline: float, method: str) -> None:
        """Send without blocking; while ZeroMQ's queue to the daemon is full (or there is
        no connection yet), wait for room until ``deadline``."""
        sock = self._connected()
        while True:
            try:
                sock.send(frame, zmq.NOBLOCK)
                return
            except zmq.Again:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{method}: could not send within the timeout") from None
                sock.poll(math.ceil(remaining * 1000), zmq.POLLOUT)

    def _spin(self) -> None:
        """Poll the socket, without sleeping, until a frame is there or SPIN_S passed."""
        sock = self._connected()
        until = time.perf_counter() + SPIN_S
        while not sock.getsockopt(zmq.EVENTS) & _POLLIN and time.perf_counter() < until:
            pass

    def _read(self, deadline: float | None) -> tuple[list[Response], bool]:
        """Wait until ``deadline``, one slice at most, for a frame; queue its
        notifications and return its responses, and whether the connection dropped."""
        sock = self._connected()
        wait_s = WATCH_INTERVAL_S if deadline is None else min(WATCH_INTERVAL_S, deadline - time.monotonic())
        wait_ms = max(0, math.ceil(wait_s * 1000))
        if wait_ms != self._recv_timeout_ms:
            sock.setsockopt(zmq.RCVTIMEO, wait_ms)
            self._recv_timeout_ms = wait_ms
        try:
            frame = sock.recv()
        except zmq.Again:
            return [], self._watch()
        responses: list[Response] = []
        for item in parse_replies(frame):
            if isinstance(item, Incoming):
                self._events.append(read_notification(item))
            else:
                responses.append(item)
        return responses, False

    def _watch(self) -> bool:
        """Take the monitor's pending events; a drop queues :class:`Disconnected` and
        the connection coming back :class:`Reconnected`, as in the async client.
        True when the connection dropped."""
        monitor = self._monitor
        dropped = False
        while monitor is not None and monitor.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            event = recv_monitor_message(monitor, zmq.NOBLOCK)["event"]
            if event == zmq.EVENT_DISCONNECTED:
                self._events.append(Disconnected())
                self._down = dropped = True
            elif event == zmq.EVENT_CONNECTED and self._down:
                self._events.append(Reconnected())
                self._down = False
        return dropped

    def _connected(self) -> zmq.Socket:
        if self._sock is None:
            raise DaemonUnavailable("not connected; call connect() first")
        return self._sock

    # --- the methods, typed: AsyncClient's own, run to completion ---------------------------

    status = _blocking(AsyncClient.status)
    shutdown = _blocking(AsyncClient.shutdown)
    list_models = _blocking(AsyncClient.list_models)
    create_session = _blocking(AsyncClient.create_session)
    list_sessions = _blocking(AsyncClient.list_sessions)
    get_session = _blocking(AsyncClient.get_session)
    rename_session = _blocking(AsyncClient.rename_session)
    delete_session = _blocking(AsyncClient.delete_session)
    switch_model = _blocking(AsyncClient.switch_model)
    attach = _blocking(AsyncClient.attach)
    detach = _blocking(AsyncClient.detach)
    send = _blocking(AsyncClient.send)
    cancel = _blocking(AsyncClient.cancel)
    pin = _blocking(AsyncClient.pin)
    summaries = _blocking(AsyncClient.summaries)
    metrics = _blocking(AsyncClient.metrics)
    update_tasks = _blocking(AsyncClient.update_tasks)
    list_tasks = _blocking(AsyncClient.list_tasks)
    import_sessions = _blocking(AsyncClient.import_sessions)
    undo_import = _blocking(AsyncClient.undo_import)
    list_imports = _blocking(AsyncClient.list_imports)
    export_session = _blocking(AsyncClient.export_session)


class _CallsFor:
    """What AsyncClient's typed methods use of ``self``, answered by a blocking client:
    ``call`` returns without suspending, so their coroutines finish on the first step."""

    def __init__(self, client: Client):
        self._client = client

    @property
    def client_name(self) -> str:
        return self._client.client_name

    async def call(self, method: str, params: Any = None) -> Any:
        return self._client.call(method, params)


def _result(method: str, response: Response) -> Any:
    if response.error is not None:
        raise response.error
    try:
        return decode_result(method, response.result)
    except msgspec.DecodeError as exc:
        raise RpcError(-32603, f"undecodable {method} result: {exc}") from None
