"""Finding the other tools' files, telling their formats apart, and parsing them.

Each file is read once and recognised by its content, not only its name, so a
directory of mixed files (or a file copied elsewhere) imports right. A file that
cannot be read, or is not valid JSON where a whole document is expected, is a
problem in the report; the other files are parsed all the same.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from duologue.protocol import methods as m

from . import claude_code, exported, gemini_cli, opencode
from .gemini_projects import GeminiProjects
from .records import ParseReport

SOURCES = ("claude-code", "gemini-cli", "opencode", "duologue")
SUFFIXES = (".jsonl", ".json")


def default_paths(source: str | None, environ: dict[str, str] | None = None) -> list[Path]:
    """Where the tools keep their history for this user."""
    env = os.environ if environ is None else environ
    home = Path(env.get("HOME") or Path.home())
    claude = Path(env.get("CLAUDE_CONFIG_DIR") or home / ".claude") / "projects"
    gemini = Path(env.get("GEMINI_CLI_HOME") or home) / ".gemini" / "tmp"
    opencode_data = Path(env.get("XDG_DATA_HOME") or home / ".local" / "share") / "opencode"
    return {"claude-code": [claude], "gemini-cli": [gemini], "opencode": [opencode_data]}.get(
        source or "", [claude, gemini, opencode_data])


def find_files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*") if p.suffix in SUFFIXES and p.is_file())


def detect(path: Path, data: bytes) -> tuple[str | None, Any]:
    """The format of a file ("claude-code", "gemini-jsonl", "gemini-session",
    "gemini-checkpoint", "gemini-restore", "duologue") and, for a JSON document, its
    parsed value."""
    if path.suffix == ".jsonl":
        for raw in data.splitlines()[:50]:
            try:
                rec = json.loads(raw)
            except (ValueError, UnicodeDecodeError, RecursionError):
                continue
            if not isinstance(rec, dict):
                continue
            if "projectHash" in rec or "$set" in rec or "$rewindTo" in rec or rec.get("type") == "gemini":
                return "gemini-jsonl", None
            if "type" in rec or "uuid" in rec or "parentUuid" in rec or "sessionId" in rec:
                return "claude-code", None
        return None, None
    doc = json.loads(data)  # ValueError: the caller reports the file as broken
    if isinstance(doc, dict) and doc.get("format") == "duologue-export":
        return "duologue", doc
    if isinstance(doc, dict) and isinstance(doc.get("messages"), list) and "sessionId" in doc:
        return "gemini-session", doc
    if isinstance(doc, dict) and isinstance(doc.get("toolCall"), dict) and "clientHistory" in doc:
        return "gemini-restore", doc
    if isinstance(doc, dict) and isinstance(doc.get("history"), list):
        return "gemini-checkpoint", doc
    if isinstance(doc, list) and doc and all(isinstance(c, dict) and "role" in c and "parts" in c for c in doc):
        return "gemini-checkpoint", doc
    return None, doc


def _source_of(kind: str) -> str:
    return "gemini-cli" if kind.startswith("gemini") else kind


def load(roots: list[Path], report: ParseReport, *, source: str | None = None,
         project_of: Callable[[str], str] = lambda p: p,
         known_projects: list[str] = ()) -> list[m.ImportSession]:
    """Every session found under ``roots`` (files or directories), Claude Code first,
    so the project directories it names let Gemini's project hashes be resolved."""
    found: list[tuple[str, Path, bytes, Any]] = []
    stores: list[Path] = []
    for root in roots:
        if not root.exists():
            report.broken(root, None, "no such file or directory")
            continue
        here = opencode.stores(root)
        if source not in (None, "opencode"):
            report.skip(f"store from opencode (importing {source} only)", len(here))
        else:
            stores += here
        for path in find_files(root):
            if any(path == s or path.is_relative_to(s) for s in here):
                continue  # a record of an opencode store, read with its store
            try:
                data = path.read_bytes()
                kind, doc = detect(path, data)
            except OSError as exc:
                report.broken(path, None, f"unreadable: {exc.strerror or exc}")
                continue
            except (ValueError, UnicodeDecodeError) as exc:
                report.broken(path, None, f"not valid JSON ({str(exc)[:80]})")
                continue
            except RecursionError:
                report.broken(path, None, "not valid JSON (nested too deeply)")
                continue
            report.files += 1
            if kind is None:
                report.skip("file of no known format")
            elif source is not None and _source_of(kind) != source:
                report.skip(f"file from {_source_of(kind)} (importing {source} only)")
            else:
                found.append((kind, path, data, doc))
    claude: list[m.ImportSession] = []
    out: list[m.ImportSession] = []
    for kind, path, data, doc in found:
        if kind == "claude-code":
            claude += _guarded(path, report, lambda: claude_code.parse(path, data, report, project_of))
        elif kind == "duologue":
            out += _guarded(path, report, lambda: exported.parse(path, data, report))
    cwds = [*known_projects, *(s.metadata["cwd"] for s in claude if "cwd" in s.metadata)]
    projects = GeminiProjects(cwds, project_of)
    projects.prime([path for kind, path, _, _ in found if kind.startswith("gemini")])
    resolve = projects.of
    gemini: list[m.ImportSession] = []
    for kind, path, data, doc in found:
        if kind == "gemini-jsonl":
            gemini += _guarded(path, report, lambda: gemini_cli.parse_session_jsonl(path, data, report, resolve))
        elif kind == "gemini-session":
            gemini += _guarded(path, report, lambda: gemini_cli.parse_session_json(path, doc, report, resolve))
        elif kind == "gemini-checkpoint":
            gemini += _guarded(path, report, lambda: gemini_cli.parse_checkpoint(
                path, doc, gemini_cli.file_time(path), report, resolve))
        elif kind == "gemini-restore":
            gemini += _guarded(path, report, lambda: gemini_cli.parse_restore_point(
                path, doc, gemini_cli.file_time(path), report, resolve))
    for store in stores:
        report.files += store.is_file()
        out += _guarded(store, report, lambda: opencode.parse(store, report, project_of))
    return parents_first([*claude_code.link_subagents(claude), *out, *gemini])


def parents_first(sessions: list[m.ImportSession]) -> list[m.ImportSession]:
    """Subagents after every other session, so the daemon has made a child's parent
    when it writes the child (and can link the two)."""
    return sorted(sessions, key=lambda s: "parent_external_id" in s.metadata)


def _guarded(path: Path, report: ParseReport,
             parse: Callable[[], list[m.ImportSession]]) -> list[m.ImportSession]:
    """A file's sessions; a structure nested deeper than Python can walk is that
    file's problem, not the end of the import."""
    try:
        return parse()
    except RecursionError:
        report.broken(path, None, "nested too deeply to read")
        return []
