"""Which project a Gemini CLI file belongs to, in either layout Gemini CLI has used.

- Older releases keep a project's files in ``~/.gemini/tmp/<sha256 of its root>/``.
- Current ones (packages/core/src/config/projectRegistry.ts) use a short slug:
  ``~/.gemini/tmp/<slug>/``, the slug's owner written in ``<slug>/.project_root`` and
  every path -> slug in ``~/.gemini/projects.json`` (``{"projects": {path: slug}}``).
  Session files still name their project by ``projectHash`` (the root's SHA-256).

A file is placed by its folder first (the ``.project_root`` marker, then the registry,
then a folder named by a hash), and a session's ``projectHash`` by any path known to
hash to it: the registry's, the markers', and the directories Claude Code sessions ran in.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path

_HASH = re.compile(r"[0-9a-f]{64}")


class GeminiProjects:
    def __init__(self, known_paths: list[str], project_of: Callable[[str], str]) -> None:
        self._project_of = project_of
        self._by_hash = {_sha(p): p for p in known_paths}
        self._registries: dict[Path, dict[str, str]] = {}
        self._markers: dict[Path, str | None] = {}

    def of(self, path: Path, project_hash: str | None = None) -> str | None:
        """The project of a file under ``~/.gemini/tmp`` (or a copy of that tree)."""
        root = self._folder_root(path)
        if root is None and project_hash:
            root = self._by_hash.get(project_hash)
        return None if root is None else self._project_of(root)

    def _folder_root(self, path: Path) -> str | None:
        for folder in path.parents:
            marker = self._marker(folder)
            if marker:
                return marker
            if folder.parent.name == "tmp":
                slug = folder.name
                owner = self._registry(folder.parent.parent).get(slug)
                if owner:
                    return owner
                return self._by_hash.get(slug) if _HASH.fullmatch(slug) else None
        return None

    def _marker(self, folder: Path) -> str | None:
        if folder not in self._markers:
            try:
                owner = (folder / ".project_root").read_text(encoding="utf-8").strip() or None
            except (OSError, UnicodeDecodeError):
                owner = None
            self._markers[folder] = owner
            if owner:
                self._by_hash.setdefault(_sha(owner), owner)
        return self._markers[folder]

    def _registry(self, gemini_dir: Path) -> dict[str, str]:
        """slug -> project root, from ``projects.json`` (an unreadable one is empty,
        as Gemini CLI itself treats it)."""
        if gemini_dir not in self._registries:
            slugs: dict[str, str] = {}
            try:
                doc = json.loads((gemini_dir / "projects.json").read_text(encoding="utf-8"))
                projects = doc.get("projects") if isinstance(doc, dict) else None
                for root, slug in (projects or {}).items():
                    if isinstance(root, str) and isinstance(slug, str):
                        slugs[slug] = root
                        self._by_hash.setdefault(_sha(root), root)
            except (OSError, ValueError, UnicodeDecodeError, RecursionError, AttributeError):
                pass
            self._registries[gemini_dir] = slugs
        return self._registries[gemini_dir]

    def prime(self, paths: list[Path]) -> None:
        """Read the registries and markers above these files before any session's hash
        is resolved, so a session in one folder can name a project known from another."""
        for path in paths:
            self._folder_root(path)


def _sha(path: str) -> str:
    return hashlib.sha256(path.encode()).hexdigest()
