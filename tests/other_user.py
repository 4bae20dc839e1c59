"""Running code as another local user (tests only): the uid an attacker would have.

Needs root (skipped otherwise). The child runs the system's Python with this
checkout's virtualenv added as a site directory, since the venv's own interpreter
may sit below a directory other users cannot enter.

Importable as ``other_user`` (pytest puts tests/ on the path).
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sysconfig
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

OTHER_UID = 65534  # nobody
IS_ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not IS_ROOT, reason="needs root to run a child as another uid (nobody)")

_SITE = sysconfig.get_paths()["purelib"]
_PYTHON = shutil.which("python3", path="/usr/bin:/bin") or "/usr/bin/python3"
_PRELUDE = "import sys; sys.argv[0] = 'duologue'\n"
_CUSTOMIZE: Path | None = None


def _customize_dir() -> Path:
    """A directory others may read holding a ``sitecustomize`` that adds the venv's
    site dir, so the child and every process it starts (a daemon) find duologue."""
    global _CUSTOMIZE
    if _CUSTOMIZE is None:
        d = Path(tempfile.mkdtemp(prefix="duologue-other-site-", dir="/tmp"))
        (d / "sitecustomize.py").write_text(f"import site\nsite.addsitedir({_SITE!r})\n")
        d.chmod(0o755)
        (d / "sitecustomize.py").chmod(0o644)
        atexit.register(shutil.rmtree, d, True)
        _CUSTOMIZE = d
    return _CUSTOMIZE


def _drop() -> None:
    os.setgroups([])
    os.setgid(OTHER_UID)
    os.setuid(OTHER_UID)


def run_as_other(code: str, *args: str, env: dict[str, str] | None = None,
                 timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run Python ``code`` (``sys.argv[1:]`` = ``args``) as :data:`OTHER_UID`."""
    # the code under test first, when it is not the installed one
    pythonpath = [p for p in (os.environ.get("PYTHONPATH"), str(_customize_dir())) if p]
    base = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8", "PYTHONPATH": ":".join(pythonpath)}
    return subprocess.run([_PYTHON, "-c", _PRELUDE + code, *args], env={**base, **(env or {})},
                          preexec_fn=_drop, capture_output=True, text=True, timeout=timeout, cwd="/")


def cli_as_other(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``duologue ARGS`` as :data:`OTHER_UID`."""
    return run_as_other("from duologue.clients.cli import main\nsys.exit(main(sys.argv[1:]))", *args, env=env)


@contextmanager
def shared_base() -> Iterator[Path]:
    """A directory in /tmp that other users may enter (0755), removed afterwards."""
    base = Path(tempfile.mkdtemp(prefix="duologue-shared-", dir="/tmp"))
    base.chmod(0o755)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)
