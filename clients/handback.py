"""``duologue export --format claude-code | gemini-cli``: a session written into the other
tool's own folder (clients/exporters says how each file is laid out), so that tool
lists it and can continue it.

The file is named from the session's id, so exporting again names the same file. A
file already there is left alone unless it holds exactly what would be written: the
other tool may have continued the session in it, and that work is the user's (import
it first; ``duologue import`` appends what is new). New folders and files are private
to the user, as the tools make their own.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from duologue.protocol import methods as m

from .exporters import claude_code, gemini_cli
from .rpc.project import project_of


class Refused(Exception):
    """The export would overwrite something else; nothing was written."""


def hand_back(doc: m.ExportDocument, tool: str, output: str | None,
              environ: dict[str, str] | None = None) -> dict[str, Any]:
    env = os.environ if environ is None else environ
    home = Path(env.get("HOME") or Path.home())
    root = doc.session.project_id or project_of(None)
    if tool == "claude-code":
        data = claude_code.transcript(doc, root)
        sid = claude_code.session_uuid(doc)
        folder = Path(env.get("CLAUDE_CONFIG_DIR") or home / ".claude") / "projects" / claude_code.folder_name(root)
        target = Path(output) if output else folder / f"{sid}.jsonl"
        how = f"continue it in {root} with: claude --resume {sid}"
    else:
        data = gemini_cli.session_file(doc, root)
        sid = gemini_cli.session_id(doc)
        gemini = Path(env.get("GEMINI_CLI_HOME") or home) / ".gemini"
        target = Path(output) if output else gemini_cli.project_folder(gemini, root) / "chats" / gemini_cli.file_name(doc)
        how = f"continue it in {root} with: gemini --resume {sid}"
    unchanged = _write(target, data)
    return {"wrote": str(target), "session": sid, "project": root, "unchanged": unchanged, "continue": how}


def _write(target: Path, data: bytes) -> bool:
    """Write ``data`` to ``target`` unless something else is there. True when the
    file already held exactly this."""
    if target.exists():
        if target.read_bytes() == data:
            return True
        raise Refused(f"{target} exists and holds something else (the tool may have continued the session); "
                      f"import it first with `duologue import {target}`, or give -o FILE")
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return False
