"""The daemon process: startup, serving, and a clean stop.

Startup order matters: take the lock (one daemon per home), open the store (which
refuses a newer schema), mark turns a crash interrupted, then bind the socket, so
no client talks to a half-started daemon. SIGTERM, SIGINT and daemon/shutdown all
set one stop event; running turns are interrupted with their text kept, the socket
is closed, the store is closed, the lock released.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from datetime import datetime, timezone
from pathlib import Path

from duologue.protocol import methods as m

from .api import build_handlers
from .catalog import Catalog
from .dispatch import Dispatcher
from .hub import Hub
from .lock import DaemonLock
from .metrics import Metrics
from .routing import Routing
from .sessions import Sessions
from .settings import Settings, ensure_private_dirs
from .store import Store
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
        self.metrics = Metrics(self.catalog.models)
        self.routing = Routing(settings, self.catalog, emulator_url)
        self.store: Store | None = None
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
            async with asyncio.TaskGroup() as tasks:
                self.turns = Turns(self.sessions, self.routing, self.metrics, tasks.create_task,
                                   queue_limit=self.settings.turn_queue_limit,
                                   summary_model=self.settings.summary_model)
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

    ensure_private_dirs(settings.paths)
    _configure_logging(Path(settings.paths.log_file))
    lock = DaemonLock(Path(settings.paths.lock_path))
    try:
        lock.acquire()
    except AlreadyRunning as exc:
        print(f"duologue: {exc}")
        return 3
    emu = None
    try:
        if emulator:
            from .emulator import Emulator

            emu = Emulator()
            emu.start()
            log.warning("EMULATOR MODE: replies come from the offline provider emulator at %s", emu.url)
        asyncio.run(Daemon(settings, emulator_url=emu.url if emu else None).run())
        return 0
    except Exception as exc:
        log.exception("daemon failed")
        print(f"duologue daemon: {exc}")
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
