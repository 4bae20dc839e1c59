"""``python -m duologue.daemon db status|backup|rollback``: maintenance of the store.

These work on the LMDB files directly, so they live in the daemon package; the CLI
(which never imports the daemon) runs them as a subprocess, as it runs the daemon.

- ``status`` reads without writing (safe while a daemon runs): schema version, path,
  map size, sizes, and the backups with their versions and dates.
- ``backup`` writes a compacted copy now (LMDB's copy is consistent while a daemon runs).
- ``rollback [BACKUP]`` puts a backup (the newest by default) in place of the store.
  It refuses while a daemon runs, and holds the daemon lock throughout so none starts
  meanwhile. The current store is first copied to a backup of its own, so a rollback
  can be rolled back. The swap is one ``rename`` of the data file: an interruption
  leaves either the old store or the restored one, never a mix.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import lmdb

from duologue.protocol.paths import Paths, locate

from .lock import AlreadyRunning, DaemonLock, read_pid
from .migrations import MIGRATIONS, list_backups, write_backup
from .store import SCHEMA_VERSION

EXIT_ERROR, EXIT_USAGE = 1, 2


class MaintenanceError(Exception):
    """The command cannot be done; the message says why and what to do."""


def _store_dir(paths: Paths) -> Path:
    return Path(paths.store_dir)


def _backups_dir(paths: Paths) -> Path:
    return Path(paths.data_dir) / "backups"


def _open_readonly(path: Path) -> lmdb.Environment:
    return lmdb.open(str(path), readonly=True, max_dbs=32, subdir=True, lock=True)


def read_version(path: Path) -> int | None:
    env = _open_readonly(path)
    try:
        try:
            meta = env.open_db(b"meta", create=False)
        except lmdb.NotFoundError:
            return None
        with env.begin(db=meta) as txn:
            raw = txn.get(b"schema_version")
        return None if raw is None else int(raw)
    finally:
        env.close()


def status(paths: Paths) -> dict[str, Any]:
    store = _store_dir(paths)
    out: dict[str, Any] = {"path": str(store), "exists": (store / "data.mdb").exists(),
                           "code_version": SCHEMA_VERSION,
                           "migrations": [{"version": s.version, "description": s.description} for s in MIGRATIONS],
                           "daemon_pid": _daemon_pid(paths)}
    if out["exists"]:
        env = _open_readonly(store)
        try:
            info = env.info()
            out["map_size"] = info["map_size"]
            out["last_txnid"] = info["last_txnid"]
            try:
                meta = env.open_db(b"meta", create=False)
                with env.begin(db=meta) as txn:
                    raw = txn.get(b"schema_version")
                out["version"] = None if raw is None else int(raw)
                sessions = env.open_db(b"sessions", create=False)
                with env.begin() as txn:
                    out["sessions"] = txn.stat(sessions)["entries"]
            except lmdb.NotFoundError:
                out["version"] = None
        finally:
            env.close()
        out["file_size"] = (store / "data.mdb").stat().st_size
    out["backups_dir"] = str(_backups_dir(paths))
    out["backups"] = [{"name": b.name, "version": b.version, "created_at": b.created_at,
                       "reason": b.reason, "size": b.size} for b in list_backups(_backups_dir(paths))]
    return out


def backup(paths: Paths, reason: str = "made by `duologue db backup`") -> dict[str, Any]:
    store = _store_dir(paths)
    if not (store / "data.mdb").exists():
        raise MaintenanceError(f"there is no store at {store} to back up")
    version = read_version(store)
    env = lmdb.open(str(store), max_dbs=32, subdir=True, lock=True)
    try:
        made = write_backup(lambda d: env.copy(str(d), compact=True), _backups_dir(paths),
                            version or 0, reason)
    finally:
        env.close()
    return {"backup": made.name, "version": version, "path": str(made)}


def rollback(paths: Paths, name: str | None = None) -> dict[str, Any]:
    backups = list_backups(_backups_dir(paths))
    if not backups:
        raise MaintenanceError(f"there are no backups in {_backups_dir(paths)}; nothing to roll back to")
    if name is None:
        chosen = backups[-1]
    else:
        matches = [b for b in backups if b.name == name or b.name.startswith(name)]
        if len(matches) != 1:
            listing = ", ".join(b.name for b in backups)
            raise MaintenanceError(f"{'no' if not matches else 'more than one'} backup matches {name!r}; "
                                   f"the backups are: {listing}")
        chosen = matches[0]
    version = read_version(chosen.path)
    if version is not None and version > SCHEMA_VERSION:
        raise MaintenanceError(f"backup {chosen.name} has schema version {version}, newer than this "
                               f"duologue knows ({SCHEMA_VERSION}); roll back with the duologue that made it")
    run = Path(paths.runtime_dir)
    run.mkdir(parents=True, exist_ok=True, mode=0o700)
    lock = DaemonLock(Path(paths.lock_path))
    try:
        lock.acquire()
    except AlreadyRunning as exc:
        raise MaintenanceError(f"{exc}; stop it first with `duologue daemon stop`") from None
    try:
        store = _store_dir(paths)
        saved = None
        if (store / "data.mdb").exists():
            saved = backup(paths, reason=f"before rollback to {chosen.name}")["backup"]
        store.mkdir(parents=True, exist_ok=True)
        staging = store / "data.mdb.restore"
        shutil.copyfile(chosen.path / "data.mdb", staging)
        with open(staging, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(staging, store / "data.mdb")
        fd = os.open(store, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    finally:
        lock.release()
    return {"restored": chosen.name, "version": version, "previous_store_saved_as": saved}


def _daemon_pid(paths: Paths) -> int | None:
    """The running daemon's pid, from its lock file (read only: taking the lock to
    look would make a daemon starting at that moment give up)."""
    pid = read_pid(Path(paths.lock_path))
    if not pid:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return pid


# --- command line ----------------------------------------------------------------------


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def status_text(s: dict[str, Any]) -> str:
    if not s["exists"]:
        lines = [f"no store yet at {s['path']} (a daemon creates it at version {s['code_version']})"]
    else:
        v = s.get("version")
        state = ("up to date" if v == s["code_version"] else
                 f"will be migrated to v{s['code_version']} when the daemon starts" if v is not None and v < s["code_version"]
                 else f"newer than this duologue (v{s['code_version']})")
        lines = [f"store: {s['path']}",
                 f"schema version: {v} ({state})",
                 f"map size: {_size(s['map_size'])}, file: {_size(s['file_size'])}, sessions: {s.get('sessions', 0)}"]
    lines.append(f"daemon: running (pid {s['daemon_pid']})" if s["daemon_pid"] else "daemon: not running")
    if s["backups"]:
        lines.append(f"backups in {s['backups_dir']}:")
        for b in s["backups"]:
            lines.append(f"  {b['name']}  v{b['version']}  {b['created_at']}  {_size(b['size'])}  {b['reason'] or ''}".rstrip())
    else:
        lines.append("no backups")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="duologue db", description="maintain the store")
    parser.add_argument("action", choices=["status", "backup", "rollback"])
    parser.add_argument("backup", nargs="?", help="rollback: the backup's name or a unique prefix (default: newest)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    paths = locate()
    try:
        if args.action == "status":
            result = status(paths)
            text = status_text(result)
        elif args.action == "backup":
            result = backup(paths)
            text = f"backed up the store (v{result['version']}) to {result['path']}"
        else:
            result = rollback(paths, args.backup)
            text = (f"restored backup {result['restored']} (schema version {result['version']})"
                    + (f"; the store it replaced is backup {result['previous_store_saved_as']}"
                       if result["previous_store_saved_as"] else ""))
    except MaintenanceError as exc:
        print(f"duologue: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except lmdb.Error as exc:
        print(f"duologue: the store could not be read: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(json.dumps(result, indent=2) if args.json else text)
    return 0
