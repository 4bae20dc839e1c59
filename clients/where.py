"""``duologue paths``: where duologue keeps everything, for a person who wants to
back it up, look into it or remove it (the README's uninstall steps list them
through this command rather than guessing the platform's directories).

It reads no daemon and creates nothing: the paths are what ``locate`` resolves from
``$DUOLOGUE_HOME`` or the platform's per-user directories.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from duologue.protocol.paths import Paths


def paths_report(paths: Paths) -> dict[str, str]:
    """Each directory and the files in them a person may look for, by what they hold."""
    return {
        "data": str(paths.data_dir),
        "store": str(paths.store_dir),
        "state": str(paths.state_dir),
        "log": str(paths.log_file),
        "config": str(paths.config_dir),
        "config_file": str(paths.config_file),
        "runtime": str(paths.runtime_dir),
        "socket": str(paths.socket_path),
        "command": _command(),
    }


def _command() -> str:
    """The console script of this installation (what a ~/.local/bin link points at)."""
    return str(Path(sys.executable).with_name("duologue"))


def paths_text(report: dict[str, str]) -> str:
    width = max(len(k) for k in report)
    lines = [f"{k:<{width}}  {v}{'' if os.path.exists(v) else '  (not created yet)'}"
             for k, v in report.items()]
    lines.append("to uninstall: `duologue daemon stop`, then remove the data, state, config and runtime "
                 "directories above, the venv, and any link to the command (~/.local/bin/duologue)")
    return "\n".join(lines)
