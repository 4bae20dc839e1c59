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
import time
from datetime import datetime, timezone
from pathlib import Path

from duologue.protocol import methods as m

from .api import build_handlers
from .catalog import Catalog
from .discovery import Discovery
from .dispatch import Dispatcher
from .hub import Hub
from .lock import DaemonLock
from .metrics import Metrics
from .routing import Routing
from .sessions import Sessions
from .home import HomeError, prepare_home, settle_runtime_dir
from .settings import Settings
from .store import Store, StoreError
from .turns import Turns
from .zmq_transport import ZmqTransport, curve_server

log = logging.getLogger(__name__)

VERSION = "0.1.0"


class Daemon:
    version = VERSION

    def __init__(self, settings: Settings, emulator_url: str | None = None):
        self.settings = settings
        self.emulator_url = emulator_url
        self.started_at = datetime.now(timezone.utc)
        self._t0 = time.monotonic()
        self._stop = asyncio.Event()
        self.catalog = Catalog(settings.extra_models, settings.default_model)
        self.hub = Hub()
        self.metrics = Metrics([*self.catalog.models, *self.catalog.legacy])
        self.routing = Routing(settings, self.catalog, emulator_url)
        self.store: Store | None = None
        self.discovery: Discovery
        self.sessions: Sessions
        self.turns: Turns
        self.transport: ZmqTransport
        self.tcp: ZmqTransport | None = None

    def request_stop(self, why: str) -> None:
        if not self._stop.is_set():
            log.info("stopping: %s", why)
            self._stop.set()

    def status(self) -> m.StatusResult:
        paths = self.settings.paths
        return m.StatusResult(
            protocol_version=m.PROTOCOL_VERSION,
            daemon_version=self.version,
            pid=os.getpid(),
            started_at=self.started_at,
            uptime_s=round(time.monotonic() - self._t0, 3),
            home=str(Path(paths.data_dir).parent),
            socket=paths.endpoint,
            sessions=self.sessions.store.count_sessions(),
            clients=self.transport.client_count + (self.tcp.client_count if self.tcp else 0),
            emulator=self.emulator_url is not None,
            providers=self.routing.statuses(),
            running_turns=self.turns.running(),
        )

    async def run(self) -> None:
        paths = self.settings.paths
        self.store = Store(Path(paths.store_dir))
        try:
            self.sessions = Sessions(self.store, self.catalog, self.hub)
            self.discovery = Discovery.for_daemon(self.catalog, self.store, self.settings, self.emulator_url)
            async with asyncio.TaskGroup() as tasks:
                self.turns = Turns(self.sessions, self.routing, self.metrics, tasks.create_task,
                                   queue_limit=self.settings.turn_queue_limit,
                                   summary_model=self.settings.summary_model,
                                   turn_timeout_s=self.settings.turn_timeout_s)
                self.discovery.start(tasks.create_task)  # in the background: never delays start-up
                recovered = self.turns.recover()
                if recovered:
                    log.info("marked %d interrupted repl%s", recovered, "y" if recovered == 1 else "ies")
                dispatcher = Dispatcher(build_handlers(self), str(paths.log_file))
                self.transport = ZmqTransport(
                    paths.endpoint, dispatcher, self.hub,
                    max_frame_bytes=m.MAX_FRAME_BYTES, queue_limit_bytes=self.settings.client_queue_bytes,
                )
                if self.settings.tcp_listen:  # before the ipc socket, whose file says "ready"
                    self.tcp = ZmqTransport(
                        f"tcp://{self.settings.tcp_listen}", dispatcher, self.hub,
                        max_frame_bytes=m.MAX_FRAME_BYTES, queue_limit_bytes=self.settings.client_queue_bytes,
                        curve=curve_server(Path(paths.config_dir)), tag=b"tcp:",
                    )
                    self.tcp.bind()
                    log.info("listening on tcp://%s (CURVE; allowed client keys in %s)",
                             self.settings.tcp_listen, Path(paths.config_dir) / "authorized_clients")
                self.transport.bind()
                loop = asyncio.get_running_loop()
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.add_signal_handler(sig, self.request_stop, signal.Signals(sig).name)
                log.info("listening on %s (pid %d%s)", paths.endpoint, os.getpid(),
                         ", EMULATOR" if self.emulator_url else "")
                try:
                    await asyncio.gather(self.transport.serve(self._stop),
                                         *([self.tcp.serve(self._stop)] if self.tcp else []))
                finally:
                    self.discovery.stop()
                    await self.turns.stop()
                    self.transport.close()
                    if self.tcp is not None:
                        self.tcp.close()
                    await self.routing.aclose()
        finally:
            self.store.close()
            log.info("stopped")


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

            emu = Emulator()
            emu.start()
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
    for noisy in ("httpx", "httpx2", "httpcore", "google_genai", "anthropic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)  # per-request lines drown the log
    os.chmod(path, 0o600)
