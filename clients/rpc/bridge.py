"""A relaying client's link to the daemon (the language server's, the ACP agent's).

A :class:`Bridge` owns one :class:`~duologue.clients.rpc.client.AsyncClient`. It
forwards typed calls and hands every notification to a :class:`Listener`. The
sessions this editor attached, and the last stored ``seq`` delivered of each, are
kept by :class:`~.session_events.SessionEvents`, which applies the protocol's
sequence rules: a drop notice or a gap is caught up by reattaching, and stored events
already delivered are not delivered again. A notification the bridge cannot read is
relayed as it came; the editor, which may be newer, decides.

When the daemon goes away the bridge goes *offline*: new calls wait (they are not
failed), and calls that were in flight are retried once the daemon is back when
repeating them is harmless. When the connection comes back, every attached session
is reattached with ``since_seq`` before the bridge is *online* again; the replay
fills the gap, so the editor sees each event exactly once and only notices a pause.
If no daemon has come back after ``respawn_after_s`` and a call is waiting for one,
the bridge starts one, as every client that finds no daemon does (it does not
restart a daemon nobody needs).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

import msgspec

from duologue.protocol import methods as m
from duologue.protocol.errors import ErrorCode, RpcError
from duologue.protocol.jsonrpc import Incoming
from duologue.protocol.paths import Paths

from .calls import Calls
from .client import AsyncClient, ConnectionLost, Disconnected
from .launcher import DaemonUnavailable, EmulatorMode, spawn_if_absent, start_daemon
from .session_events import Resumed, SessionEvents, Unfollowed

log = logging.getLogger("duologue.bridge")

REPEATABLE = frozenset({
    "daemon/hello", "daemon/status", "models/list", "session/list", "session/get",
    "session/attach", "session/detach", "session/summaries", "metrics/get", "tasks/list",
})
"""Methods whose repetition changes nothing: retried when a restart cut them off."""

PROBE_TIMEOUT_S = 1.0
PROBE_PAUSE_S = 0.1


class Listener(Protocol):
    def deliver(self, method: str, event: Any) -> None:
        """A daemon notification, typed (or plain JSON for a method this client does
        not know), already deduplicated."""

    def connection(self, online: bool, detail: str) -> None:
        """The link to the daemon went down or came back."""

    def warn(self, text: str) -> None:
        """Something the user should see (a session lost while reattaching...)."""


def unavailable(detail: str) -> RpcError:
    return RpcError(ErrorCode.INTERNAL_ERROR, f"the duologue daemon is not reachable: {detail}",
                    {"reason": "daemon_unavailable"})


class Bridge(Calls):
    """The protocol's typed calls (:class:`Calls`) over a connection that outlives
    daemon restarts."""

    def __init__(self, paths: Paths, listener: Listener, *, emulator: EmulatorMode = False,
                 client_name: str = "lsp", call_timeout_s: float = 60.0, relay_unknown: bool = True,
                 offline_timeout_s: float = 30.0, respawn_after_s: float = 5.0):
        self.paths = paths
        self.listener = listener
        self.emulator = emulator
        self.client_name = client_name
        self.client = AsyncClient(paths, client_name=client_name, timeout=call_timeout_s,
                                  autostart=False)
        self.relay_unknown = relay_unknown
        self.offline_timeout_s = offline_timeout_s
        self.respawn_after_s = respawn_after_s
        self.events: SessionEvents
        """Made once connected, so it knows the daemon instance its subscriptions live on."""
        self.short_names: dict[str, str] = {}
        self._online = asyncio.Event()
        self._generation = 0
        """Counts the reconnections: a call cut off by a drop waits for the next one."""
        self._generation_changed = asyncio.Condition()
        self._waiting = 0
        """Calls waiting for the daemon to come back: the demand that justifies starting one."""
        self._tasks: list[asyncio.Task[None]] = []
        self._probe: asyncio.Task[None] | None = None
        self._closed = False

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Connect (starting the daemon when absent) and begin relaying events."""
        await self._start_daemon_if_absent()
        await self.client.connect()
        try:
            await self._load_models()
        except BaseException:
            await self.client.close()  # so that a later start begins afresh
            raise
        self.events = SessionEvents(self.client, relay_unknown=self.relay_unknown)
        self._tasks = [asyncio.create_task(self._pump(), name=f"{self.client.client_name}-pump")]
        self._online.set()

    async def close(self) -> None:
        """Detach (briefly, best effort) and drop the connection."""
        self._closed = True
        if self._online.is_set():
            for sid in self.events.sessions:
                try:
                    await asyncio.wait_for(self.client.detach(sid), 2.0)
                except (RpcError, DaemonUnavailable, asyncio.TimeoutError):
                    pass
        tasks = [*self._tasks, *([self._probe] if self._probe else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks = []
        await self.client.close()

    async def _start_daemon_if_absent(self) -> None:
        """Start a detached daemon, and reap it when it exits (no zombie while the
        editor runs). Two editors racing are safe: the daemon's lock lets one run."""
        proc = spawn_if_absent(self.paths, autostart=True, emulator=self.emulator)
        if proc is not None:
            log.info("no daemon was running; started one")
            await asyncio.to_thread(start_daemon, proc, self.paths)

    @property
    def online(self) -> bool:
        return self._online.is_set()

    async def _load_models(self) -> None:
        models = await self.client.list_models()
        self.short_names = {info.id: info.short_name for info in models.models}

    def short_name(self, model: str) -> str:
        return self.short_names.get(model, model)

    # --- calls --------------------------------------------------------------------------

    async def call(self, method: str, params: Any = None) -> Any:
        """Forward one typed call; wait out a restart instead of failing."""
        for attempt in range(2):
            await self._wait_online()
            generation = self._generation
            try:
                result = await self._tracked_call(method, params)
            except ConnectionLost:
                if method not in REPEATABLE or attempt:
                    raise RpcError(
                        ErrorCode.INTERNAL_ERROR,
                        f"the daemon restarted while {method} was in flight; it may or may not "
                        "have taken effect: check the session before repeating it",
                        {"reason": "connection_lost"}) from None
                await self._wait_generation_after(generation)
                continue
            except asyncio.TimeoutError:
                raise RpcError(ErrorCode.INTERNAL_ERROR, f"{method} got no answer from the daemon in "
                               f"{self.client.timeout:.0f}s; see {self.paths.log_file}") from None
            except DaemonUnavailable as exc:
                raise unavailable(str(exc)) from None
            return result
        raise unavailable("the connection dropped twice")  # pragma: no cover - loop returns or raises

    async def _tracked_call(self, method: str, params: Any) -> Any:
        """The call, keeping the followed sessions in step with attach and detach."""
        if method == "session/attach":
            # Replay what the editor asks for, even events it was already given.
            return await self.events.attach(params.session_id, since_seq=params.since_seq)
        result = await self.client.call(method, params)
        if method == "session/detach":
            self.events.unfollow(params.session_id)
        return result

    async def ensure_attached(self, session_id: str) -> None:
        """Attach a session for live events if this editor is not attached yet."""
        if not self.events.follows(session_id):
            await self.call("session/attach", m.AttachParams(session_id=session_id))

    async def _wait_online(self) -> None:
        if self._online.is_set():
            return
        self._waiting += 1
        try:
            await asyncio.wait_for(self._online.wait(), self.offline_timeout_s)
        except asyncio.TimeoutError:
            raise unavailable(f"it has been away for more than {self.offline_timeout_s:.0f}s; "
                              f"see {self.paths.log_file}") from None
        finally:
            self._waiting -= 1

    async def _wait_generation_after(self, generation: int) -> None:
        self._waiting += 1
        try:
            await self._wait_generation(generation)
        finally:
            self._waiting -= 1

    async def _wait_generation(self, generation: int) -> None:
        async with self._generation_changed:
            try:
                await asyncio.wait_for(
                    self._generation_changed.wait_for(lambda: self._generation > generation),
                    self.offline_timeout_s)
            except asyncio.TimeoutError:
                raise unavailable(f"it did not come back within {self.offline_timeout_s:.0f}s") from None

    # --- events -------------------------------------------------------------------------

    async def _pump(self) -> None:
        try:
            async for item in self.events.events():
                if isinstance(item, Disconnected):
                    self._went_offline()
                elif isinstance(item, Resumed):
                    await self._came_back(item)
                elif isinstance(item, Unfollowed):
                    self.listener.warn(f"duologue: session {item.session_id} could not be reattached: "
                                       f"{item.error.message}")
                elif isinstance(item, m.ClientDropped):
                    log.info("the daemon dropped this server (%s); its sessions are reattached", item.reason)
                elif isinstance(item, Incoming):
                    self.listener.deliver(item.method, msgspec.json.decode(bytes(item.params)))
                else:
                    self.listener.deliver(m.event_method(item), item)
        except DaemonUnavailable as exc:
            self.listener.warn(f"duologue: {exc}")

    def _went_offline(self) -> None:
        if not self._online.is_set() or self._closed:
            return
        self._online.clear()
        log.info("lost the daemon connection; waiting for it to come back")
        self.listener.connection(False, "the daemon connection was lost; reconnecting")
        if self._probe is None or self._probe.done():
            self._probe = asyncio.create_task(self._probe_until_back(), name=f"{self.client.client_name}-probe")

    async def _came_back(self, resumed: Resumed) -> None:
        """Every session is attached again: release the calls that waited."""
        was_offline = not self._online.is_set()
        async with self._generation_changed:
            self._generation += 1
            self._generation_changed.notify_all()
        self._online.set()
        if was_offline or resumed.restarted:
            again = "a restarted daemon" if resumed.restarted else "the daemon"
            log.info("reconnected to %s; %d session(s) reattached", again, len(self.events.sessions))
            self.listener.connection(True, f"reconnected to {again}")

    async def _probe_until_back(self) -> None:
        """Ask until the daemon answers again, and start one if none comes back.

        A hello sent while the connection is down waits in the socket's queue and is
        answered as soon as a daemon is back; the reattaching is the pump's, once the
        reconnection reaches it on the event stream."""
        loop = asyncio.get_running_loop()
        gone_since = loop.time()
        respawned = False
        hello = m.HelloParams(protocol_version=m.PROTOCOL_VERSION, client=self.client.client_name)
        while not self._closed and not self._online.is_set():
            try:
                await asyncio.wait_for(self.client.call("daemon/hello", hello), PROBE_TIMEOUT_S)
            except (ConnectionLost, asyncio.TimeoutError):
                await asyncio.sleep(PROBE_PAUSE_S)
            except (DaemonUnavailable, RpcError):
                return  # closed, or back but refusing this editor, which the pump reports
            else:
                return
            if not respawned and self._waiting and loop.time() - gone_since > self.respawn_after_s \
                    and not self.client.daemon_running():
                respawned = True
                try:
                    await self._start_daemon_if_absent()
                except DaemonUnavailable as exc:
                    self.listener.warn(f"duologue: could not start the daemon: {exc}")
