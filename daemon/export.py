"""Sessions moving out: one session, as the document ``duologue import`` reads back
(format ``duologue-export``, version 1), a page of messages at a time: a long
session whole would pass the frame limit. The client joins the pages."""

from __future__ import annotations

from duologue.protocol import methods as m

from .sessions import Sessions, utcnow


def export_session(sessions: Sessions, p: m.ExportParams) -> m.ExportDocument:
    got = sessions.get(m.GetParams(session_id=p.session_id, since_seq=p.since_seq, limit=p.limit))
    return m.ExportDocument(
        format="duologue-export", version=1, exported_at=utcnow(), session=got.session,
        messages=got.messages, switches=got.switches, tasks=got.tasks,
        summaries=sessions.store.summaries(got.session.id), next=got.next)
