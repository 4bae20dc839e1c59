"""Where a daemon's files live: part of the contract, so any client can find it.

``resolve_paths`` is pure: the caller passes the environment's answers
(``$DUOLOGUE_HOME``, the platform's directories, the uid). ``locate`` asks the
environment and the disk.

With ``$DUOLOGUE_HOME`` set, everything lives under it: ``data/`` (the store),
``state/`` (logs and the daemon lock), ``config/config.toml`` and ``run/`` (the
socket). Without it, the platform's per-user directories are used. ZeroMQ ``ipc://``
paths are limited to about 107 bytes, so a runtime directory too deep for the socket
is replaced by a short one in the temp dir, named from a hash of the long one.

A runtime directory in a shared place (that short one, or platformdirs' own
``/tmp/runtime-<uid>``) could be pre-created by another user, or be a symlink to a
directory they own. It is used only when :func:`private_dir_problem` finds nothing
wrong with it: a real directory, owned by this uid, mode 0700, below parents no other
user can replace. When it fails, the daemon makes a fresh private directory
(``mkdtemp``, an unpredictable name) and writes its path to ``state/runtime-dir``;
:func:`locate` reads that pointer, so clients find the socket there. The lock stays
in the state directory, so one daemon per home holds whatever the runtime dir is.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path, PurePath, PurePosixPath

import msgspec

IPC_PATH_LIMIT = 100
SOCKET_NAME = "daemon.sock"
LOCK_NAME = "daemon.lock"
RUNTIME_POINTER = "runtime-dir"
"""In the state dir: the private runtime dir the daemon chose when the usual one was unsafe."""


# A frozen Struct rather than a dataclass: a dataclass is made by compiling its methods
# at import, some 30 times the cost, paid by every one-shot client at start-up.
class PlatformDirs(msgspec.Struct, frozen=True):
    data: str
    state: str
    config: str
    runtime: str
    temp: str


class Paths(msgspec.Struct, frozen=True):
    data_dir: PurePath
    state_dir: PurePath
    config_dir: PurePath
    runtime_dir: PurePath

    @property
    def store_dir(self) -> PurePath:
        return self.data_dir / "store"

    @property
    def config_file(self) -> PurePath:
        return self.config_dir / "config.toml"

    @property
    def log_file(self) -> PurePath:
        return self.state_dir / "daemon.log"

    @property
    def socket_path(self) -> PurePath:
        return self.runtime_dir / SOCKET_NAME

    @property
    def lock_path(self) -> PurePath:
        """In the state dir, not the runtime dir: the runtime dir may move (see above)."""
        return self.state_dir / LOCK_NAME

    @property
    def runtime_pointer(self) -> PurePath:
        return self.state_dir / RUNTIME_POINTER

    @property
    def endpoint(self) -> str:
        return f"ipc://{self.socket_path}"


def resolve_paths(home: str | None, platform: PlatformDirs, uid: int) -> Paths:
    paths = _home_paths(home) if home else Paths(
        PurePosixPath(platform.data),
        PurePosixPath(platform.state),
        PurePosixPath(platform.config),
        PurePosixPath(platform.runtime),
    )
    return paths if _fits_ipc(paths) else _with_short_runtime(paths, platform.temp, uid)


def _home_paths(home: str) -> Paths:
    root = PurePosixPath(home)
    return Paths(root / "data", root / "state", root / "config", root / "run")


def _fits_ipc(paths: Paths) -> bool:
    return len(str(paths.socket_path)) <= IPC_PATH_LIMIT


def _with_short_runtime(paths: Paths, temp: str, uid: int) -> Paths:
    import hashlib

    digest = hashlib.sha256(str(paths.runtime_dir).encode()).hexdigest()[:16]
    return msgspec.structs.replace(paths, runtime_dir=PurePosixPath(temp) / f"duologue-{uid}-{digest}")


def platform_dirs() -> PlatformDirs:
    """The platform's per-user directories for duologue (computed, not created)."""
    import tempfile
    import warnings

    import platformdirs

    with warnings.catch_warnings():
        # Without XDG_RUNTIME_DIR platformdirs warns and falls back to a per-user
        # temp dir, which is what we want; the warning would only confuse a CLI user.
        warnings.simplefilter("ignore")
        try:
            runtime = platformdirs.user_runtime_dir("duologue")
        except PermissionError:
            # Its fallback, <temp>/runtime-<uid>, is another user's or a symlink: name it
            # anyway; private_dir_problem refuses it and the daemon picks a fresh one.
            runtime = os.path.join(tempfile.gettempdir(), f"runtime-{os.geteuid()}", "duologue")
    return PlatformDirs(
        data=platformdirs.user_data_dir("duologue"),
        state=platformdirs.user_state_dir("duologue"),
        config=platformdirs.user_config_dir("duologue"),
        runtime=runtime,
        temp=tempfile.gettempdir(),
    )


def locate(environ: dict[str, str] | None = None) -> Paths:
    """The paths for this user and this ``$DUOLOGUE_HOME`` (read from ``environ``),
    with the runtime dir the daemon chose when the usual one was unsafe."""
    env = os.environ if environ is None else environ
    home = env.get("DUOLOGUE_HOME") or None
    if home is None:
        return with_runtime_pointer(resolve_paths(None, platform_dirs(), os.getuid()))
    # With a home, as resolve_paths would do, but the platform's directories are never
    # needed (platformdirs is not imported) and the temp dir only for a socket path too
    # long for ipc:// (tempfile writes files to find one): work every CLI command would
    # otherwise pay for.
    paths = _home_paths(home)
    if not _fits_ipc(paths):
        import tempfile

        paths = _with_short_runtime(paths, tempfile.gettempdir(), os.getuid())
    return with_runtime_pointer(paths)


# --- checking directories on disk ---------------------------------------------------------


def private_dir_problem(path: PurePath, uid: int | None = None) -> str | None:
    """What makes ``path`` unfit to hold a private socket, or None when it is fit (or
    missing: then whoever creates it must check again). Fit: not a symlink, a
    directory, owned by ``uid``, mode 0700, and every parent owned by root or ``uid``
    and not writable by others unless sticky (as /tmp), so nobody can swap it."""
    uid = os.geteuid() if uid is None else uid
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return _parents_problem(Path(path).parent, uid)
    except OSError as exc:
        return f"{path} cannot be checked: {exc.strerror}"
    mode = stat.S_IMODE(info.st_mode)
    if stat.S_ISLNK(info.st_mode):
        return f"{path} is a symlink"
    if not stat.S_ISDIR(info.st_mode):
        return f"{path} is not a directory"
    if info.st_uid != uid:
        return f"{path} is owned by uid {info.st_uid}, not by you (uid {uid})"
    if mode != 0o700:
        return f"{path} has mode {mode:04o}, not 0700"
    return _parents_problem(Path(path).parent, uid)


def _parents_problem(parent: Path, uid: int) -> str | None:
    try:
        real = Path(os.path.realpath(parent))
    except OSError as exc:
        return f"{parent} cannot be checked: {exc.strerror}"
    for d in (real, *real.parents):
        try:
            info = os.stat(d)
        except FileNotFoundError:
            continue  # created later, by whoever creates the directory (0700)
        except OSError as exc:
            return f"{d} cannot be checked: {exc.strerror}"
        if info.st_uid not in (0, uid):
            return f"{d} (a parent) is owned by uid {info.st_uid}"
        if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not info.st_mode & stat.S_ISVTX:
            return f"{d} (a parent) is writable by other users"
    return None


def make_private_dir(path: PurePath) -> str | None:
    """Create ``path`` (and missing parents) mode 0700, or accept it when it already
    is fit; None on success, else what is wrong. A directory of ours whose mode is
    merely looser than 0700 (and not writable by others) is tightened."""
    p = Path(path)
    try:
        p.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        p.mkdir(mode=0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        return f"cannot create {p}: {exc.strerror}"
    try:
        info = os.lstat(p)
        if (stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid()
                and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)):
            os.chmod(p, 0o700)
    except OSError:
        pass
    return private_dir_problem(p)


def runtime_pointer_target(paths: Paths) -> PurePosixPath | None:
    """The runtime dir named in ``state/runtime-dir``, when that file is ours and names
    a fit directory; else None."""
    pointer = Path(paths.runtime_pointer)
    try:
        info = os.lstat(pointer)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid():
            return None
        target = pointer.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    if not target or not os.path.isabs(target) or not os.path.isdir(target) \
            or private_dir_problem(PurePosixPath(target)) is not None:
        return None
    return PurePosixPath(target)


def with_runtime_pointer(paths: Paths) -> Paths:
    """``paths`` with the runtime dir the pointer names, when it names a fit one."""
    target = runtime_pointer_target(paths)
    return paths if target is None else msgspec.structs.replace(paths, runtime_dir=target)
