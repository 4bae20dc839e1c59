"""What the chat was given but the daemon has not acknowledged, kept on disk.

A prompt typed while the daemon is away waits in the client until the daemon
answers; if the person quits first it would be lost without a word. So every prompt
not yet acknowledged, and the text left in the input box, is kept per session in
``<state dir>/chat-drafts.json`` (0600, written whole and renamed), and given back
when the chat opens that session again.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FILE = "chat-drafts.json"


@dataclass
class Draft:
    pending: list[dict[str, Any]] = field(default_factory=list)
    """``{"text": ..., "after_seq": ...}``: sent but not acknowledged, the session's
    last seq when typed (a prompt the session holds after that did arrive)."""
    input: str = ""

    @property
    def empty(self) -> bool:
        return not self.pending and not self.input


class Drafts:
    def __init__(self, state_dir: str | os.PathLike[str]):
        self.path = Path(state_dir) / FILE

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def load(self, session_id: str) -> Draft:
        raw = self._read().get(session_id) or {}
        pending = [p for p in raw.get("pending", []) if isinstance(p, dict) and isinstance(p.get("text"), str)]
        text = raw.get("input") if isinstance(raw.get("input"), str) else ""
        return Draft(pending=pending, input=text)

    def save(self, session_id: str, draft: Draft) -> None:
        data = self._read()
        if draft.empty:
            if session_id not in data:
                return
            data.pop(session_id)
        else:
            data[session_id] = {"pending": draft.pending, "input": draft.input}
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        staging = self.path.with_name(self.path.name + f".{os.getpid()}")
        fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f)
            if draft.pending:  # a prompt the daemon never saw must survive a crash too
                f.flush()
                os.fsync(f.fileno())
        os.replace(staging, self.path)
