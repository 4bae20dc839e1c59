"""Sessions moving in: another tool's history written as duologue sessions, in batches.

The client parses the other tool's files (``clients/importers``) and sends the result
as typed records; the daemon stays the one writer of the store. Each imported session
is one store transaction (through ``Sessions.commit``) that also records the batch and
the external ids it took, so a crash never leaves an import half-recorded:

- Idempotent: every message and session carries an external id (source, its session
  id, its own id). An id imported before is skipped, so a second run creates nothing,
  and a session that grew in its tool since gets only its new messages appended.
  Ids whose session was deleted since are free again.
- Undoable: the batch lists the sessions it created and the ones it appended to (with
  the record from before). ``undo`` deletes the first and cuts the second back, and
  refuses, changing nothing, when one of them changed after the import.
- Models kept: each message keeps the model its tool recorded, and a change of model
  between replies is recorded as a model switch, so a session whose turns came from
  both tools shows who said what. The session's own model is the last one when the
  catalog knows it, else the default (the imported ids may be retired models).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

import msgspec

from duologue.protocol import methods as m
from duologue.protocol.entities import Message, ModelSwitch, Session
from duologue.protocol.errors import ErrorCode, RpcError

from .bounds import check_import
from .ids import new_id
from .pricing import cost_usd
from .sessions import Draft, Sessions, utcnow
from .store import ImportMarks

if TYPE_CHECKING:
    from .turns import Turns


class BatchHeader(msgspec.Struct, kw_only=True):
    id: str
    created_at: datetime
    sources: list[str] = []
    messages: int = 0
    open: bool = False
    """Written with every session of the batch, cleared once its last request is
    done: a batch found open at start (or idle too long) is undone."""


class BatchEntry(msgspec.Struct, kw_only=True):
    """One session the batch touched: ``before`` is None when the batch created it."""

    session_id: str
    after_seq: int
    before: Session | None = None
    messages: int = 0


log = logging.getLogger(__name__)

SLICE_S = 0.005
"""Work an import does before it lets other requests in."""
IMPORT_IDLE_S = 600.0
"""An open batch whose client sent nothing for this long is undone (it went away)."""
_enc = msgspec.msgpack.Encoder()
_header_dec = msgspec.msgpack.Decoder(BatchHeader)
_entry_dec = msgspec.msgpack.Decoder(BatchEntry)


def _unknown_batch(batch_id: str) -> RpcError:
    return RpcError(ErrorCode.UNKNOWN_BATCH,
                    f"no import batch {batch_id!r}; `duologue import --list` shows the batches",
                    {"batch_id": batch_id})


class Imports:
    def __init__(self, sessions: Sessions, turns: Turns):
        self.sessions = sessions
        self.store = sessions.store
        self.catalog = sessions.catalog
        self.turns = turns
        self._issued: set[str] = set()
        """Batch ids handed out this run (some may have written nothing yet)."""
        self._open_batches: dict[str, float] = {}
        """Batch ids handed out this run and not closed yet, with the time of their
        last request (monotonic); some may have written nothing yet."""

    # --- import -------------------------------------------------------------------------

    async def run(self, p: m.ImportParams) -> m.ImportResult:
        """One request of a batch. The batch stays open while ``p.more``; a request that
        fails part-way undoes the whole batch, so nothing of it is left.

        Each session is one transaction; between them, every ``SLICE_S`` of work, the
        loop lets the daemon serve others, so a big import stalls no client."""
        batch_id = None
        if not p.dry_run:
            batch_id = p.batch_id or new_id()
            if p.batch_id is not None and p.batch_id not in self._issued \
                    and self.store.imports.batch(p.batch_id) is None:
                raise _unknown_batch(p.batch_id)
            self._issued.add(batch_id)
            self._open_batches[batch_id] = time.monotonic()
        self._undo_abandoned(keep=batch_id)
        result = m.ImportResult(dry_run=p.dry_run, batch_id=batch_id)
        try:
            check_import(p)
            slice_start = time.monotonic()
            for item in p.sessions:
                if time.monotonic() - slice_start >= SLICE_S:
                    await asyncio.sleep(0)
                    slice_start = time.monotonic()
                done = self._one(item, batch_id)
                result.sessions.append(done)
                result.created_messages += done.messages
                result.skipped_messages += done.skipped_messages
                if done.action == "create":
                    result.created_sessions += 1
                elif done.action == "append":
                    result.appended_sessions += 1
                else:
                    result.skipped_sessions += 1
        except BaseException:
            if batch_id is not None:
                try:
                    self._undo_open(batch_id, "a request of it failed")
                except Exception:  # left open: undone at the next start
                    log.exception("could not undo import batch %s after a failed request", batch_id)
            raise
        if batch_id is not None:
            self._open_batches[batch_id] = time.monotonic()
            if not p.more:
                self._close(batch_id)
        return result

    def _close(self, batch_id: str) -> None:
        """The batch's last request is done: it is no longer undone at start."""
        self._open_batches.pop(batch_id, None)
        found = self.store.imports.batch(batch_id)
        if found is None:
            return  # it wrote nothing
        header = _header_dec.decode(found[0])
        if header.open:
            header.open = False
            self.store.imports.put_batch_header(batch_id, _enc.encode(header))

    def recover(self) -> int:
        """At start: undo every batch a stop left open (kill -9, or a client that went
        away between requests), so none stays half-imported. Returns how many."""
        undone = 0
        for raw in self.store.imports.batches():
            header = _header_dec.decode(raw)
            if header.open:
                self._undo_open(header.id, "it was left open by an interrupted import")
                undone += 1
        return undone

    def _undo_abandoned(self, keep: str | None) -> None:
        """Batches whose client has sent nothing for IMPORT_IDLE_S: it went away."""
        cutoff = time.monotonic() - IMPORT_IDLE_S
        for batch_id, last in list(self._open_batches.items()):
            if batch_id != keep and last < cutoff:
                self._open_batches.pop(batch_id, None)
                self._undo_open(batch_id, f"its client sent nothing for {IMPORT_IDLE_S:.0f} s")

    def _undo_open(self, batch_id: str, why: str) -> None:
        found = self.store.imports.batch(batch_id)
        if found is None:
            return
        entries = [_entry_dec.decode(e) for e in found[1]]
        changed = self._changed(entries)
        if changed:
            log.warning("import batch %s is incomplete (%s) but %d of its sessions changed since; "
                        "kept it (undo it with `duologue import --undo %s`)", batch_id, why, len(changed), batch_id)
            self._close(batch_id)
            return
        result = self._undo_entries(batch_id, entries)
        log.warning("undid incomplete import batch %s (%s): %d sessions deleted, %d cut back",
                    batch_id, why, len(result.deleted_sessions), len(result.truncated_sessions))

    def _one(self, item: m.ImportSession, batch_id: str | None) -> m.ImportedSession:
        existing = self._live_session(self.store.imports.session(item.external_id))
        taken = self.store.imports.messages([x.external_id for x in item.messages])
        live = {ext for ext, sid in taken.items() if self._live_session(sid) is not None}
        new = [msg for msg in item.messages if msg.external_id not in live]  # ids are unique (check_import)
        skipped = len(item.messages) - len(new)
        report = m.ImportedSession(external_id=item.external_id, title=item.title, action="skip",
                                   session_id=existing.id if existing else None,
                                   skipped_messages=skipped)
        if not new:
            return report
        report.action = "append" if existing else "create"
        report.messages = len(new)
        if batch_id is None:
            return report
        report.session_id = self._write(item, new, existing, batch_id)
        return report

    def _live_session(self, sid: str | None) -> Session | None:
        return None if sid is None else self.store.get_session(sid)

    def _write(self, item: m.ImportSession, new: list[m.ImportMessage], existing: Session | None,
               batch_id: str) -> str:
        last_time = max(x.created_at for x in new)
        if existing is None:
            start = min([item.created_at, *(x.created_at for x in new)])
            session = Session(
                id=new_id(_ms(start)), title=item.title or "Imported session", title_given=True, created_at=start,
                updated_at=start, model=self.catalog.default_model,
                current_model=self.catalog.default_model, project_id=item.project_id,
                system_prompt=item.system_prompt, metadata=self._linked(item.metadata))
            draft = Draft(session, last_time)
            created = draft.emit(m.SessionCreated, session=session)
            last_model = None
        else:
            session = existing
            draft = Draft(session, max(last_time, existing.updated_at))
            created = None
            last_model = _last_model(self.store.messages(existing.id))
        spent = 0.0
        for x in new:
            if x.role == "assistant" and x.model and last_model and x.model != last_model:
                switch = ModelSwitch(seq=draft.seq + 1, from_model=last_model, to_model=x.model,
                                     at=x.created_at, message_index=session.message_count + draft.added_messages,
                                     reason=f"the imported history continues on {x.model}")
                draft.emit(m.ModelSwitched, switch=switch)
                draft.switches.append(switch)
            if x.role == "assistant" and x.model:
                last_model = x.model
            cost = self._cost(x)
            spent += cost or 0.0
            draft.add_message(lambda seq, x=x, cost=cost: Message(
                id=new_id(_ms(x.created_at)), session_id=session.id, seq=seq, role=x.role,
                content=list(x.content), created_at=x.created_at, model=x.model, usage=x.usage,
                status=x.status, error=x.error, cost_usd=cost))
        model = self._known(last_model) or session.current_model
        updates: dict[str, Any] = {} if model == session.current_model else {"model": model, "current_model": model}
        if spent:
            updates["cost_usd"] = session.cost_usd + spent
        if created is not None:
            # session/created carries the record as the session began: its first seq
            created.session = msgspec.structs.replace(session, last_seq=1, **updates)
        draft.import_marks = self._marks(item, new, existing, batch_id, draft, session)
        self.sessions.commit(draft, **updates)
        return session.id

    def _marks(self, item: m.ImportSession, new: list[m.ImportMessage], existing: Session | None,
               batch_id: str, draft: Draft, session: Session) -> ImportMarks:
        header_raw = self.store.imports.batch(batch_id)
        header = (_header_dec.decode(header_raw[0]) if header_raw
                  else BatchHeader(id=batch_id, created_at=utcnow()))
        header.open = True
        header.sources = sorted(set(header.sources) | set(item.sources))
        header.messages += len(new)
        prior_raw = self.store.imports.batch_entry(batch_id, session.id)
        if prior_raw is not None:  # a later piece of a session this batch already touched
            entry = _entry_dec.decode(prior_raw)
            entry.after_seq = draft.seq
            entry.messages += len(new)
        else:
            entry = BatchEntry(session_id=session.id, after_seq=draft.seq, before=existing, messages=len(new))
        return ImportMarks(batch_id=batch_id, header=_enc.encode(header), entry=_enc.encode(entry),
                           session_key=item.external_id if existing is None else None,
                           message_keys=[x.external_id for x in new])

    def _linked(self, metadata: dict[str, str]) -> dict[str, str]:
        """A subagent's metadata, with the id of its parent's session when an import
        made that session (the parent comes first in a batch)."""
        parent = metadata.get("parent_external_id")
        found = self._live_session(self.store.imports.session(parent)) if parent else None
        return {**metadata, "parent_session_id": found.id} if found else dict(metadata)

    def _cost(self, x: m.ImportMessage) -> float | None:
        """What the reply cost, from its usage and its model's prices, as a live turn's.
        The tools record the id the API answered with, which may carry a snapshot date
        (``claude-haiku-4-5-20251001``) the catalog names without."""
        if x.model is None or x.usage is None:
            return None
        info = self.catalog.find(x.model) or self.catalog.find(_SNAPSHOT.sub("", x.model))
        return None if info is None else cost_usd(info, x.usage)

    def _known(self, model: str | None) -> str | None:
        found = None if model is None else self.catalog.find(model)
        return None if found is None else found.id

    # --- batches ------------------------------------------------------------------------

    def list(self) -> m.ImportListResult:
        out = []
        for raw in self.store.imports.batches():
            header = _header_dec.decode(raw)
            out.append(self._describe(header, self._entries(header.id)))
        return m.ImportListResult(batches=out)

    def _entries(self, batch_id: str) -> list[BatchEntry]:
        found = self.store.imports.batch(batch_id)
        return [] if found is None else [_entry_dec.decode(e) for e in found[1]]

    @staticmethod
    def _describe(header: BatchHeader, entries: list[BatchEntry]) -> m.ImportBatch:
        return m.ImportBatch(
            id=header.id, created_at=header.created_at, sources=header.sources,
            created_sessions=[e.session_id for e in entries if e.before is None],
            appended_sessions=[e.session_id for e in entries if e.before is not None],
            messages=header.messages)

    async def undo(self, batch_id: str) -> m.UndoResult:
        found = self.store.imports.batch(batch_id)
        if found is None:
            raise _unknown_batch(batch_id)
        entries = [_entry_dec.decode(e) for e in found[1]]
        changed = self._changed(entries)
        if changed:
            raise RpcError(
                ErrorCode.IMPORT_CONFLICT,
                f"{len(changed)} session(s) of batch {batch_id} changed after the import "
                f"({', '.join(changed)}); undo would remove more than the batch created, so it "
                "changed nothing. Delete or keep those sessions yourself (`duologue rm`), then undo again",
                {"session_ids": changed, "batch_id": batch_id})
        for e in entries:
            if e.before is None:
                await self.turns.forget_session(e.session_id)
        return self._undo_entries(batch_id, entries)

    def _changed(self, entries: list[BatchEntry]) -> list[str]:
        """Sessions of the batch that got events after it wrote them."""
        out = []
        for e in entries:
            current = self.store.get_session(e.session_id)
            if current is not None and current.last_seq != e.after_seq:
                out.append(e.session_id)
        return out

    def _undo_entries(self, batch_id: str, entries: list[BatchEntry]) -> m.UndoResult:
        result = m.UndoResult(batch_id=batch_id)
        for e in entries:
            session = self.store.get_session(e.session_id)
            if session is None:
                result.already_gone.append(e.session_id)
            elif e.before is None:
                result.removed_messages += session.message_count
                self.sessions.delete(session.id)
                result.deleted_sessions.append(session.id)
            else:
                result.removed_messages += self.store.truncate_session(e.before, session)
                result.truncated_sessions.append(session.id)
        self.store.imports.forget_batch(batch_id)
        self._open_batches.pop(batch_id, None)
        self._issued.discard(batch_id)
        return result


_SNAPSHOT = re.compile(r"-\d{8}$")


def _ms(t: datetime) -> int:
    return max(0, int(t.timestamp() * 1000))


def _last_model(messages: list[Message]) -> str | None:
    for msg in reversed(messages):
        if msg.role == "assistant" and msg.model:
            return msg.model
    return None
