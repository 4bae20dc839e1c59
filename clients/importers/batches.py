"""From parsed sessions to import requests: merging, checking, and splitting.

- ``merge`` makes one session of several (e.g. the same work done partly in Claude
  Code and partly in Gemini CLI): messages interleaved by time, each keeping its model.
- ``requests`` checks every session against the protocol's strict params types (a
  session that would be refused is reported, not sent; a message id seen twice is
  reported and sent once) and packs them into requests
  that stay well under the daemon's frame limit; a session too big for one request is
  sent in pieces with the same external id, which the daemon appends in order.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone

import msgspec

from duologue.protocol import methods as m

from .records import ParseReport, clip_title

REQUEST_BYTES = m.MAX_FRAME_BYTES // 2
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_encoder = msgspec.json.Encoder()
_session_decoder = msgspec.json.Decoder(m.ImportSession)


def merge(sessions: list[m.ImportSession]) -> m.ImportSession:
    ids = sorted(s.external_id for s in sessions)
    digest = hashlib.sha256("\n".join(ids).encode()).hexdigest()[:32]
    messages = sorted((x for s in sessions for x in s.messages), key=lambda x: x.created_at)
    first = min(sessions, key=lambda s: s.created_at)
    sources = sorted({src for s in sessions for src in s.sources})
    return m.ImportSession(
        external_id=f"merged:{digest}", sources=sources,
        title=clip_title(first.title + (f" (+{len(sessions) - 1} merged)" if len(sessions) > 1 else "")),
        created_at=first.created_at,
        project_id=next((s.project_id for s in sessions if s.project_id), None),
        metadata={"imported_from": "+".join(sources), "merged_from": " ".join(ids)[:4000]},
        messages=messages)


def requests(sessions: list[m.ImportSession], report: ParseReport,
             limit: int = REQUEST_BYTES) -> list[list[m.ImportSession]]:
    out: list[list[m.ImportSession]] = []
    current: list[m.ImportSession] = []
    size = 0
    taken: set[str] = set()
    for session in sessions:
        session = _from_1970(session, report)
        if session is None:
            continue
        session = _once(session, taken, report)
        try:
            encoded = _encoder.encode(session)
            _session_decoder.decode(encoded)
        except (msgspec.ValidationError, msgspec.EncodeError, RecursionError, UnicodeError) as exc:
            why = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
            report.broken(session.metadata.get("source_file", session.external_id), None,
                          f"session {session.external_id} cannot be imported: {why}")
            continue
        for piece, piece_size in _pieces(session, len(encoded), limit, report):
            if current and size + piece_size > limit:
                out.append(current)
                current, size = [], 0
            current.append(piece)
            size += piece_size
    if current:
        out.append(current)
    return out


def _from_1970(session: m.ImportSession, report: ParseReport) -> m.ImportSession | None:
    """The daemon keeps no time before 1970: such a message is a problem and left
    out; a session that began before then is left out whole."""
    where = session.metadata.get("source_file", session.external_id)
    if session.created_at < EPOCH:
        report.broken(where, None, f"session {session.external_id} begins {session.created_at:%Y-%m-%d}, "
                                   "before 1970; not imported")
        return None
    kept = [x for x in session.messages if x.created_at >= EPOCH]
    for x in session.messages:
        if x.created_at < EPOCH:
            report.broken(where, None, f"message {x.external_id} is dated {x.created_at:%Y-%m-%d}, "
                                       "before 1970; not imported")
    return session if len(kept) == len(session.messages) else msgspec.structs.replace(session, messages=kept)


def _once(session: m.ImportSession, taken: set[str], report: ParseReport) -> m.ImportSession:
    """Each message id sent once (the daemon refuses a request that repeats one): a
    repeat is a problem, listed, never counted as a message imported before."""
    kept = []
    for x in session.messages:
        if x.external_id in taken:
            report.broken(session.metadata.get("source_file", session.external_id), None,
                          f"message {x.external_id} appears twice; the second is not imported")
            continue
        taken.add(x.external_id)
        kept.append(x)
    return session if len(kept) == len(session.messages) else msgspec.structs.replace(session, messages=kept)


def _pieces(session: m.ImportSession, size: int, limit: int, report: ParseReport):
    if size <= limit:
        yield session, size
        return
    empty = len(_encoder.encode(msgspec.structs.replace(session, messages=[])))
    batch: list[m.ImportMessage] = []
    batch_size = empty
    for x in session.messages:
        n = len(_encoder.encode(x)) + 1
        if empty + n > limit:
            report.broken(session.metadata.get("source_file", session.external_id), None,
                          f"message {x.external_id} is too large to import ({n} bytes)")
            continue
        if batch and batch_size + n > limit:
            yield msgspec.structs.replace(session, messages=batch), batch_size
            batch, batch_size = [], empty
        batch.append(x)
        batch_size += n
    if batch:
        yield msgspec.structs.replace(session, messages=batch), batch_size
