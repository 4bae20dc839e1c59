"""The daemon's services, built once from resolved settings: what handlers work with.

The composition root (``server``) builds one :class:`Services` at start-up; the
method handlers (``api``) take it and nothing else, so neither module needs the
other's internals.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from duologue.protocol import methods as m

from .catalog import Catalog
from .discovery import Discovery
from .hub import Hub
from .ids import new_id
from .metrics import Metrics
from .routing import Routing
from .sessions import Sessions
from .settings import Settings
from .turns import Turns

if TYPE_CHECKING:
    from .sync.replicator import Replicator


@dataclass
class Services:
    settings: Settings
    version: str
    emulator_url: str | None
    catalog: Catalog
    hub: Hub
    metrics: Metrics
    routing: Routing
    sessions: Sessions
    turns: Turns
    discovery: Discovery
    request_stop: Callable[[str], None]
    clients: Callable[[], int] = lambda: 0
    """Connected clients, counted by the transports (set once they are bound)."""
    sync: Replicator | None = None
    """Replication through NATS, when [sync] is configured (daemon/sync)."""
    instance_id: str = field(default_factory=new_id)
    """Fresh at each start: hello and status tell a client when the daemon it follows restarted."""
    started_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    _t0: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        # What daemon/status says that cannot change while the daemon runs, built
        # once: deriving the paths again each time cost a third of a call.
        paths = self.settings.paths
        self._fixed_status = m.StatusResult(
            protocol_version=m.PROTOCOL_VERSION,
            daemon_version=self.version,
            pid=os.getpid(),
            started_at=self.started_at,
            uptime_s=0.0,
            home=str(Path(paths.data_dir).parent),
            socket=paths.endpoint,
            sessions=0,
            clients=0,
            emulator=self.emulator_url is not None,
            instance_id=self.instance_id,
        )

    def status(self) -> m.StatusResult:
        return msgspec.structs.replace(
            self._fixed_status,
            uptime_s=round(time.monotonic() - self._t0, 3),
            sessions=self.sessions.store.count_sessions(),
            clients=self.clients(),
            providers=self.routing.statuses(),
            running_turns=self.turns.running(),
        )
