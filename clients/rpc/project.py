"""Which project a directory belongs to: the one rule every client of ours applies.

A session's ``project_id`` groups it with the others of its project. The CLI, the
chat and the language server must name one repository the same way wherever they
start (its root, a subdirectory, an editor's workspace folder), or its sessions split
into several projects; so the id is the git root above the directory (a ``.git``
directory or file, as a worktree or submodule has), else the directory itself,
always as an absolute path with symlinks resolved.
"""

from __future__ import annotations

import os
from pathlib import Path


def project_of(path: str | os.PathLike[str] | None = None) -> str:
    """The project id of ``path`` (default: the working directory)."""
    start = Path(path or os.getcwd()).resolve()
    for directory in (start, *start.parents):
        if (directory / ".git").exists():
            return str(directory)
    return str(start)
