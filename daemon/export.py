"""Sessions moving out: one session whole, as the document ``duologue import`` reads
back (format ``duologue-export``, version 1)."""

from __future__ import annotations

from duologue.protocol import methods as m

from .sessions import Sessions, utcnow


def export_session(sessions: Sessions, session_id: str) -> m.ExportDocument:
    got = sessions.get(m.GetParams(session_id=session_id))
    return m.ExportDocument(
        format="duologue-export", version=1, exported_at=utcnow(), session=got.session,
        messages=got.messages, switches=got.switches, tasks=got.tasks,
        summaries=sessions.store.summaries(session_id))
