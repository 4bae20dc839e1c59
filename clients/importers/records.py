"""What every importer shares: the parse report, and helpers that build the protocol's
import records from loosely typed JSON. Pure: values in, records out."""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from duologue.protocol.entities import TextBlock

TITLE_MAX = 200


class Broken(Exception):
    """A record that cannot be read; the parser reports it and goes on."""


@dataclass(frozen=True)
class Problem:
    path: str
    where: str | None
    """A line ("line 17") or a place in a JSON document ("messages[3]"); None for
    the whole file."""
    what: str

    def __str__(self) -> str:
        return f"{self.path}{':' + self.where if self.where else ''}: {self.what}"


@dataclass
class ParseReport:
    """What the parsers read, kept and skipped. Broken input is a problem, listed;
    records of kinds an importer does not keep are counted by kind, never fatal."""

    files: int = 0
    sessions: int = 0
    messages: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    problems: list[Problem] = field(default_factory=list)

    def skip(self, what: str, n: int = 1) -> None:
        if n:
            self.skipped[what] += n

    def broken(self, path: object, where: str | None, what: str) -> None:
        self.problems.append(Problem(shown(str(path)), where, what))

    def to_json(self) -> dict[str, Any]:
        return {"files": self.files, "sessions": self.sessions, "messages": self.messages,
                "skipped": dict(sorted(self.skipped.items())),
                "problems": [{"path": p.path, "where": p.where, "what": p.what} for p in self.problems]}


def shown(name: str) -> str:
    """A file name as text: bytes that are not UTF-8 (kept by Python as surrogates)
    become ``\\xNN`` escapes, so the name can be printed and sent as JSON."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def parse_time(value: Any) -> datetime:
    """An ISO 8601 time as the tools write it ("2025-08-23T19:08:48.926Z"); a time
    without an offset is taken as UTC."""
    if not isinstance(value, str) or not value:
        raise Broken("no timestamp")
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Broken(f"unreadable timestamp {value[:40]!r}") from None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def title_from(text: str | None, fallback: str) -> str:
    """A one-line title: the text's first non-blank line, shortened."""
    for line in (text or "").splitlines():
        line = " ".join(line.split())
        if line:
            return line if len(line) <= 80 else line[:79] + "…"
    return fallback[:TITLE_MAX]


_WRAPPERS = re.compile(r"<(local-command-stdout|local-command-stderr|local-command-caveat|system-reminder|"
                       r"session_context|hook_context|command-message|command-args)>.*?</\1>", re.S)
_COMMAND = re.compile(r"<command-name>(.*?)</command-name>(?:.*?<command-args>(.*?)</command-args>)?", re.S)
_TAG = re.compile(r"</?[a-zA-Z][\w-]*>")


def prompt_title(text: str | None) -> str | None:
    """What a person typed, for a title: a slash command the tool wrapped in its
    markup (``<command-name>/init</command-name>``) as the command, the tool's own
    output and context blocks left out; None when nothing of the person is left."""
    if not text:
        return None
    command = _COMMAND.search(text)
    if command:
        return " ".join(x.strip() for x in command.groups() if x and x.strip()) or None
    cleaned = _TAG.sub("", _WRAPPERS.sub("", text)).strip()
    return cleaned or None


def clip_title(title: str) -> str:
    title = " ".join(title.split())
    return title if len(title) <= TITLE_MAX else title[: TITLE_MAX - 1] + "…"


def first_text(blocks: list[Any]) -> str | None:
    for b in blocks:
        if isinstance(b, TextBlock) and b.text.strip():
            return b.text
    return None


def as_text(value: Any) -> str:
    """Tool output of any JSON shape as the text a reader sees."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        parts = []
        for item in value:
            if isinstance(item, dict) and isinstance(item.get("text"), str):
                parts.append(item["text"])
            elif isinstance(item, dict) and item.get("type") in ("image", "document"):
                parts.append(f"[{item['type']}]")
            else:
                parts.append(as_text(item))
        return "\n".join(parts)
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def as_int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0
