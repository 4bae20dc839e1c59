"""The async client: one DEALER socket to the daemon, typed calls, live events.

``AsyncClient`` finds the daemon (starting it when absent), checks the protocol
version, and exposes every method of the protocol's table as a typed coroutine.
Notifications of attached sessions arrive, decoded, on :meth:`events`.

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
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import msgspec
import zmq
import zmq.asyncio
from zmq.utils.monitor import recv_monitor_message

from duologue.protocol import methods as m
from duologue.protocol.entities import CodeContextBlock, ContextSummary, Message, Session, TaskList, ThinkingDepth
from duologue.protocol.errors import RpcError
from duologue.protocol.jsonrpc import (
    Incoming,
    Response,
    decode_notification,
    decode_result,
    encode_request,
    parse_replies,
)
from duologue.protocol.paths import Paths, locate, with_runtime_pointer

from .launcher import (
    DaemonUnavailable,
    EmulatorMode,
    daemon_running,
    spawn_if_absent,
    start_daemon,
)


@dataclass(frozen=True)
class CurveKeys:
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


HELLO_TIMEOUT_S = 15.0
"""How long a daemon has to answer hello: one that just bound may still be finishing
its start (recovery, tightening an old home) on a loaded machine."""


def _expire(future: asyncio.Future[Any], method: str, timeout: float) -> None:
    if not future.done():
        future.set_exception(asyncio.TimeoutError(f"{method}: no answer within {timeout:g} s"))


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


class AsyncClient(ClientSettings):
    """The client library on asyncio: every method of the protocol, typed; the
    notifications of attached sessions through :meth:`events`."""

    def _init_state(self) -> None:
        self._ctx = zmq.asyncio.Context.instance()
        self._sock: zmq.asyncio.Socket | None = None
        self._raw: zmq.Socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, tuple[str, asyncio.Future[Any]]] = {}
        self._events: asyncio.Queue[Any] = asyncio.Queue()
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
                    self._events.put_nowait(Disconnected())
                elif event["event"] == zmq.EVENT_CONNECTED and down:
                    down = False
                    self._events.put_nowait(Reconnected())
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
        for item in parse_replies(frame):
            if isinstance(item, Incoming):
                self._events.put_nowait(read_notification(item))
            else:
                self._resolve(item)

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

    async def events(self) -> AsyncIterator[Any]:
        """Notifications of attached sessions, in the order the daemon sent them."""
        while True:
            yield await self._events.get()

    async def next_event(self, timeout: float | None = None) -> Any:
        return await asyncio.wait_for(self._events.get(), timeout)

    # --- the methods, typed -------------------------------------------------------------

    async def hello(self) -> m.HelloResult:
        """Greet the daemon on this connection (again after a reconnect: it may be a
        new daemon, whose ``instance_id`` says so); kept as ``hello_result``."""
        self.hello_result = await self.call("daemon/hello", m.HelloParams(
            protocol_version=m.PROTOCOL_VERSION, client=self.client_name))
        return self.hello_result

    async def status(self) -> m.StatusResult:
        return await self.call("daemon/status")

    async def shutdown(self) -> None:
        await self.call("daemon/shutdown")

    async def list_models(self) -> m.ModelsResult:
        return await self.call("models/list")

    async def create_session(self, *, project_id: str | None = None, title: str | None = None,
                             model: str | None = None, system_prompt: str | None = None,
                             metadata: dict[str, str] | None = None) -> Session:
        params = m.CreateParams(project_id=project_id, title=title, model=model,
                                system_prompt=system_prompt, metadata=metadata or {})
        return (await self.call("session/create", params)).session

    async def list_sessions(self, *, project_id: str | None = None, limit: int = 50,
                            before: str | None = None) -> m.ListResult:
        return await self.call("session/list", m.ListParams(project_id=project_id, limit=limit, before=before))

    async def get_session(self, session_id: str, *, since_seq: int = 0,
                          limit: int | None = None) -> m.GetResult:
        return await self.call("session/get", m.GetParams(session_id=session_id, since_seq=since_seq, limit=limit))

    async def rename_session(self, session_id: str, title: str) -> Session:
        return (await self.call("session/rename", m.RenameParams(session_id=session_id, title=title))).session

    async def delete_session(self, session_id: str) -> None:
        await self.call("session/delete", m.SessionRef(session_id=session_id))

    async def switch_model(self, session_id: str, model: str, reason: str | None = None) -> m.SwitchResult:
        return await self.call("session/switch_model",
                               m.SwitchParams(session_id=session_id, model=model, reason=reason))

    async def attach(self, session_id: str, since_seq: int | None = None) -> m.AttachResult:
        return await self.call("session/attach", m.AttachParams(session_id=session_id, since_seq=since_seq))

    async def detach(self, session_id: str) -> None:
        await self.call("session/detach", m.SessionRef(session_id=session_id))

    async def send(self, session_id: str, text: str, *, context: list[CodeContextBlock] | None = None,
                   model: str | None = None, pin: bool = False,
                   thinking: ThinkingDepth | None = None) -> m.SendResult:
        return await self.call("session/send", m.SendParams(
            session_id=session_id, text=text, context=context or [], model=model, pin=pin, thinking=thinking))

    async def cancel(self, session_id: str) -> m.CancelResult:
        return await self.call("session/cancel", m.SessionRef(session_id=session_id))

    async def pin(self, session_id: str, message_id: str, pinned: bool = True) -> Message:
        return (await self.call("session/pin", m.PinParams(
            session_id=session_id, message_id=message_id, pinned=pinned))).message

    async def summaries(self, session_id: str) -> list[ContextSummary]:
        return (await self.call("session/summaries", m.SessionRef(session_id=session_id))).summaries

    async def metrics(self, model: str | None = None) -> m.MetricsResult:
        return await self.call("metrics/get", m.MetricsParams(model=model))

    async def update_tasks(self, session_id: str, tasks: list[m.TaskInput],
                           client: str | None = None) -> TaskList:
        return (await self.call("tasks/update", m.TasksUpdateParams(
            session_id=session_id, tasks=tasks, client=client or self.client_name))).tasks

    async def list_tasks(self, session_id: str) -> TaskList:
        return (await self.call("tasks/list", m.SessionRef(session_id=session_id))).tasks

    async def import_sessions(self, sessions: list[m.ImportSession], *, dry_run: bool = False,
                              batch_id: str | None = None, more: bool = False) -> m.ImportResult:
        """One request of an import; pass the first result's ``batch_id`` to continue
        the same batch (``clients.importers.requests`` splits a large import), and
        ``more`` on every request but the last, so the batch lands whole or not at all."""
        return await self.call("import/run", m.ImportParams(sessions=sessions, dry_run=dry_run,
                                                            batch_id=batch_id, more=more))

    async def undo_import(self, batch_id: str) -> m.UndoResult:
        return await self.call("import/undo", m.UndoParams(batch_id=batch_id))

    async def list_imports(self) -> list[m.ImportBatch]:
        return (await self.call("import/list")).batches

    async def export_session(self, session_id: str) -> m.ExportDocument:
        return await self.call("session/export", m.SessionRef(session_id=session_id))


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
