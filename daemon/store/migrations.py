"""Store schema migrations: ordered steps, each after a compacted copy of the store.

Step N upgrades version N-1 to N. It runs in one LMDB write transaction that also
writes the new version, so a step either happens whole or not at all: a step that
raises, or a process killed in the middle, leaves the store at the version before it,
still usable by the duologue that wrote it. Before each step the store is copied with
LMDB's compacting copy into ``backups/<time>-v<N-1>/``; ``duologue db rollback``
restores such a copy (see ``maintenance``).

A backup is written under a ``.partial`` name and renamed when complete, so an
interrupted copy is never mistaken for a backup.

:data:`MIGRATIONS` is the list a daemon uses, one step per schema
version it produces; tests pass their own list to ``Store(migrations=..., target_version=...)``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Protocol

from .errors import StoreMigrationError, StoreVersionError

if TYPE_CHECKING:
    import lmdb


class Migrating(Protocol):
    """What an upgrade needs of the store (``records.Store``), named here so that
    this module need not import the one that imports it."""

    path: Path
    backups_dir: Path

    def copy_to(self, directory: Path) -> None: ...

    def run_migration_step(self, step: Migration) -> None: ...

BACKUP_META = "backup.json"
PARTIAL = ".partial"


@dataclass
class MigrationContext:
    """What a step works with: the write transaction, the environment (to open a new
    named database inside the transaction) and the store's open databases by name."""

    txn: lmdb.Transaction
    env: lmdb.Environment
    dbs: dict[str, Any]

    def db(self, name: str) -> Any:
        """A named database, created inside this transaction when it is new."""
        if name not in self.dbs:
            self.dbs[name] = self.env.open_db(name.encode(), txn=self.txn)
        return self.dbs[name]


@dataclass(frozen=True)
class Migration:
    version: int
    """The version this step produces, from ``version - 1``."""
    description: str
    apply: Callable[[MigrationContext], None]


def _provider_side_data(ctx: MigrationContext) -> None:
    """v2: messages may hold ``thinking`` blocks and signatures, refusals and costs.

    Every new field is optional and version 1 records decode unchanged, so nothing is
    rewritten; the step exists so a store that holds them is marked version 2, which a
    duologue of version 1 (whose decoder does not know a ``thinking`` block) refuses
    to open instead of failing on the first such message.
    """


def _append_only_streams(ctx: MigrationContext) -> None:
    """v3: a streaming reply's record is no longer rewritten at each checkpoint; its
    text is its delta events (``streams``).

    A version 2 store's streaming record holds the text of its last checkpoint, which
    its deltas, committed with it, hold too: version 3 reads the deltas and ignores
    that copy, so nothing is rewritten. The step exists so that a duologue of version
    2, which would take a version 3 streaming record's empty content for its text (and
    mark a crashed reply interrupted without it), refuses the store instead.
    """


def _completions_by_reference(ctx: MigrationContext) -> None:
    """v4: a stored ``message/completed`` is a reference to its message record
    (``streams``) instead of its frame without the content.

    Version 3 completions stay as they are (a read still expands them), so nothing is
    rewritten. The step exists so that a duologue of version 3, which would replay a
    version 4 completion's few bytes as if they were a frame, refuses the store instead.
    """


def _escaped_deltas(ctx: MigrationContext) -> None:
    """v5: a stored delta keeps its text as JSON writes it in the frame (escaped),
    under marks of its own (``streams``), instead of raw.

    Version 4 deltas keep their marks and stay as they are (a read still encodes
    them), so nothing is rewritten. The step exists so that a duologue of version 4,
    which would replay a version 5 delta's bytes as if they were a frame, refuses the
    store instead.
    """


MIGRATIONS: list[Migration] = [
    Migration(2, "provider side data: thinking blocks, signatures, refusals, cost", _provider_side_data),
    Migration(3, "append-only streams: a streaming reply's text is its deltas", _append_only_streams),
    Migration(4, "a stored completion refers to its message record", _completions_by_reference),
    Migration(5, "a stored delta keeps its text escaped, as the frame carries it", _escaped_deltas),
]


def plan(found: int, target: int, steps: Sequence[Migration]) -> list[Migration]:
    """The steps from ``found`` to ``target`` in order; every version needs one."""
    by_version = {s.version: s for s in steps}
    missing = [v for v in range(found + 1, target + 1) if v not in by_version]
    if missing:
        raise StoreVersionError(
            f"no migration step to schema version {missing[0]}; this duologue cannot "
            f"upgrade a version {found} store to {target} (the store was left unchanged)")
    return [by_version[v] for v in range(found + 1, target + 1)]


def upgrade(store: Migrating, found: int, target: int, steps: Sequence[Migration]) -> list[Path]:
    """Run the steps from ``found`` to ``target``, a backup before each; the backups made."""
    made = []
    for step in plan(found, target, steps):
        backup = make_backup(store, step.version - 1, f"before migration to v{step.version}")
        made.append(backup)
        try:
            store.run_migration_step(step)
        except Exception as exc:
            raise StoreMigrationError(
                f"migrating the store at {store.path} to schema version {step.version} "
                f"({step.description}) failed: {exc}; the step was undone, the store is still "
                f"at version {step.version - 1} and the copy taken before it is {backup}"
            ) from exc
    return made


def make_backup(store: Migrating, version: int, reason: str) -> Path:
    """A compacted copy of ``store`` in its backups directory; returns its path."""
    return write_backup(store.copy_to, store.backups_dir, version, reason)


def write_backup(copy: Callable[[Path], None], backups_dir: Path, version: int, reason: str) -> Path:
    backups_dir.mkdir(parents=True, exist_ok=True)
    now = datetime.now(timezone.utc)
    name = f"{now:%Y%m%dT%H%M%S.%fZ}-v{version}"
    partial = backups_dir / (name + PARTIAL)
    partial.mkdir()
    copy(partial)
    meta = {"version": version, "created_at": now.isoformat().replace("+00:00", "Z"), "reason": reason}
    (partial / BACKUP_META).write_text(json.dumps(meta, indent=2) + "\n")
    _fsync_dir(partial)
    final = backups_dir / name
    os.rename(partial, final)
    _fsync_dir(backups_dir)
    return final


@dataclass(frozen=True)
class Backup:
    name: str
    path: Path
    version: int | None
    created_at: str | None
    reason: str | None
    size: int


def list_backups(backups_dir: Path) -> list[Backup]:
    """Complete backups, oldest first (names sort by time)."""
    if not backups_dir.is_dir():
        return []
    out = []
    for d in sorted(backups_dir.iterdir()):
        if not d.is_dir() or d.name.endswith(PARTIAL) or not (d / "data.mdb").exists():
            continue
        try:
            meta = json.loads((d / BACKUP_META).read_text())
        except (OSError, ValueError):
            meta = {}
        out.append(Backup(d.name, d, meta.get("version"), meta.get("created_at"), meta.get("reason"),
                          (d / "data.mdb").stat().st_size))
    return out


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
