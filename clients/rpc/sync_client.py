"""The blocking client, for scripts and the CLI: one DEALER socket read only by the
calling thread, and no event loop.

A call sends its request and sleeps in the socket's ``recv`` until the answer comes,
as a plain pyzmq client does: it never polls in a loop, so a call costs no CPU while
it waits, and on a busy machine it leaves the core to the daemon that is answering
it. (``socket.poll`` or a ``zmq.Poller`` over the socket and its monitor, then a
non-blocking ``recv``, wait the same way in two trips into libzmq, and measured more
CPU per call than the one blocking ``recv``.) Notifications that arrive while a call
waits are decoded and kept, in order, for :meth:`Client.next_event`.

The receive sleeps in slices of :data:`WATCH_INTERVAL_S`; between them the socket
monitor says whether the connection dropped: a call waiting for its answer then raises
:class:`ConnectionLost` within a slice instead of waiting out its timeout, and a
:class:`Disconnected` event is queued (and :class:`Reconnected` when it is back), as
in the async client.

Every typed method of :class:`~.calls.Calls` (the async client's) is offered with the
same signature and result: its own coroutine is run against a stand-in whose ``call``
answers without suspending (:attr:`Client.coroutines`), so the parameters are built in
one place for both clients. Nothing here imports asyncio.

A ``Client`` belongs to the thread that uses it; it is not safe to share.
"""

from __future__ import annotations

import itertools
import math
import struct
import time
from collections import deque
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, Concatenate, ParamSpec, TypeVar

import msgspec
import zmq

from duologue.protocol import methods as m
from duologue.protocol.errors import RpcError
from duologue.protocol.jsonrpc import (
    Incoming,
    Response,
    decode_result,
    encode_request,
    parse_replies,
)

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

WATCH_INTERVAL_S = 0.1
"""How long a receive blocks before the monitor is looked at: the longest a call
waits on a daemon that has gone away."""

_POLLIN = int(zmq.POLLIN)
"""A plain int, first in ``&``: ``int & flag`` takes int's own path, where pyzmq's
enum flag first would run enum's Python ``__and__`` on every call."""

P = ParamSpec("P")
T = TypeVar("T")


def run_in_one_step(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that awaits nothing but a blocking client's
    :attr:`Client.coroutines` to its end, in one step; RuntimeError if it awaits
    anything else (that needs an event loop: use the async client)."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    coro.close()
    raise RuntimeError(f"{coro.__qualname__} waited on something other than a blocking client's call()")


def _blocking(method: Callable[Concatenate[Any, P], Coroutine[Any, Any, T]]) -> Callable[Concatenate[Client, P], T]:
    """``method`` of Calls as a blocking method of Client, its coroutine run to
    completion in one step against the client's :attr:`Client.coroutines`."""
    def run(self: Client, *args: P.args, **kwargs: P.kwargs) -> T:
        return run_in_one_step(method(self.coroutines, *args, **kwargs))

    run.__name__ = method.__name__
    run.__qualname__ = f"Client.{method.__name__}"
    run.__doc__ = method.__doc__
    run.__wrapped__ = method  # type: ignore[attr-defined]  # help() shows the real parameters
    return run


class Client(ClientSettings):
    """The blocking twin of :class:`~.client.AsyncClient`: same constructor, same
    methods, and it connects (starting the daemon when ``autostart`` allows) as it is
    made.

    ``coroutines`` is this client seen as :class:`~.calls.Calls`: code written once
    against the coroutine interface (the CLI's commands) runs on it through
    :func:`run_in_one_step`, without an event loop."""

    def _init_state(self) -> None:
        """The socket state, then the connection: a Client is connected once made."""
        self._sock: zmq.Socket | None = None
        self._monitor: zmq.Socket | None = None
        self._recv_timeout_ms = -1
        self._down = False
        """The connection dropped and has not come back yet."""
        self._ids = itertools.count(1)
        self._events: deque[Any] = deque()
        self.coroutines: Calls = _InOneStep(self)
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
        while monitor is not None and _POLLIN & monitor.getsockopt(zmq.EVENTS):
            event = _monitor_event(monitor.recv_multipart(zmq.NOBLOCK))
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

    # --- the methods, typed: Calls' own, run to completion ----------------------------------

    status = _blocking(Calls.status)
    shutdown = _blocking(Calls.shutdown)
    sync_status = _blocking(Calls.sync_status)
    list_models = _blocking(Calls.list_models)
    create_session = _blocking(Calls.create_session)
    list_sessions = _blocking(Calls.list_sessions)
    get_session = _blocking(Calls.get_session)
    latest = _blocking(Calls.latest)
    whole_session = _blocking(Calls.whole_session)
    rename_session = _blocking(Calls.rename_session)
    delete_session = _blocking(Calls.delete_session)
    switch_model = _blocking(Calls.switch_model)
    attach = _blocking(Calls.attach)
    detach = _blocking(Calls.detach)
    send = _blocking(Calls.send)
    cancel = _blocking(Calls.cancel)
    pin = _blocking(Calls.pin)
    summaries = _blocking(Calls.summaries)
    metrics = _blocking(Calls.metrics)
    update_tasks = _blocking(Calls.update_tasks)
    list_tasks = _blocking(Calls.list_tasks)
    import_sessions = _blocking(Calls.import_sessions)
    undo_import = _blocking(Calls.undo_import)
    list_imports = _blocking(Calls.list_imports)
    export_session = _blocking(Calls.export_session)


class _InOneStep(Calls):
    """A blocking client behind the coroutine interface of :class:`~.calls.Calls`:
    ``call`` returns without suspending, so every coroutine that awaits only these
    methods (the typed ones, the CLI's commands) finishes on its first step."""

    def __init__(self, client: Client):
        self._client = client

    @property
    def client_name(self) -> str:  # type: ignore[override]
        return self._client.client_name

    async def call(self, method: str, params: Any = None) -> Any:
        return self._client.call(method, params)


def _monitor_event(frames: list[bytes]) -> int:
    """The event number of a socket monitor message: its first frame starts with it,
    16 bits in native order (zmq_socket_monitor(3)). Read here rather than with
    ``zmq.utils.monitor``, which imports zmq.asyncio and so asyncio."""
    return struct.unpack_from("=H", frames[0])[0]


def _result(method: str, response: Response) -> Any:
    if response.error is not None:
        raise response.error
    try:
        return decode_result(method, response.result)
    except msgspec.DecodeError as exc:
        raise RpcError(-32603, f"undecodable {method} result: {exc}") from None
