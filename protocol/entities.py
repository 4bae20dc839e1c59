"""The data model shared by the daemon, its store and every client.

These Structs are the schema: the store encodes them with msgspec, the wire carries
them as JSON, and ``schemas/`` is generated from them. Record types tolerate unknown
fields so an older client can read what a newer daemon writes; what a client sends
(method params) is strict instead, see ``methods.py``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

Role = Literal["user", "assistant"]
MessageStatus = Literal["complete", "streaming", "interrupted", "cancelled", "failed"]
TaskStatus = Literal["pending", "in_progress", "completed"]
SwitchKind = Literal["manual", "auto", "failover"]
Tier = Literal["fast", "balanced", "frontier"]
Provider = Literal["anthropic", "gemini"]

Timestamp = Annotated[datetime, msgspec.Meta(tz=True)]
"""Every time on the wire and in the store is timezone-aware (RFC 3339 with offset)."""

AUTO = "auto"
"""The pseudo model id that asks the daemon to pick a model per turn."""


class Record(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Base of every persisted or transmitted record."""


class LineRange(Record, frozen=True):
    """Lines of a file, 1-based and inclusive at both ends."""

    start: int
    end: int


class TextBlock(Record, tag="text", tag_field="type", frozen=True):
    text: str


class CodeContextBlock(Record, tag="code_context", tag_field="type", frozen=True):
    """A piece of code the user attached: kept verbatim through any summary."""

    path: str
    text: str
    language: str | None = None
    range: LineRange | None = None


class ToolCallBlock(Record, tag="tool_call", tag_field="type", frozen=True):
    """A model's call of a tool the daemon offered (e.g. the task tool)."""

    id: str
    name: str
    input: dict[str, Any] = {}


class ToolResultBlock(Record, tag="tool_result", tag_field="type", frozen=True):
    """The daemon's answer to a :class:`ToolCallBlock` with the same ``call_id``."""

    call_id: str
    name: str
    content: str
    is_error: bool = False


ContentBlock = TextBlock | CodeContextBlock | ToolCallBlock | ToolResultBlock


class Usage(Record, frozen=True):
    input_tokens: int = 0
    output_tokens: int = 0


class Message(Record, frozen=True):
    """One turn of one side. ``seq`` is the session event that created it."""

    id: str
    session_id: str
    seq: int
    role: Role
    content: list[ContentBlock]
    created_at: Timestamp
    model: str | None = None
    turn_id: str | None = None
    """The turn this message belongs to: its prompt and every reply attempt."""
    status: MessageStatus = "complete"
    pinned: bool = False
    usage: Usage | None = None
    latency_ms: float | None = None
    ttft_ms: float | None = None
    stop_reason: str | None = None
    error: str | None = None

    @property
    def text(self) -> str:
        """The concatenated text blocks: what a person reads of this message."""
        return "".join(b.text for b in self.content if isinstance(b, TextBlock))


class ModelSwitch(Record, frozen=True):
    """A change of the session's model, and why.

    ``message_index`` is the number of messages in the session when the switch
    happened, so the switch sits between message ``message_index - 1`` and the next.
    """

    seq: int
    from_model: str | None
    to_model: str
    at: Timestamp
    message_index: int
    reason: str
    kind: SwitchKind = "manual"

    @property
    def automatic(self) -> bool:
        return self.kind != "manual"


class Task(Record, frozen=True):
    id: str
    content: str
    status: TaskStatus = "pending"
    active_form: str | None = None


class TaskList(Record, frozen=True):
    """A session's whole task list, replaced as a unit by each writer."""

    tasks: list[Task] = []
    updated_by: str | None = None
    updated_at: Timestamp | None = None


class Session(Record, frozen=True):
    """A conversation with one model-agnostic id and one history.

    ``model`` is what the user chose (a model id or ``auto``); ``current_model`` is the
    concrete model that answers next (the last auto or failover choice).
    ``last_seq`` is the newest event's sequence number.
    """

    id: str
    title: str
    created_at: Timestamp
    updated_at: Timestamp
    model: str
    current_model: str
    project_id: str | None = None
    system_prompt: str | None = None
    metadata: dict[str, str] = {}
    last_seq: int = 0
    message_count: int = 0


class ContextSummary(Record, frozen=True):
    """The summary that stands in for a session's older messages when a model's
    window cannot hold them all. Stored, so it is computed once and can be shown.

    It covers the messages with ``seq <= covers_up_to_seq`` except the pinned ones
    (pinned messages and attached code context always travel verbatim).
    """

    session_id: str
    seq: int
    covers_up_to_seq: int
    covered_messages: int
    model: str
    text: str
    created_at: Timestamp
    for_model: str


class Pricing(Record, frozen=True):
    """US dollars per million tokens."""

    input_per_mtok: float
    output_per_mtok: float


class ModelInfo(Record, frozen=True):
    """A catalog entry. The catalog is data: users extend it in the config file."""

    id: str
    provider: Provider
    display_name: str
    short_name: str
    context_window: int
    max_output_tokens: int
    pricing: Pricing
    tier: Tier
    available: bool = True
