"""``@path`` and ``@path:10-40`` in a prompt: the files it attaches as code context.

A mention is read relative to the project root (where Tab completed it from), and
sent as a code-context block beside the prompt, whose text keeps the mention so the
model sees where it was referred to. A word like ``@bob`` that names no file and does
not look like a path is left as text; one that looks like a path (a slash, a dot or
a line range) but cannot be read, or whose range lies beyond the file, is an error:
the prompt is not sent, rather than sent without the context the person meant.
"""

from __future__ import annotations

import re
from pathlib import Path

import msgspec

from duologue.protocol.entities import CodeContextBlock

from ..code_context import ContextArgError, parse_context_arg

_MENTION = re.compile(r"(?<!\S)@(\S+)")
_TRAILING = ".,;:!?)\"'"
"""Punctuation that ends a sentence after a mention rather than belonging to it."""


def _spec(token: str, root: Path) -> tuple[str, str] | None:
    """(path, range) of a mention, None when the word is not one; trailing punctuation
    is dropped unless a file is named with it."""
    for candidate in (token, token.rstrip(_TRAILING)):
        path, colon, rng = candidate.partition(":")
        if path and (root / path).is_file():
            return path, rng if colon else ""
    path, colon, rng = token.rstrip(_TRAILING).partition(":")
    if "/" in path or "." in path or colon:
        return path, rng
    return None


def attach_mentions(text: str, root: str | Path) -> list[CodeContextBlock]:
    """The blocks the mentions of ``text`` attach, in order, each file range once.
    Raises :class:`ContextArgError` (its message is for the person) when one cannot be
    attached."""
    base = Path(root)
    blocks: list[CodeContextBlock] = []
    seen: set[tuple[str, str]] = set()
    for match in _MENTION.finditer(text):
        spec = _spec(match.group(1), base)
        if spec is None or spec in seen:
            continue
        seen.add(spec)
        path, rng = spec
        target = (base / path).resolve()
        if not target.is_relative_to(base.resolve()):
            raise ContextArgError(f"@{path} is outside the project {base}")
        if not target.is_file():
            raise ContextArgError(f"@{path}: no such file in {base}")
        block = parse_context_arg(f"{target}:{rng}" if rng else str(target))
        blocks.append(msgspec.structs.replace(block, path=path))
    return blocks
