"""What Tab does in the prompt: complete a slash command or an ``@path`` mention.

Pure but for listing directories: the text before the cursor in, a
:class:`Completion` out (what to put in place of the word being typed, and what to
show under the prompt when there is more than one way on). Paths are relative to the
project root, the same root a mention is read from when the prompt is sent
(:mod:`.mentions`), so what completes is what attaches.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

SHOWN = 12
"""Candidates listed under the prompt at most (the rest are counted)."""


@dataclass(frozen=True)
class Completion:
    start: int
    """Where the replaced word starts in the text before the cursor."""
    text: str
    """What replaces it (the word itself when nothing more is certain)."""
    hint: str = ""
    """Candidates or a usage line to show; empty when the completion is final."""


def current_word(before: str) -> tuple[int, str]:
    """The word the cursor ends (after the last blank) and where it starts."""
    start = max(before.rfind(" "), before.rfind("\n"), before.rfind("\t")) + 1
    return start, before[start:]


def complete(before: str, commands: Mapping[str, str], root: str | os.PathLike[str] | None) -> Completion | None:
    """Complete the word before the cursor, or None when there is nothing to complete
    there (Tab then indents). ``commands`` maps each slash command to its usage
    (``"MODEL"``, ``"[TITLE]"``, ``""``)."""
    start, word = current_word(before)
    if word.startswith("/") and start == 0:
        return _command(word, commands)
    if word.startswith("@") and root is not None:
        return _path(start, word, Path(root))
    return None


def _command(word: str, commands: Mapping[str, str]) -> Completion:
    names = sorted(n for n in commands if n.startswith(word))
    if not names:
        return Completion(0, word, f"no command starts with {word}; /help lists them")
    if len(names) == 1:
        name = names[0]
        usage = commands[name]
        return Completion(0, name + " ", f"{name} {usage}" if usage else "")
    return Completion(0, os.path.commonprefix(names), _listing(
        [f"{n} {commands[n]}".rstrip() for n in names]))


def _path(start: int, word: str, root: Path) -> Completion:
    typed = word[1:]
    folder, _, prefix = typed.rpartition("/")
    where = root / folder if folder else root
    try:
        if not where.resolve().is_relative_to(root.resolve()):
            return Completion(start, word, "a mention names a file inside the project")
        entries = sorted(
            (e.name + ("/" if e.is_dir() else ""))
            for e in os.scandir(where)
            if e.name.startswith(prefix) and (prefix.startswith(".") or not e.name.startswith(".")))
    except OSError:
        entries = []
    if not entries:
        return Completion(start, word, f"no file matches {word} in {root}")
    base = "@" + (folder + "/" if folder else "")
    if len(entries) == 1:
        only = entries[0]
        return Completion(start, base + only + ("" if only.endswith("/") else " "))
    return Completion(start, base + os.path.commonprefix(entries), _listing(entries))


def _listing(items: list[str]) -> str:
    more = len(items) - SHOWN
    return "  ".join(items[:SHOWN]) + (f"  … {more} more" if more > 0 else "")
