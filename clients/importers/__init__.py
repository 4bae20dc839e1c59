"""Importers: other tools' chat histories parsed into the protocol's import records.

Pure parsers (bytes in, ``ImportSession`` records and a report out): the daemon, the
one writer of the store, receives the records through ``import/run``. Formats:
``claude_code`` (Claude Code JSONL transcripts and their subagents), ``gemini_cli``
(Gemini CLI sessions, subagent sessions, saved chats and restore points; which project
a folder names is ``gemini_projects``) and ``exported`` (duologue's own JSON export).
``discovery`` finds and recognises the files; ``batches`` merges sessions and splits
requests. The way back, into the tools' own files, is ``clients/exporters``.
"""

from .batches import merge, requests
from .discovery import SOURCES, default_paths, load
from .records import ParseReport, Problem

__all__ = ["SOURCES", "ParseReport", "Problem", "default_paths", "load", "merge", "requests"]
