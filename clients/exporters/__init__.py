"""Exporters: a duologue session handed back to another tool, in the files that tool
itself writes, so it can list and continue the session (``duologue export --format
claude-code | gemini-cli``). Pure: an ``ExportDocument`` in, bytes out; where the file
goes is the tool's own layout (each module says it). Each module also says what the
other tool cannot hold; everything else comes back unchanged through ``duologue import``.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

NAMESPACE = uuid.UUID("6f1d8f4e-3c1b-4f8e-9a51-2d0b7c6e5a43")
"""Names exported sessions and lines (uuid5 of duologue's ids), so exporting a session
again names the same file and the same lines."""


def iso_time(t: datetime) -> str:
    """ISO 8601 in UTC to the microsecond duologue keeps (the tools write milliseconds
    and read any precision)."""
    return t.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
