"""The daemon's directories on disk: created private, checked, tightened.

Everything the daemon writes is its user's alone: the daemon runs with umask 077,
its data, state, config and runtime directories are 0700 and its files 0600, and a
home made by an older duologue (0755 directories, 0644 store files) is tightened
when the daemon starts. A directory it cannot make private is refused with a
message that names it and says why (a file where a directory should be, a
read-only home, a parent owned by someone else).

The runtime directory (the socket's) may be in a shared place; when it is not
private (another user made it first, or it is a symlink), a fresh one is made with
``mkdtemp`` and named in ``state/runtime-dir`` for clients (see ``protocol.paths``).
"""

from __future__ import annotations

import logging
import os
import stat
import tempfile
from pathlib import Path

import msgspec

from duologue.protocol.paths import Paths, make_private_dir, private_dir_problem, runtime_pointer_target

log = logging.getLogger(__name__)

UMASK = 0o077


class HomeError(Exception):
    """A directory of the daemon's cannot be used; the message says which and why."""


def prepare_home(paths: Paths) -> None:
    """Create the data, state and config directories (0700) and tighten what an older
    version left readable by others. Raises :class:`HomeError` naming the directory."""
    for d in (paths.data_dir, paths.state_dir, paths.config_dir):
        _make_dir(Path(d))
    for d in (paths.data_dir, paths.state_dir, paths.config_dir):
        tighten(Path(d))


def _make_dir(d: Path) -> None:
    for parent in (d.parent, *d.parent.parents):
        if parent.exists() and not parent.is_dir():
            raise HomeError(f"{parent} is a file, not a directory; duologue keeps its files in "
                            f"{parent} (DUOLOGUE_HOME or the platform's directories): move that file "
                            "away or point DUOLOGUE_HOME at a directory")
        if parent.exists():
            break
    try:
        d.mkdir(mode=0o700, parents=True, exist_ok=True)
    except FileExistsError:
        raise HomeError(f"{d} is a file, not a directory; move it away") from None
    except OSError as exc:
        raise HomeError(f"cannot create {d}: {exc.strerror} (is the home read-only? "
                        "set DUOLOGUE_HOME to a directory you can write)") from None
    if not os.access(d, os.W_OK | os.X_OK):
        raise HomeError(f"{d} is not writable: duologue needs to write there "
                        "(set DUOLOGUE_HOME to a directory you can write)")


def tighten(root: Path) -> None:
    """Directories 0700, files 0600, under ``root`` (its own entries only: symlinks
    are not followed, other owners' files are left alone)."""
    uid = os.geteuid()
    for dirpath, dirnames, filenames in os.walk(root):
        for name in (".", *dirnames, *filenames):
            p = os.path.join(dirpath, name)
            try:
                info = os.lstat(p)
            except OSError:
                continue
            if stat.S_ISLNK(info.st_mode) or info.st_uid != uid:
                continue
            want = 0o700 if stat.S_ISDIR(info.st_mode) else 0o600
            if stat.S_IMODE(info.st_mode) & ~want:
                try:
                    os.chmod(p, stat.S_IMODE(info.st_mode) & want)
                except OSError as exc:
                    log.warning("could not make %s private: %s", p, exc.strerror)


def settle_runtime_dir(paths: Paths) -> Paths:
    """The runtime dir to bind in, made private. Call with the daemon lock held: the
    pointer file it may write is then one daemon's alone.

    A fitting pointer wins (it was written because the usual dir was unsafe); else
    the usual dir, created 0700 or accepted when fit; else a fresh ``mkdtemp`` dir,
    named in the pointer."""
    target = runtime_pointer_target(paths)
    if target is not None:
        return msgspec.structs.replace(paths, runtime_dir=target)
    problem = make_private_dir(paths.runtime_dir)
    pointer = Path(paths.runtime_pointer)
    if problem is None:
        pointer.unlink(missing_ok=True)
        return paths
    fresh = Path(tempfile.mkdtemp(prefix=f"duologue-{os.geteuid()}-"))  # 0700, a new name
    if (found := private_dir_problem(fresh)) is not None:
        os.rmdir(fresh)
        raise HomeError(f"no private runtime directory: {problem}; and {found}. "
                        "Set XDG_RUNTIME_DIR or DUOLOGUE_HOME to a directory only you can write")
    staging = pointer.with_name(pointer.name + ".new")
    staging.write_text(f"{fresh}\n", encoding="utf-8")
    os.chmod(staging, 0o600)
    os.replace(staging, pointer)
    log.warning("the runtime directory is not safe to use (%s); using %s instead (named in %s)",
                problem, fresh, pointer)
    return msgspec.structs.replace(paths, runtime_dir=type(paths.runtime_dir)(str(fresh)))
