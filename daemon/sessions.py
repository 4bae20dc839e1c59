"""Sessions: the one writer of session state.

Every change to a session goes through :meth:`Sessions.commit`: it assigns gap-free
seqs to the change's events, writes the change in one store transaction, and only
then publishes the event frames to attached clients. Publishing after the commit
means no client ever sees an event that a crash could take back.

Everything here is synchronous and runs on the daemon's event loop thread, so the
read of ``last_seq`` and the write that advances it cannot interleave with another
writer: one writer per session holds by construction.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Callable

import msgspec

from duologue.protocol import methods as m
from duologue.protocol.entities import (
    AUTO,
    ContextSummary,
    Message,
    ModelSwitch,
    Session,
    SwitchKind,
    Task,
    TaskList,
)
from duologue.protocol.errors import ErrorCode, RpcError, unknown_session
from duologue.protocol.jsonrpc import encode_event, encode_notification

from .catalog import Catalog
from .hub import Hub, Subscriber
from .ids import new_id
from .replay import Replay
from .store import Change, ImportMarks, Store, encode_cursor, stored_completion, stored_delta

DEFAULT_TITLE = "New session"
"""A session's title until it is given one or the daemon titles it."""
PAGE_BYTES = 2 * 1024 * 1024
"""Stored bytes a page of messages stops before (``session/get``, ``session/export``):
their JSON stays well under the frame limit (``MAX_FRAME_BYTES``)."""


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Draft:
    """The events and records of one change to one session, before commit."""

    def __init__(self, session: Session, now: datetime):
        self.session = session
        self.now = now
        self.seq = session.last_seq
        self.events: list[Any] = []
        self.messages: list[Message] = []
        self.switches: list[ModelSwitch] = []
        self.summaries: list[ContextSummary] = []
        self.tasks: TaskList | None = None
        self.added_messages = 0
        self.import_marks: ImportMarks | None = None
        """Set by an import: its batch record, written in the same transaction."""
        self.reply_of: dict[int, int] = {}
        """Delta seq -> the seq of its reply's record (the store keeps a delta by it)."""

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def emit(self, event_type: type, **fields: Any) -> Any:
        """Append an event with the next seq; returns it."""
        event = event_type(session_id=self.session.id, seq=self.next_seq(), **fields)
        self.events.append(event)
        return event

    def emit_delta(self, reply: Message, text: str, thinking: str = "") -> None:
        """Append a delta of ``reply`` (text or thinking) with the next seq."""
        event = self.emit(m.MessageDelta, message_id=reply.id, text=text, thinking=thinking)
        self.reply_of[event.seq] = reply.seq

    def add_message(self, build: Callable[[int], Message]) -> Message:
        """Add a new message whose seq is its message/created event's seq."""
        msg = build(self.seq + 1)
        self.emit(m.MessageCreated, message=msg)
        self.messages.append(msg)
        self.added_messages += 1
        return msg


class Sessions:
    def __init__(self, store: Store, catalog: Catalog, hub: Hub,
                 clock: Callable[[], datetime] = utcnow):
        self.store = store
        self.catalog = catalog
        self.hub = hub
        self.clock = clock
        self._watchers: list[Callable[[Session, Session, list[Message]], None]] = []

    # --- the write path -----------------------------------------------------------------

    def draft(self, session: Session) -> Draft:
        return Draft(session, self.clock())

    def commit(self, draft: Draft, *, durable: bool = True, **updates: Any) -> Session:
        """Store the draft as one change and publish its events. ``durable=False``
        for a reply's checkpoint (``records.Change.durable``)."""
        prev = draft.session
        session = msgspec.structs.replace(
            prev,
            last_seq=draft.seq,
            updated_at=draft.now,
            message_count=prev.message_count + draft.added_messages,
            **updates,
        )
        frames = [encode_event(e) for e in draft.events]
        self.store.apply(Change(
            session=session,
            previous=prev,
            events=[(e.seq, self._stored(e, f, draft)) for e, f in zip(draft.events, frames)],
            messages=draft.messages,
            switches=draft.switches,
            tasks=draft.tasks,
            summaries=draft.summaries,
            import_marks=draft.import_marks,
            durable=durable,
        ))
        for watcher in self._watchers:
            watcher(prev, session, draft.messages)
        self.hub.publish(session.id, frames)
        return session

    def commit_replica(self, change: Change, stream_seq: int) -> None:
        """Write a change another device made (followed from the stream at
        ``stream_seq``, daemon/sync) and publish it to attached clients as if it were
        made here: the same frames, the same seqs, after the commit."""
        self.store.apply_replica(change, stream_seq)
        prev = change.previous
        if prev is not None:
            for watcher in self._watchers:
                watcher(prev, change.session, change.messages)
        frames = [f for _, f in self.store.event_page(change.session.id, prev.last_seq if prev else 0, None)]
        self.hub.publish(change.session.id, frames)

    @staticmethod
    def _stored(event: Any, frame: bytes, draft: Draft) -> bytes:
        """What the store keeps of an event: a delta its text, a completion written
        with its record the rest (store/streams.py), any other its frame."""
        if isinstance(event, m.MessageDelta) and event.seq in draft.reply_of:
            return stored_delta(event, draft.reply_of[event.seq])
        if isinstance(event, m.MessageCompleted) and event.message in draft.messages:
            return stored_completion(event)
        return frame

    def watch(self, on_commit: Callable[[Session, Session, list[Message]], None]) -> None:
        """Call ``on_commit(previous, session, messages)`` after every commit the store
        took: how an in-memory copy of sessions (the turns' history cache) stays
        current without reading them back."""
        self._watchers.append(on_commit)

    def announce(self, session_id: str, method: str, params: Any) -> None:
        """Publish a notification that is not stored (progress): it carries the
        session's current last seq, so a client can place it among stored events."""
        self.hub.publish(session_id, [encode_notification(method, params)])

    def require(self, session_id: str) -> Session:
        session = self.store.get_session(session_id)
        if session is None:
            raise unknown_session(session_id)
        return session

    # --- methods ------------------------------------------------------------------------

    def create(self, p: m.CreateParams) -> Session:
        model = self.catalog.resolve_choice(p.model or self.catalog.default_model)
        current = self.catalog.default_model if model == AUTO else model
        now = self.clock()
        sid = new_id(int(now.timestamp() * 1000))
        session = Session(
            id=sid,
            title=p.title or DEFAULT_TITLE,
            title_given=p.title is not None,
            created_at=now,
            updated_at=now,
            model=model,
            current_model=current,
            project_id=p.project_id,
            system_prompt=p.system_prompt,
            metadata=dict(p.metadata),
            last_seq=0,
        )
        draft = Draft(session, now)
        created = draft.emit(m.SessionCreated, session=session)
        session = msgspec.structs.replace(session, last_seq=draft.seq)
        created.session = session
        frame = encode_event(created)
        self.store.apply(Change(session=session, previous=None, events=[(created.seq, frame)]))
        return session

    def list(self, p: m.ListParams) -> m.ListResult:
        try:
            sessions = self.store.list_sessions(
                p.project_id, all_projects=p.project_id is None, limit=p.limit + 1, before=p.before
            )
        except ValueError as exc:
            raise RpcError(ErrorCode.INVALID_PARAMS, f"{exc}; pass the next_cursor of a previous page",
                           {"path": "$.before"}) from None
        more = len(sessions) > p.limit
        sessions = sessions[: p.limit]
        return m.ListResult(sessions=sessions,
                            next_cursor=encode_cursor(sessions[-1]) if more and sessions else None)

    def get(self, p: m.GetParams) -> m.GetResult:
        session = self.require(p.session_id)
        _check_since_seq(p.since_seq, session)
        if p.before_seq is not None and p.before_seq <= p.since_seq:
            raise RpcError(ErrorCode.INVALID_PARAMS,
                           f"before_seq {p.before_seq} must be greater than since_seq {p.since_seq}: "
                           "a page holds the messages between them", {"path": "$.before_seq"})
        messages, more = self.store.message_page(session.id, p.since_seq, p.before_seq, p.limit, PAGE_BYTES)
        following = None
        if more and p.before_seq is not None:
            following = m.PageStart(since_seq=p.since_seq, before_seq=messages[0].seq)
        elif more:
            following = m.PageStart(since_seq=messages[-1].seq)
        return m.GetResult(session=session, messages=messages, switches=self.store.switches(session.id),
                           tasks=self.store.tasks(session.id), has_more=more, next=following)

    def rename(self, p: m.RenameParams) -> Session:
        session = self.require(p.session_id)
        title = p.title.strip()
        if not title:
            raise RpcError(ErrorCode.INVALID_PARAMS, "the title must not be blank", {"path": "$.title"})
        draft = self.draft(session)
        draft.emit(m.SessionRenamed, title=title)
        return self.commit(draft, title=title, title_given=True)

    def title_automatically(self, session_id: str, title: str) -> None:
        """Give the session ``title`` unless a person or an import gave it one, or
        the daemon did already (it titles a session once, after its first exchange)."""
        session = self.store.get_session(session_id)
        if session is None or session.title_given or session.title != DEFAULT_TITLE or not title:
            return
        draft = self.draft(session)
        draft.emit(m.SessionRenamed, title=title)
        self.commit(draft, title=title)

    def delete(self, session_id: str, followed: int | None = None) -> None:
        """Delete the session and tell its clients; ``followed``: the deletion came
        from another device, at that stream sequence (daemon/sync)."""
        session = self.require(session_id)
        self.store.delete_session(session, followed)
        frame = encode_event(m.SessionDeleted(session_id=session.id, seq=session.last_seq))
        self.hub.publish(session.id, [frame])
        self.hub.forget_session(session.id)

    def switch_model(self, session_id: str, model: str, reason: str | None,
                     kind: SwitchKind = "manual") -> tuple[Session, ModelSwitch | None]:
        """Point the session at ``model`` (id, short name or auto) and record why."""
        session = self.require(session_id)
        choice = self.catalog.resolve_choice(model)
        target = session.current_model if choice == AUTO else choice
        if choice == session.model and target == session.current_model:
            return session, None
        draft = self.draft(session)
        switch = None
        if target != session.current_model or kind == "manual":
            switch = self._switch(draft, target, reason or _default_reason(kind, choice), kind,
                                  choice=choice if kind == "manual" else None)
        return self.commit(draft, model=choice if kind == "manual" else session.model,
                           current_model=target), switch

    def _switch(self, draft: Draft, target: str, reason: str, kind: SwitchKind,
                choice: str | None = None) -> ModelSwitch:
        switch = ModelSwitch(
            seq=draft.seq + 1,
            from_model=draft.session.current_model,
            to_model=target,
            at=draft.now,
            message_index=draft.session.message_count + draft.added_messages,
            reason=reason,
            kind=kind,
            choice=choice,
        )
        draft.emit(m.ModelSwitched, switch=switch)
        draft.switches.append(switch)
        return switch

    def record_switch(self, draft: Draft, target: str, reason: str, kind: SwitchKind) -> ModelSwitch:
        """Add a switch to a draft (used by turns for auto and failover choices)."""
        return self._switch(draft, target, reason, kind)

    def attach(self, p: m.AttachParams, sub: Subscriber) -> tuple[m.AttachResult, Replay | None]:
        """Subscribe and replay. The replay covers the events up to the session's last
        seq now; any later one is published to ``sub`` live, and the transport sends
        it after the whole replay, so nothing is missed or delivered twice. The caller
        sends the response first, then the replay as the connection takes it (see
        ``replay``)."""
        session = self.require(p.session_id)
        _check_since_seq(p.since_seq, session)
        replay = None
        if p.since_seq is not None and p.since_seq < session.last_seq:
            replay = Replay(self.store, session.id, p.since_seq, session.last_seq)
        count = 0 if p.since_seq is None else session.last_seq - p.since_seq  # seqs are gap-free
        self.hub.attach(session.id, sub)
        return m.AttachResult(session=session, last_seq=session.last_seq, replayed=count), replay

    def pin(self, session_id: str, message_id: str, pinned: bool) -> Message:
        session = self.require(session_id)
        msg = self.store.message(message_id)
        if msg is None or msg.session_id != session.id:
            raise RpcError(ErrorCode.UNKNOWN_MESSAGE,
                           f"no message {message_id!r} in session {session_id!r}",
                           {"message_id": message_id})
        if msg.pinned == pinned:
            return msg
        draft = self.draft(session)
        msg = msgspec.structs.replace(msg, pinned=pinned)
        draft.messages.append(msg)
        draft.emit(m.MessagePinned, message_id=msg.id, pinned=pinned)
        self.commit(draft)
        return msg

    def update_tasks(self, session_id: str, tasks: list[Task], by: str) -> TaskList:
        session = self.require(session_id)
        ids = [t.id for t in tasks]
        if len(set(ids)) != len(ids):
            dupes = sorted({i for i in ids if ids.count(i) > 1})
            raise RpcError(ErrorCode.INVALID_TASKS, f"task ids must be unique; repeated: {dupes}")
        draft = self.draft(session)
        task_list = TaskList(tasks=tasks, updated_by=by, updated_at=draft.now)
        draft.tasks = task_list
        draft.emit(m.TasksChanged, tasks=task_list)
        self.commit(draft)
        return task_list


def tasks_from_inputs(inputs: list[m.TaskInput]) -> list[Task]:
    """Client or model task inputs as stored tasks. A task without an id gets the
    next number no given id uses, so generated and explicit ids never collide."""
    taken = {t.id for t in inputs if t.id}
    numbers = (str(n) for n in range(1, len(inputs) + len(taken) + 2) if str(n) not in taken)
    return [Task(id=t.id or next(numbers), content=t.content, status=t.status,
                 active_form=t.active_form) for t in inputs]


def _check_since_seq(since_seq: int | None, session: Session) -> None:
    """A seq the session has not reached is a client's bookkeeping error, refused the
    same way by ``session/get`` and ``session/attach``: an empty answer would hide it."""
    if since_seq is not None and since_seq > session.last_seq:
        raise RpcError(
            ErrorCode.INVALID_PARAMS,
            f"since_seq {since_seq} is beyond the session's last seq {session.last_seq}",
            {"path": "$.since_seq"},
        )


def _default_reason(kind: SwitchKind, choice: str) -> str:
    if kind == "manual":
        return "auto selection enabled" if choice == AUTO else "switched by user"
    return kind
