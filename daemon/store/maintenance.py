"""``python -m duologue.daemon db status|check|backup|rollback``: maintenance of the store.

These work on the LMDB files directly, so they live in the daemon package; the CLI
(which never imports the daemon) runs them as a subprocess, as it runs the daemon.

- ``status`` reads without writing (safe while a daemon runs): schema version, path,
  map size, sizes, the backups with their versions and dates, whether the file is
  whole at a glance (``check.glance``) and what the last ``check`` found; it
  never calls a store sound that no one has read page by page.
- ``check`` reads every page (in a child process, with a progress bar on a terminal)
  and records the result beside the store.
- ``backup`` writes a compacted copy now (LMDB's copy is consistent while a daemon runs).
- ``rollback [BACKUP]`` puts a backup (the newest by default) in place of the store.
  It refuses while a daemon runs, and holds the daemon lock throughout so none starts
  meanwhile. The current store is first copied to a backup of its own, so a rollback
  can be rolled back; a damaged one, which LMDB cannot copy, is moved aside whole as
  a ``...-damaged`` backup. The swap is one ``rename`` of the data file: an
  interruption leaves either the old store or the restored one, never a mix.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import lmdb

from duologue.protocol.paths import Paths, locate

from ..lock import AlreadyRunning, DaemonLock, lock_held, read_pid
from .migrations import BACKUP_META, MIGRATIONS, list_backups, write_backup
from .records import SCHEMA_VERSION
from .environment import open_environment
from .check import glance, walk

EXIT_ERROR, EXIT_USAGE = 1, 2
DAMAGED = "-damaged"
"""Suffix of a backup that is a damaged store a rollback set aside."""
CHECK_RECORD = "store-check.json"
"""Beside the store: the last ``db check``'s result, which ``db status`` shows."""


class MaintenanceError(Exception):
    """The command cannot be done; the message says why and what to do."""


def _store_dir(paths: Paths) -> Path:
    return Path(paths.store_dir)


def _backups_dir(paths: Paths) -> Path:
    return Path(paths.data_dir) / "backups"


def _open_readonly(path: Path) -> lmdb.Environment:
    return open_environment(path, readonly=True)


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
    out["damage"] = glance(store) if out["exists"] else None
    out["last_check"] = last_check(paths)
    if out["exists"] and out["damage"] is None:
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
            except lmdb.Error as exc:  # a damaged page on the way to these records
                out["damage"] = f"reading its first records failed: {exc}"
        finally:
            env.close()
    if out["exists"]:
        out["file_size"] = (store / "data.mdb").stat().st_size
    out["backups_dir"] = str(_backups_dir(paths))
    out["backups"] = [{"name": b.name, "version": b.version, "created_at": b.created_at,
                       "reason": b.reason, "size": b.size} for b in list_backups(_backups_dir(paths))]
    return out


def backup(paths: Paths, reason: str = "made by `duologue db backup`") -> dict[str, Any]:
    store = _store_dir(paths)
    if not (store / "data.mdb").exists():
        raise MaintenanceError(f"there is no store at {store} to back up")
    problem = glance(store)
    if problem is not None:
        raise MaintenanceError(f"cannot back up the store at {store}: {problem}; "
                               "`duologue db rollback` restores the newest backup")
    version = read_version(store)
    env = open_environment(store)
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
        whole = [b for b in backups if not b.name.endswith(DAMAGED)]
        if not whole:
            raise MaintenanceError(f"the only backups in {_backups_dir(paths)} are damaged stores set aside; "
                                   "name one to restore it anyway")
        chosen = whole[-1]
    else:
        matches = [b for b in backups if b.name == name or b.name.startswith(name)]
        if len(matches) != 1:
            listing = ", ".join(b.name for b in backups)
            raise MaintenanceError(f"{'no' if not matches else 'more than one'} backup matches {name!r}; "
                                   f"the backups are: {listing}")
        chosen = matches[0]
    problem = glance(chosen.path)
    if problem is not None:
        raise MaintenanceError(f"backup {chosen.name} is damaged too: {problem}; name an older one")
    version = read_version(chosen.path)
    if version is not None and version > SCHEMA_VERSION:
        raise MaintenanceError(f"backup {chosen.name} has schema version {version}, newer than this "
                               f"duologue knows ({SCHEMA_VERSION}); roll back with the duologue that made it")
    Path(paths.state_dir).mkdir(parents=True, exist_ok=True, mode=0o700)  # the lock's
    lock = DaemonLock(Path(paths.lock_path))
    try:
        lock.acquire()
    except AlreadyRunning as exc:
        raise MaintenanceError(f"{exc}; stop it first with `duologue daemon stop`") from None
    try:
        store = _store_dir(paths)
        saved = None
        if (store / "data.mdb").exists():
            problem = glance(store)
            if problem is None:
                saved = backup(paths, reason=f"before rollback to {chosen.name}")["backup"]
            else:  # LMDB cannot copy it (a cut file would crash the copy): move it aside whole
                saved = _set_aside(store, _backups_dir(paths), problem)
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


def _set_aside(store: Path, backups_dir: Path, problem: str) -> str:
    """Move a damaged data file into a backup of its own (named ``...-damaged``), so a
    rollback never deletes what might still be read by other means."""
    now = datetime.now(timezone.utc)
    name = f"{now:%Y%m%dT%H%M%S.%fZ}{DAMAGED}"
    target = backups_dir / name
    target.mkdir(parents=True)
    os.rename(store / "data.mdb", target / "data.mdb")
    (target / BACKUP_META).write_text(json.dumps({
        "version": None, "created_at": now.isoformat().replace("+00:00", "Z"),
        "reason": f"damaged store set aside by rollback: {problem}"}, indent=2) + "\n")
    return name


# --- check: every page --------------------------------------------------------------------


def _check_file(paths: Paths) -> Path:
    return Path(paths.data_dir) / CHECK_RECORD


def last_check(paths: Paths) -> dict[str, Any] | None:
    """The last ``db check``'s result, as recorded beside the store."""
    try:
        return json.loads(_check_file(paths).read_text())
    except (OSError, ValueError):
        return None


def check(paths: Paths, progress: Callable[[int, int], None] = lambda done, total: None) -> dict[str, Any]:
    """Read every page of the store (in a child process: a damaged page may crash the
    reader) and record the result. A running daemon may keep writing meanwhile."""
    store = _store_dir(paths)
    if not (store / "data.mdb").exists():
        raise MaintenanceError(f"there is no store at {store} to check")
    started = time.monotonic()
    problem = glance(store)
    records: dict[str, int] = {}
    if problem is None:
        child = subprocess.Popen([sys.executable, "-m", "duologue.daemon", "db", "_walk", str(store)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert child.stdout is not None and child.stderr is not None
        for line in child.stdout:
            kind, _, rest = line.rstrip("\n").partition(" ")
            if kind == "progress":
                done, total = (int(x) for x in rest.split())
                progress(done, total)
            elif kind == "records":
                records = json.loads(rest)
        err = child.stderr.read().strip()
        code = child.wait()
        if code < 0:
            problem = (f"reading it crashed the reader ({signal.Signals(-code).name}): "
                       "a page is damaged")
        elif code != 0:
            problem = err.splitlines()[-1] if err else f"the reader exited with code {code}"
    result = {"path": str(store), "ok": problem is None, "problem": problem,
              "records": sum(records.values()), "databases": records,
              "checked_at": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
              "seconds": round(time.monotonic() - started, 3)}
    _check_file(paths).write_text(json.dumps(result, indent=2) + "\n")
    return result


def _walk_main(store: str) -> int:
    """The child of :func:`check`: progress and the record counts on stdout."""
    def progress(done: int, total: int) -> None:
        print(f"progress {done} {total}", flush=True)

    try:
        counts = walk(Path(store), progress)
    except lmdb.Error as exc:
        print(f"a page is damaged: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(f"records {json.dumps(counts)}", flush=True)
    return 0


def _daemon_pid(paths: Paths) -> int | None:
    """The running daemon's pid: the lock's holder (a brief shared flock tells whether
    it is held; the pid in the file alone may name an unrelated process)."""
    if not lock_held(Path(paths.lock_path)):
        return None
    return read_pid(Path(paths.lock_path))


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
    elif s["damage"]:
        lines = [f"store: {s['path']}",
                 f"DAMAGED: {s['damage']}",
                 f"file: {_size(s['file_size'])}; the daemon refuses to open it. Restore the newest backup "
                 "with `duologue db rollback` (the damaged file is set aside, not deleted)",
                 _check_line(s["last_check"])]
    else:
        v = s.get("version")
        state = ("up to date" if v == s["code_version"] else
                 f"will be migrated to v{s['code_version']} when the daemon starts" if v is not None and v < s["code_version"]
                 else f"newer than this duologue (v{s['code_version']})")
        lines = [f"store: {s['path']}",
                 f"schema version: {v} ({state})",
                 f"map size: {_size(s['map_size'])}, file: {_size(s['file_size'])}, sessions: {s.get('sessions', 0)}",
                 _check_line(s["last_check"])]
    lines.append(f"daemon: running (pid {s['daemon_pid']})" if s["daemon_pid"] else "daemon: not running")
    if s["backups"]:
        lines.append(f"backups in {s['backups_dir']}:")
        for b in s["backups"]:
            lines.append(f"  {b['name']}  v{b['version']}  {b['created_at']}  {_size(b['size'])}  {b['reason'] or ''}".rstrip())
    else:
        lines.append("no backups")
    return "\n".join(lines)


def _check_line(c: dict[str, Any] | None) -> str:
    if c is None:
        return "pages: never checked (only the file's size and header were; `duologue db check` reads every page)"
    if c.get("ok"):
        return f"pages: all read without error by `duologue db check` at {c['checked_at']} ({c['records']} records)"
    return f"pages: DAMAGED when checked at {c['checked_at']}: {c['problem']}"


class _Bar:
    """``db check``'s progress on stderr, when it is a terminal."""

    def __init__(self) -> None:
        self.on = sys.stderr.isatty()
        self.shown = -1

    def __call__(self, done: int, total: int) -> None:
        pct = 100 * done // max(total, 1)
        if self.on and pct != self.shown:
            self.shown = pct
            filled = pct * 30 // 100
            sys.stderr.write(f"\rchecking [{'#' * filled}{'.' * (30 - filled)}] {pct:3d}%  {done}/{total} records")
            sys.stderr.flush()

    def end(self) -> None:
        if self.on and self.shown >= 0:
            sys.stderr.write("\n")


def main(argv: list[str] | None = None) -> int:
    args_list = sys.argv[1:] if argv is None else argv
    if args_list[:1] == ["_walk"]:
        return _walk_main(args_list[1])
    parser = argparse.ArgumentParser(prog="duologue db", description="maintain the store")
    parser.add_argument("action", choices=["status", "check", "backup", "rollback"])
    parser.add_argument("backup", nargs="?", help="rollback: the backup's name or a unique prefix (default: newest)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(args_list)
    paths = locate()
    try:
        if args.action == "status":
            result = status(paths)
            text = status_text(result)
            code = EXIT_ERROR if result["damage"] else 0
        elif args.action == "check":
            bar = _Bar()
            try:
                result = check(paths, bar)
            finally:
                bar.end()
            text = (f"the store at {result['path']} is whole: {result['records']} records read in "
                    f"{result['seconds']:.1f} s" if result["ok"] else
                    f"the store at {result['path']} is DAMAGED: {result['problem']}; restore the newest "
                    "backup with `duologue db rollback` (with the daemon stopped)")
            code = 0 if result["ok"] else EXIT_ERROR
        elif args.action == "backup":
            result = backup(paths)
            text = f"backed up the store (v{result['version']}) to {result['path']}"
            code = 0
        else:
            result = rollback(paths, args.backup)
            text = (f"restored backup {result['restored']} (schema version {result['version']})"
                    + (f"; the store it replaced is backup {result['previous_store_saved_as']}"
                       if result["previous_store_saved_as"] else ""))
            code = 0
    except MaintenanceError as exc:
        print(f"duologue: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except lmdb.Error as exc:
        print(f"duologue: the store could not be read: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(json.dumps(result, indent=2) if args.json else text)
    return code
