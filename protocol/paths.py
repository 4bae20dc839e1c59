"""Where a daemon's files live: part of the contract, so any client can find it.

Pure: the caller passes the environment's answers (``$DUOLOGUE_HOME``, the
platform's directories, the uid); nothing here touches the file system.

With ``$DUOLOGUE_HOME`` set, everything lives under it: ``data/`` (the store),
``state/`` (logs), ``config/config.toml`` and ``run/`` (socket and lock). Without
it, the platform's per-user directories are used. ZeroMQ ``ipc://`` paths are
limited to about 107 bytes, so a runtime directory too deep for the socket is
replaced by a short one in the temp dir, named from a hash of the long one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import PurePath, PurePosixPath

IPC_PATH_LIMIT = 100
SOCKET_NAME = "daemon.sock"
LOCK_NAME = "daemon.lock"


@dataclass(frozen=True)
class PlatformDirs:
    data: str
    state: str
    config: str
    runtime: str
    temp: str


@dataclass(frozen=True)
class Paths:
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
        return self.runtime_dir / LOCK_NAME

    @property
    def endpoint(self) -> str:
        return f"ipc://{self.socket_path}"


def resolve_paths(home: str | None, platform: PlatformDirs, uid: int) -> Paths:
    if home:
        root = PurePosixPath(home)
        paths = Paths(root / "data", root / "state", root / "config", root / "run")
    else:
        paths = Paths(
            PurePosixPath(platform.data),
            PurePosixPath(platform.state),
            PurePosixPath(platform.config),
            PurePosixPath(platform.runtime),
        )
    if len(str(paths.socket_path)) > IPC_PATH_LIMIT:
        digest = hashlib.sha256(str(paths.runtime_dir).encode()).hexdigest()[:16]
        short = PurePosixPath(platform.temp) / f"duologue-{uid}-{digest}"
        paths = Paths(paths.data_dir, paths.state_dir, paths.config_dir, short)
    return paths


def platform_dirs() -> PlatformDirs:
    """The platform's per-user directories for duologue (computed, not created)."""
    import tempfile
    import warnings

    import platformdirs

    with warnings.catch_warnings():
        # Without XDG_RUNTIME_DIR platformdirs warns and falls back to a per-user
        # temp dir, which is what we want; the warning would only confuse a CLI user.
        warnings.simplefilter("ignore")
        runtime = platformdirs.user_runtime_dir("duologue")
    return PlatformDirs(
        data=platformdirs.user_data_dir("duologue"),
        state=platformdirs.user_state_dir("duologue"),
        config=platformdirs.user_config_dir("duologue"),
        runtime=runtime,
        temp=tempfile.gettempdir(),
    )


def locate(environ: dict[str, str] | None = None) -> Paths:
    """The paths for this user and this ``$DUOLOGUE_HOME`` (read from ``environ``)."""
    import os

    env = os.environ if environ is None else environ
    return resolve_paths(env.get("DUOLOGUE_HOME") or None, platform_dirs(), os.getuid())
