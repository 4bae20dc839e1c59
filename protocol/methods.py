"""The method table: every request a daemon answers and every notification it sends.

One table drives the daemon's dispatcher, the client library's typed calls,
``schemas/`` and the method list in ``docs/protocol.md``. A method that is not here
does not exist. Params are strict (unknown fields are refused, so a typo is an error,
not a silently ignored option); results tolerate fields a newer daemon adds.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from .entities import (
    Timestamp,
    CodeContextBlock,
    ContentBlock,
    ContextSummary,
    ImageBlock,
    Message,
    MessageStatus,
    ThinkingDepth,
    ModelInfo,
    ModelSwitch,
    Provider,
    Role,
    Session,
    TaskList,
    TaskStatus,
    Usage,
)

PROTOCOL_VERSION = "1.0"
"""Major.minor. A client whose major differs is refused at ``daemon/hello``."""

MAX_FRAME_BYTES = 8 * 1024 * 1024
"""Largest ZeroMQ message the daemon accepts; a larger one closes the connection."""

SessionId = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Title = Annotated[str, msgspec.Meta(max_length=200)]
MAX_SEQ = 2**53 - 1
"""The largest seq a request may name: exact in every JSON implementation (a double)."""
Since = Annotated[int, msgspec.Meta(ge=0, le=MAX_SEQ)]
Cursor = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{1,15}\.[0-9A-Z]{1,64}$")]
"""A page cursor: ``<updated_at in ms>.<session id>``, as ``next_cursor`` gives it."""
MessageId = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
MAX_LINE = 2**31 - 1
"""The largest line number a code context's ``range`` may name (1 <= start <= end);
the daemon refuses a range outside with INVALID_PARAMS."""


class Params(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """Base of every params type: strict, since the caller is a client of ours."""


class Result(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Base of every result type: tolerant, so older clients read newer daemons."""


class Empty(Params):
    pass


class EmptyResult(Result):
    pass


# --- daemon ---------------------------------------------------------------------------


class HelloParams(Params):
    protocol_version: str
    client: Annotated[str, msgspec.Meta(max_length=100)] = "unknown"


class HelloResult(Result):
    protocol_version: str
    daemon_version: str
    emulator: bool
    instance_id: str = ""
    """New at every daemon start: a client that finds another one than before knows the
    daemon restarted and its subscriptions died with it. Empty from a daemon that
    does not say."""


class ProviderStatus(Result):
    name: str
    configured: bool
    display_name: str = ""
    """How a person names it (``Anthropic Claude``); empty from a daemon that does not say."""
    key_env: list[str] = []
    """The environment variables the daemon reads its API key from, in order."""
    emulator: bool = False
    base_url: str | None = None
    cooling_down_until: Timestamp | None = None


class RunningTurn(Result):
    session_id: str
    turn_id: str
    model: str
    started_at: Timestamp
    output_tokens: int = 0


class StatusResult(Result):
    protocol_version: str
    daemon_version: str
    pid: int
    started_at: Timestamp
    uptime_s: float
    home: str
    socket: str
    sessions: int
    clients: int
    emulator: bool
    instance_id: str = ""
    """As in ``HelloResult``: new at every daemon start."""
    providers: list[ProviderStatus] = []
    running_turns: list[RunningTurn] = []


class SyncSessionStatus(Result):
    """A session that is not in sync with the stream, and why."""

    session_id: str
    unpublished: int = 0
    """Changes this daemon made that JetStream does not hold yet."""
    diverged_after_seq: int | None = None
    """Set when this device and another wrote different events after this seq."""
    missing_after_seq: int | None = None
    """Set when the stream continues past what this store holds (history never published)."""
    lease_lost: str | None = None
    """Set when another device took this daemon's writer lease of the session: who, and why."""


class SyncStatusResult(Result):
    configured: bool
    """False: no [sync] table, nothing leaves this machine."""
    connected: bool = False
    server: str = ""
    """The NATS url without credentials."""
    device_name: str = ""
    error: str | None = None
    """Why it is not connected (bad url, credentials, no JetStream, server down)."""
    follow_lag: int = 0
    """Stream messages not yet followed into this store."""
    sessions: list[SyncSessionStatus] = []
    """Only the sessions that lag or diverged; an empty list means all are in sync."""
    leases: list[str] = []
    """Sessions whose writer lease this daemon holds."""


# --- models ---------------------------------------------------------------------------


class ProviderListing(Result):
    """What the daemon last read from one provider's models endpoint."""

    provider: str
    fetched_at: Timestamp | None = None
    """When the listing the catalog now reflects was fetched; None: never."""
    models: int = 0
    """How many models it listed."""
    error: str | None = None
    """Why the last attempt to read it failed (the catalog kept what it had)."""


class ModelsResult(Result):
    models: list[ModelInfo]
    default_model: str
    retires_at: dict[str, Timestamp] = {}
    """Model id -> the retirement its provider has scheduled for it."""
    listings: list[ProviderListing] = []
    """One per configured provider: how current the catalog's lifecycle and limits are."""


class RefreshParams(Params):
    provider: Provider | None = None
    """Only this provider; None: every configured one."""


# --- sessions -------------------------------------------------------------------------


class CreateParams(Params):
    project_id: Annotated[str, msgspec.Meta(max_length=4096)] | None = None
    title: Title | None = None
    model: str | None = None
    system_prompt: str | None = None
    metadata: dict[str, str] = {}


class SessionResult(Result):
    session: Session


class ListParams(Params):
    project_id: str | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 50
    before: Cursor | None = None
    """Cursor from a previous page's ``next_cursor``."""


class ListResult(Result):
    sessions: list[Session]
    next_cursor: str | None = None


PAGE_MESSAGES = 200
"""Messages in a page of ``session/get`` or ``session/export`` unless ``limit`` says."""
MAX_PAGE_MESSAGES = 1000
PageLimit = Annotated[int, msgspec.Meta(ge=1, le=MAX_PAGE_MESSAGES)]


class PageStart(Result):
    """Where the next page starts: send these fields again with the same session and
    limit."""

    since_seq: int = 0
    before_seq: int | None = None


class GetParams(Params):
    """One page of a session's messages, in seq order: the ``limit`` messages just
    after ``since_seq``, or with ``before_seq`` the ones just before it (after
    ``since_seq`` still), for reading back from the end. A page also ends before it
    would pass about 2 MiB (it always holds one message), so every answer fits a
    frame whatever the session's length."""

    session_id: SessionId
    since_seq: Since = 0
    before_seq: Since | None = None
    """Only messages with a smaller seq; ``MAX_SEQ`` (2**53 - 1) reads the newest."""
    limit: PageLimit = PAGE_MESSAGES


class GetResult(Result):
    session: Session
    messages: list[Message]
    switches: list[ModelSwitch]
    tasks: TaskList
    has_more: bool = False
    """More messages lie beyond this page, in the direction it was read."""
    next: PageStart | None = None
    """The next page in that direction (set exactly when ``has_more``)."""


class RenameParams(Params):
    session_id: SessionId
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class SessionRef(Params):
    session_id: SessionId


class DeleteResult(Result):
    deleted: bool


class SwitchParams(Params):
    session_id: SessionId
    model: str
    reason: Annotated[str, msgspec.Meta(max_length=500)] | None = None


class SwitchResult(Result):
    session: Session
    switch: ModelSwitch | None = None
    """None when the session already used that model."""


class AttachParams(Params):
    session_id: SessionId
    since_seq: Since | None = None
    """Replay every event after this seq before live ones; None means live only."""


class AttachResult(Result):
    session: Session
    last_seq: int
    replayed: int


# --- conversation ---------------------------------------------------------------------


class SendParams(Params):
    session_id: SessionId
    text: Annotated[str, msgspec.Meta(max_length=2_000_000)]
    context: list[CodeContextBlock] = []
    images: list[ImageBlock] = []
    """Images for the model to read, before the text in the message. Each is checked
    (base64, its bytes are the ``media_type`` it says, the size limits of
    ``protocol/images.py``) and refused, with the path, before anything is written;
    so is any image for a chosen model that does not take images."""
    model: str | None = None
    """For this turn only: a model id, short name or ``auto``."""
    pin: bool = False
    thinking: ThinkingDepth | None = None
    """For this turn only: more or less thinking, where the model allows it (``off`` on
    a model that always thinks, or any depth on one that never does, is refused)."""


class SendResult(Result):
    message: Message
    turn_id: str
    queued: int
    """How many turns are ahead of this one in the session's queue."""


class CancelResult(Result):
    turn_id: str
    cancelled: bool


class PinParams(Params):
    session_id: SessionId
    message_id: MessageId
    pinned: bool = True


class MessageResult(Result):
    message: Message


class SummariesResult(Result):
    summaries: list[ContextSummary]


# --- metrics --------------------------------------------------------------------------


class MetricsParams(Params):
    model: str | None = None
    """Only this model (id or short name) and its provider."""


class Percentiles(Result, frozen=True):
    count: int = 0
    p50_ms: float | None = None
    p95_ms: float | None = None


class ModelMetrics(Result):
    """Counters since the daemon started, for one model or one provider."""

    name: str
    provider: str
    requests: int = 0
    completed: int = 0
    errors: dict[str, int] = {}
    error_rate: float = 0.0
    ttft: Percentiles = Percentiles()
    latency: Percentiles = Percentiles()
    input_tokens: int = 0
    """Uncached input tokens, as ``Usage.input_tokens``."""
    output_tokens: int = 0
    """Output tokens, thinking included."""
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    """Written to a 5-minute cache (Claude)."""
    cache_write_1h_tokens: int = 0
    """Written to a 1-hour cache (Claude)."""
    thinking_tokens: int = 0
    """The share of ``output_tokens`` that was thinking."""
    cost_usd: float = 0.0
    """Dollars as billed: the sum of the four parts below."""
    input_cost_usd: float = 0.0
    output_cost_usd: float = 0.0
    """Thinking included, since it is billed as output."""
    cache_read_cost_usd: float = 0.0
    cache_write_cost_usd: float = 0.0
    """5-minute and 1-hour writes together."""
    switches_to: int = 0
    failovers_from: int = 0
    output_tokens_per_s: float | None = None


class MetricsResult(Result):
    models: list[ModelMetrics]
    providers: list[ModelMetrics]
    since: Timestamp
    emulator: bool = False
    """The daemon answers from its provider emulator: the costs are zero because
    nothing was billed, not because the replies were free."""


# --- tasks ----------------------------------------------------------------------------


class TaskInput(Params):
    content: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
    status: TaskStatus = "pending"
    active_form: Annotated[str, msgspec.Meta(max_length=2000)] | None = None
    id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None


class TasksUpdateParams(Params):
    session_id: SessionId
    tasks: Annotated[list[TaskInput], msgspec.Meta(max_length=500)]
    client: Annotated[str, msgspec.Meta(max_length=100)] | None = None


class TasksResult(Result):
    tasks: TaskList


# --- import and export ----------------------------------------------------------------

ImportSource = Literal["claude-code", "gemini-cli", "opencode", "duologue"]
ExternalId = Annotated[str, msgspec.Meta(min_length=1, max_length=512)]
BatchId = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
BEFORE_IMPORT_EPOCH = "1969-12-31T23:59:59.999999Z"
"""The last microsecond before 1970, the schemas' exclusive lower bound on import
times. It says "from 1970-01-01T00:00:00Z on" at the daemon's microsecond precision;
an inclusive bound at the epoch would go unchecked in Ajv, whose ajv-formats takes a
time that is 0 milliseconds since 1970 for one it cannot compare."""
ImportTimestamp = Annotated[datetime, msgspec.Meta(
    tz=True, extra_json_schema={"formatExclusiveMinimum": BEFORE_IMPORT_EPOCH})]
"""A time another tool recorded: timezone-aware, not before 1970 (the daemon
refuses an earlier one with INVALID_PARAMS)."""


class ImportMessage(Params):
    """One message of another tool's history, as the client parsed it."""

    external_id: ExternalId
    """Names the message across imports (source, its session id and its own id), so
    a message imported once is never imported again."""
    role: Role
    content: list[ContentBlock]
    created_at: ImportTimestamp
    """The time the source recorded, kept."""
    model: str | None = None
    """The model that wrote it, as the source named it (kept even if not in the catalog)."""
    usage: Usage | None = None
    status: MessageStatus = "complete"
    error: Annotated[str, msgspec.Meta(max_length=16_384)] | None = None
    """What went wrong, for a message the source recorded as an error (``status``
    ``failed``): kept as the message's ``error``, never as reply text."""


class ImportSession(Params):
    """A session of another tool (or several, merged), with its messages in order."""

    external_id: ExternalId
    """Names the session across imports; a later import with the same id appends only
    the messages not imported yet."""
    sources: Annotated[list[ImportSource], msgspec.Meta(min_length=1)]
    title: Title
    created_at: ImportTimestamp
    project_id: Annotated[str, msgspec.Meta(max_length=4096)] | None = None
    system_prompt: str | None = None
    metadata: dict[str, str] = {}
    """Kept as the session's metadata. ``parent_external_id`` names the session this
    one was spawned from (a subagent's): when an import made that session, the daemon
    adds its id as ``parent_session_id``."""
    messages: list[ImportMessage] = []


class ImportParams(Params):
    sessions: Annotated[list[ImportSession], msgspec.Meta(max_length=10_000)]
    dry_run: bool = False
    """Report what would be created and change nothing."""
    batch_id: BatchId | None = None
    """Continue a batch this daemon began (a large import is sent in several requests);
    None begins a new batch."""
    more: bool = False
    """More requests of this batch follow. The batch stays open until a request without
    ``more``; a batch left open (the client or the daemon stopped in between) is undone,
    so a batch lands whole or not at all."""


class ImportedSession(Result):
    external_id: str
    title: str
    action: Literal["create", "append", "skip"]
    """``create`` a new session, ``append`` new messages to the session an earlier
    import made, or ``skip`` (every message was imported before)."""
    session_id: str | None = None
    """None when a dry run would create the session."""
    messages: int = 0
    """Messages created (or, on a dry run, that would be)."""
    skipped_messages: int = 0
    """Messages already imported."""


class ImportResult(Result):
    dry_run: bool
    batch_id: str | None = None
    """The batch to pass to import/undo; None on a dry run."""
    sessions: list[ImportedSession] = []
    created_sessions: int = 0
    appended_sessions: int = 0
    skipped_sessions: int = 0
    created_messages: int = 0
    skipped_messages: int = 0


class ImportBatch(Result):
    """What one import run created, as import/list shows it."""

    id: str
    created_at: Timestamp
    sources: list[str] = []
    created_sessions: list[str] = []
    appended_sessions: list[str] = []
    messages: int = 0


class ImportListResult(Result):
    batches: list[ImportBatch]


class UndoParams(Params):
    batch_id: BatchId


class UndoResult(Result):
    batch_id: str
    deleted_sessions: list[str] = []
    """Sessions the batch created, now deleted."""
    truncated_sessions: list[str] = []
    """Sessions the batch appended to, cut back to what they held before."""
    removed_messages: int = 0
    already_gone: list[str] = []
    """Sessions of the batch deleted before the undo (nothing left to remove)."""


class ExportParams(Params):
    """One page of an export: the ``limit`` messages after ``since_seq`` (see
    :class:`GetParams`); the client joins the pages into one document."""

    session_id: SessionId
    since_seq: Since = 0
    limit: PageLimit = PAGE_MESSAGES


class ExportDocument(Result):
    """A whole session as one JSON document (``duologue export --format json``).
    The daemon sends it a page of messages at a time (``next`` on all but the
    last); a saved document holds them all and no ``next``."""

    format: Literal["duologue-export"]
    version: int
    """1. A reader refuses a version it does not know."""
    exported_at: Timestamp
    session: Session
    messages: list[Message]
    switches: list[ModelSwitch]
    tasks: TaskList
    summaries: list[ContextSummary]
    next: PageStart | None = None


# --- notifications --------------------------------------------------------------------


class Event(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Base of every session event: gap-free ``seq`` per session."""

    session_id: str
    seq: int


class SessionCreated(Event):
    session: Session


class SessionRenamed(Event):
    title: str


class SessionDeleted(Event):
    pass


class ModelSwitched(Event):
    switch: ModelSwitch


class MessageCreated(Event):
    """A message was committed: a user message, or an assistant reply beginning."""

    message: Message


class MessageDelta(Event):
    """Text that arrived for a reply. ``thinking`` is thinking text, to show apart from
    the reply (collapsed, marked); a delta carries one or the other."""

    message_id: str
    text: str
    thinking: str = ""


class MessageCompleted(Event):
    """The reply ended (completed, cancelled, failed or interrupted); final record."""

    message: Message


class MessagePinned(Event):
    message_id: str
    pinned: bool


class ContextSummarized(Event):
    """Older messages were summarised so the history fits a model's window."""

    summary: ContextSummary


class TasksChanged(Event):
    tasks: TaskList


class Progress(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Live progress of a turn; not stored, so ``seq`` is the last stored event's."""

    session_id: str
    seq: int
    turn_id: str
    kind: Literal["begin", "report", "end"]
    model: str
    output_tokens: int = 0
    tasks_completed: int = 0
    tasks_total: int = 0
    active_task: str | None = None
    estimated_s: float | None = None
    outcome: str | None = None
    error: str | None = None
    """On a failed ``end``: why. The reply's ``message/completed`` says it too, except
    when the store could not be written (a full disk): then this is the only word."""


class ClientDropped(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Sent to a client whose outgoing queue overflowed: it was detached from these
    sessions and should reattach with ``since_seq`` set to the last seq it saw."""

    session_ids: list[str]
    reason: str


class SessionForked(Event):
    """This device's events after ``after_seq`` diverged from another device's (they
    wrote while apart, and the other's reached JetStream first): they were moved to
    the new session ``fork_id``, and the session continues with the other device's
    events after ``after_seq``. ``seq`` is the session's last seq now (not a new
    seq). A client re-attaches with ``since_seq = after_seq``."""

    fork_id: str
    after_seq: int
    title: str


# --- the table ------------------------------------------------------------------------


# A frozen Struct rather than a dataclass: a dataclass is made by compiling its methods
# at import, some 30 times the cost, paid by every one-shot client at start-up.
class Method(msgspec.Struct, frozen=True):
    name: str
    params: type
    result: type
    doc: str


class Notification(msgspec.Struct, frozen=True):
    name: str
    params: type
    doc: str
    stored: bool


def _table(*methods: Method) -> dict[str, Method]:
    return {m.name: m for m in methods}


METHODS: dict[str, Method] = _table(
    Method("daemon/hello", HelloParams, HelloResult,
           "Check protocol compatibility; a different major version is refused."),
    Method("daemon/status", Empty, StatusResult,
           "Version, uptime, counts, providers and running turns."),
    Method("sync/status", Empty, SyncStatusResult,
           "Replication through NATS: connection, server, device, lag per session, leases."),
    Method("daemon/shutdown", Empty, EmptyResult,
           "Stop the daemon cleanly after answering."),
    Method("models/list", Empty, ModelsResult,
           "The model catalog (built in plus the config file's additions)."),
    Method("models/refresh", RefreshParams, ModelsResult,
           "Read the providers' models endpoints now; the catalog as they amend it."),
    Method("session/create", CreateParams, SessionResult,
           "Create a session; model defaults to the configured default."),
    Method("session/list", ListParams, ListResult,
           "Sessions by recency, optionally of one project; paged by cursor."),
    Method("session/get", GetParams, GetResult,
           "A session with a page of its messages (after since_seq or before before_seq), switches and tasks."),
    Method("session/rename", RenameParams, SessionResult, "Set a session's title."),
    Method("session/delete", SessionRef, DeleteResult,
           "Delete a session and everything in it; attached clients are told."),
    Method("session/switch_model", SwitchParams, SwitchResult,
           "Make a model (id, short name or auto) answer the next turns."),
    Method("session/attach", AttachParams, AttachResult,
           "Receive the session's events; replay those after since_seq first."),
    Method("session/detach", SessionRef, EmptyResult,
           "Stop receiving the session's events."),
    Method("session/send", SendParams, SendResult,
           "Append a user message (durable on return) and queue a model turn."),
    Method("session/cancel", SessionRef, CancelResult,
           "Stop the running turn, keeping its partial text marked cancelled."),
    Method("session/pin", PinParams, MessageResult,
           "Pin or unpin a message: pinned messages survive summaries verbatim."),
    Method("session/summaries", SessionRef, SummariesResult,
           "The context summaries made for this session, oldest first."),
    Method("metrics/get", MetricsParams, MetricsResult,
           "Per model and provider: requests, errors, latency, tokens, cost, switches."),
    Method("tasks/update", TasksUpdateParams, TasksResult,
           "Replace the session's task list."),
    Method("tasks/list", SessionRef, TasksResult, "The session's task list."),
    Method("import/run", ImportParams, ImportResult,
           "Create sessions from another tool's history as one batch; idempotent."),
    Method("import/undo", UndoParams, UndoResult,
           "Remove exactly what one import batch created."),
    Method("import/list", Empty, ImportListResult, "The import batches, oldest first."),
    Method("session/export", ExportParams, ExportDocument,
           "A session as one document (a page of messages at a time): messages, switches, tasks, summaries."),
)


def _notifications(*ns: Notification) -> dict[str, Notification]:
    return {n.name: n for n in ns}


NOTIFICATIONS: dict[str, Notification] = _notifications(
    Notification("session/created", SessionCreated, "The session began.", True),
    Notification("session/renamed", SessionRenamed, "The title changed.", True),
    Notification("session/deleted", SessionDeleted,
                 "The session is gone; its subscribers are detached. Carries the last seq.", False),
    Notification("session/model_switched", ModelSwitched,
                 "The model changed: manual, auto or failover, with its reason.", True),
    Notification("message/created", MessageCreated,
                 "A user message, or the start of an assistant reply.", True),
    Notification("message/delta", MessageDelta, "Streamed text of a reply.", True),
    Notification("message/completed", MessageCompleted,
                 "A reply ended; carries usage, latency, stop reason, status.", True),
    Notification("message/pinned", MessagePinned, "A message was (un)pinned.", True),
    Notification("session/summarized", ContextSummarized,
                 "Older messages were summarised to fit a model's window.", True),
    Notification("tasks/changed", TasksChanged, "The whole new task list.", True),
    Notification("progress", Progress,
                 "Turn progress begin/report/end; coalesced, not stored.", False),
    Notification("session/forked", SessionForked,
                 "Divergent writes of this device moved to a fork session; re-attach from after_seq.", False),
    Notification("client/dropped", ClientDropped,
                 "This client fell too far behind and was detached.", False),
)

EVENT_TYPES: dict[type, str] = {n.params: n.name for n in NOTIFICATIONS.values()}
"""Notification name by params type, to encode an event without repeating its name."""


def event_method(event: Any) -> str:
    return EVENT_TYPES[type(event)]
