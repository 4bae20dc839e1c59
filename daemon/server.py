"""The daemon process: startup, serving, and a clean stop.

Startup order matters: take the lock (one daemon per home), open the store (which
refuses a newer schema), mark turns a crash interrupted, then bind the socket, so
no client talks to a half-started daemon. SIGTERM, SIGINT and daemon/shutdown all
set one stop event; running turns are interrupted with their text kept, the socket
is closed, the store is closed, the lock released.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal
import sys
from pathlib import Path

from duologue.protocol import methods as m

from . import heap
from .api import build_handlers
from .catalog import Catalog
from .discovery import Discovery
from .dispatch import Dispatcher, Spawn
from .hub import Hub
from .lock import DaemonLock
from .metrics import Metrics
from .providers.registry import BUILTIN
from .routing import Routing
from .services import Services
from .sessions import Sessions
from .home import HomeError, prepare_home, settle_runtime_dir
from .settings import Settings
from .store import Store, StoreError
from .turns import Turns
from .turns.recovery import recover_open_turns
from .zmq_transport import ZmqTransport, curve_server

log = logging.getLogger(__name__)

VERSION = "0.1.0"


class Daemon:
    """Start-up, serving and shutdown, in that order, each a method of its own
    (uvicorn's Config/Server split: the settings are resolved before this is built)."""

    def __init__(self, settings: Settings, emulator_url: str | None = None):
        self.settings = settings
        self.emulator_url = emulator_url
        self._stop = asyncio.Event()
        self._transports: list[ZmqTransport] = []
        self._dispatcher: Dispatcher
        self._sync_task: asyncio.Task[None] | None = None

    def request_stop(self, why: str) -> None:
        if not self._stop.is_set():
            log.info("stopping: %s", why)
            self._stop.set()

    async def run(self) -> None:
        store = Store(Path(self.settings.paths.store_dir))
        try:
            async with asyncio.TaskGroup() as tasks:
                services = self._startup(store, tasks.create_task)
                try:
                    await self._serve()
                finally:
                    await self._shutdown(services)
        finally:
            store.close()
            log.info("stopped")

    def _startup(self, store: Store, spawn: Spawn) -> Services:
        """Build the services, close what a crash left open, then bind: no client
        talks to a half-started daemon."""
        settings, paths = self.settings, self.settings.paths
        catalog = Catalog(settings.extra_models, settings.default_model)
        metrics = Metrics([*catalog.models, *catalog.legacy], emulator=self.emulator_url is not None)
        routing = Routing(settings, catalog, self.emulator_url)
        hub = Hub()
        sessions = Sessions(store, catalog, hub)
        turns = Turns(sessions, routing, metrics, spawn, queue_limit=settings.turn_queue_limit,
                      summary_model=settings.summary_model, turn_timeout_s=settings.turn_timeout_s)
        services = Services(
            settings=settings, version=VERSION, emulator_url=self.emulator_url, catalog=catalog, hub=hub,
            metrics=metrics, routing=routing, sessions=sessions, turns=turns,
            discovery=Discovery.for_daemon(catalog, store, settings, self.emulator_url),
            request_stop=self.request_stop)
        services.discovery.start(spawn)  # in the background: never delays start-up
        if settings.sync is not None:  # before recovery: what it closes is replicated too
            from .sync.replicator import Replicator

            services.sync = Replicator(settings.sync, sessions, turns, services.instance_id)
            self._sync_task = spawn(services.sync.run())
        recovered = recover_open_turns(sessions)
        if recovered:
            log.info("marked %d interrupted repl%s", recovered, "y" if recovered == 1 else "ies")
        self._dispatcher = Dispatcher(build_handlers(services), str(paths.log_file), spawn)
        self._transports = self._bind(hub)
        heap.settle("started")
        services.clients = lambda: sum(t.client_count for t in self._transports)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop, signal.Signals(sig).name)
        log.info("listening on %s (pid %d%s)", paths.endpoint, os.getpid(),
                 ", EMULATOR" if self.emulator_url else "")
        return services

    def _bind(self, hub: Hub) -> list[ZmqTransport]:
        """The ipc transport, and the TCP one when configured (bound first: the ipc
        socket's file is what says "ready")."""
        settings, paths = self.settings, self.settings.paths
        limits = {"max_frame_bytes": m.MAX_FRAME_BYTES, "queue_limit_bytes": settings.client_queue_bytes}
        transports = []
        if settings.tcp_listen:
            tcp = ZmqTransport(f"tcp://{settings.tcp_listen}", self._dispatcher, hub,
                               curve=curve_server(Path(paths.config_dir)), tag=b"tcp:", **limits)
            tcp.bind()
            transports.append(tcp)
            log.info("listening on tcp://%s (CURVE; allowed client keys in %s)",
                     settings.tcp_listen, Path(paths.config_dir) / "authorized_clients")
        ipc = ZmqTransport(paths.endpoint, self._dispatcher, hub, **limits)
        ipc.bind()
        return [ipc, *transports]

    async def _serve(self) -> None:
        """Serve every transport until a stop is asked; one that fails ends them all
        (and the daemon, with its error logged) rather than leaving half a daemon."""
        async with asyncio.TaskGroup() as serving:
            for transport in self._transports:
                serving.create_task(transport.serve(self._stop), name=f"serve {transport.endpoint}")

    async def _shutdown(self, services: Services) -> None:
        """Stop taking work, interrupt running turns (their text kept), deliver what
        was answered, close the sockets and the providers' clients."""
        services.discovery.stop()
        await self._dispatcher.stop()
        await services.turns.stop()
        if services.sync is not None:  # what the stop wrote is published, then the leases go
            await services.sync.close()
        if self._sync_task is not None:
            self._sync_task.cancel()
        for transport in self._transports:
            transport.close()
        await services.routing.aclose()


def run_daemon(settings: Settings, *, emulator: bool) -> int:
    """Run in the foreground until stopped; returns the process exit code."""
    from .lock import AlreadyRunning

    try:
        prepare_home(settings.paths)
        _configure_logging(Path(settings.paths.log_file))
    except (HomeError, OSError) as exc:
        print(f"duologue: {exc}", file=sys.stderr)
        return 2
    lock = DaemonLock(Path(settings.paths.lock_path))
    try:
        lock.acquire()
    except AlreadyRunning as exc:
        print(f"duologue: {exc}", file=sys.stderr)
        return 3
    emu = None
    try:
        try:
            settings = dataclasses.replace(settings, paths=settle_runtime_dir(settings.paths))
        except (HomeError, OSError) as exc:
            log.error("%s", exc)
            print(f"duologue: {exc}", file=sys.stderr)
            return 2
        if emulator:
            from .emulator import Emulator

            emu = Emulator(registry=settings.registry)
            emu.start()
            settings = settings.on_emulator(emu.url, emu.api_keys)
            log.warning("EMULATOR MODE: replies come from the offline provider emulator at %s", emu.url)
        asyncio.run(Daemon(settings, emulator_url=emu.url if emu else None).run())
        return 0
    except StoreError as exc:  # explained in its message; no trace to add
        log.error("%s", exc)
        print(f"duologue: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        log.exception("daemon failed")
        print(f"duologue daemon: {exc}", file=sys.stderr)
        return 1
    finally:
        if emu is not None:
            emu.stop()
        lock.release()


def _configure_logging(path: Path) -> None:
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    for noisy in ("httpx", "httpx2", "httpcore", *BUILTIN.loggers):
        logging.getLogger(noisy).setLevel(logging.WARNING)  # per-request lines drown the log
    os.chmod(path, 0o600)
