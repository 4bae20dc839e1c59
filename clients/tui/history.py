"""The prompts a person sent in one project, kept across chats for up/down recall.

Shells taught people that up-arrow brings back what they typed; a chat that forgets
on quit makes them retype a long prompt. One file per project under
``<state dir>/prompt-history/`` (the directory 0700, each file 0600: prompts may hold
code and secrets a person pasted), one JSON string per line, newest last, so a
multi-line prompt stays one entry. Written whole and renamed, so a crash leaves the old
file or the new one, never half of one.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

DIR = "prompt-history"
KEEP = 500
"""Entries kept per project; older ones are dropped when a new one is added."""


def history_path(state_dir: str | os.PathLike[str], project: str) -> Path:
    """The file of ``project`` (a hash of its path names it: paths hold slashes and may
    be long)."""
    digest = hashlib.sha256(project.encode("utf-8")).hexdigest()[:24]
    return Path(state_dir) / DIR / f"{digest}.jsonl"


class PromptHistory:
    """The entries of one project, oldest first, and where up/down is among them."""

    def __init__(self, state_dir: str | os.PathLike[str], project: str) -> None:
        self.path = history_path(state_dir, project)
        self.entries = self._read()
        self._at = len(self.entries)
        self._draft = ""

    def _read(self) -> list[str]:
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except OSError:
            return []
        entries = []
        for line in lines:
            try:
                value = json.loads(line)
            except ValueError:
                continue  # a line another version wrote differently: skip it, keep the rest
            if isinstance(value, str):
                entries.append(value)
        return entries[-KEEP:]

    def add(self, text: str) -> None:
        """Remember ``text`` as the newest entry (a repeat of the newest is not doubled)
        and start browsing from the end again."""
        if text and (not self.entries or self.entries[-1] != text):
            self.entries = [*self.entries, text][-KEEP:]
            self._write()
        self._at = len(self.entries)
        self._draft = ""

    def _write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        staging = self.path.with_name(self.path.name + f".{os.getpid()}")
        fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(e, ensure_ascii=False) + "\n" for e in self.entries)
        os.replace(staging, self.path)

    def older(self, current: str) -> str | None:
        """The entry before the one shown (``current`` is kept as the draft when
        browsing starts), or None at the oldest."""
        if self._at == 0:
            return None
        if self._at == len(self.entries):
            self._draft = current
        self._at -= 1
        return self.entries[self._at]

    def newer(self) -> str | None:
        """The entry after the one shown, the draft after the newest, None when not
        browsing."""
        if self._at >= len(self.entries):
            return None
        self._at += 1
        return self.entries[self._at] if self._at < len(self.entries) else self._draft
