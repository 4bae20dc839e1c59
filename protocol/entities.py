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
MessageStatus = Literal["complete", "streaming", "interrupted", "cancelled", "failed", "refused"]
TaskStatus = Literal["pending", "in_progress", "completed"]
SwitchKind = Literal["manual", "auto", "failover"]
Tier = Literal["fast", "balanced", "frontier"]
Provider = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern="^[a-z][a-z0-9_-]*$")]
"""A provider's name. Which names exist is the daemon's word, not the protocol's (a
daemon may know providers this package has never heard of): ``daemon/status`` lists
them with their display names, and the daemon refuses a name it does not know."""
Thinking = Literal["none", "optional", "default", "always"]
"""Whether a model thinks: never, only when asked, unless told not to, or always."""
ThinkingControl = Literal["none", "budget", "effort", "level"]
"""How a request sets the depth of thinking: a token budget (Claude extended thinking),
an effort level (Claude adaptive thinking), a thinking level (Gemini 3)."""
ThinkingDepth = Literal["off", "low", "medium", "high", "max"]
"""What ``session/send`` may ask for; mapped onto the model's control, never past what
the model allows (``off`` on a model that always thinks is refused)."""

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
    signature: str | None = None
    """Provider side data: Gemini's ``thoughtSignature`` on this text part (base64,
    as sent). Sent back only to the model that wrote the message."""


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
    signature: str | None = None
    """Provider side data: Gemini's ``thoughtSignature`` on this function call."""


class ToolResultBlock(Record, tag="tool_result", tag_field="type", frozen=True):
    """The daemon's answer to a :class:`ToolCallBlock` with the same ``call_id``."""

    call_id: str
    name: str
    content: str
    is_error: bool = False


class ThinkingBlock(Record, tag="thinking", tag_field="type", frozen=True):
    """A model's thinking, kept apart from its reply and never mixed into it.

    ``signature`` is the provider's opaque proof (Claude's ``signature``, Gemini's
    ``thoughtSignature``), ``redacted`` holds the encrypted ``data`` of a Claude
    ``redacted_thinking`` block (then ``text`` is empty). Both are sent back byte-exact
    to the model that wrote the message and to no other model (docs/protocol.md,
    "Provider side data").
    """

    text: str = ""
    signature: str | None = None
    redacted: str | None = None


ImageMediaType = Literal["image/jpeg", "image/png", "image/webp"]
"""The image formats every model that takes images reads: Claude takes JPEG, PNG, GIF
and WebP, Gemini PNG, JPEG, WebP, HEIC and HEIF. Only what both take is accepted, so
an image stays readable across a switch to the other provider."""


class ImageBlock(Record, tag="image", tag_field="type", frozen=True):
    """An image the user attached: the file's bytes as standard, padded base64.

    Sent verbatim to a model that takes images (Claude's ``image`` block, Gemini's
    ``inlineData`` part); a model that does not gets a text note in its place
    (docs/protocol.md, "Images"). ``name`` is how clients label it (a file name or
    URI), never sent to a model.
    """

    media_type: ImageMediaType
    data: str
    name: str | None = None


ContentBlock = TextBlock | CodeContextBlock | ImageBlock | ToolCallBlock | ToolResultBlock | ThinkingBlock


class Usage(Record, frozen=True):
    """Tokens as the provider billed them.

    ``input_tokens`` is the uncached input; cache reads and writes are apart (Claude
    reports them apart; for Gemini, ``cache_read_tokens`` is ``cachedContentTokenCount``
    and is taken out of the prompt count). ``output_tokens`` includes thinking, of
    which ``thinking_tokens`` is the share (Gemini's ``thoughtsTokenCount``).
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    """Written to a 5-minute cache (Claude); billed at the cache-write price."""
    cache_write_1h_tokens: int = 0
    """Written to a 1-hour cache (Claude); billed at the 1-hour cache-write price."""
    thinking_tokens: int = 0

    @property
    def prompt_tokens(self) -> int:
        """Every input token of the request, cached or not."""
        return self.input_tokens + self.cache_read_tokens + self.cache_write_tokens + self.cache_write_1h_tokens


class Refusal(Record, frozen=True):
    """Why a provider refused (Claude ``stop_details``, a Gemini block or safety stop).

    ``category`` is the provider's own word (``cyber``, ``SAFETY``, ``PROHIBITED_CONTENT``
    ...) or None when it gave none.
    """

    provider: Provider
    category: str | None = None
    explanation: str | None = None


TOOL_ROUNDS_USED_UP = "tool_rounds"
"""The ``stop_reason`` of tool results that end their turn: it used up its tool
rounds, so no model answers them. Other tool results are answered by the turn's next
round (and a daemon stopped between the two closes the turn when it starts again)."""


# gc=False: a frozen record of blocks cannot be part of a reference cycle, and a daemon
# keeps tens of thousands of messages for its sessions' histories, which every full
# collection would otherwise walk with every thread stopped.
class Message(Record, frozen=True, gc=False):
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
    refusal: Refusal | None = None
    """Set when ``status`` is ``refused``: the exchange stays in the transcript and is
    left out of every later request (docs/protocol.md, "Refusals")."""
    cost_usd: float | None = None
    """What this reply cost as billed (from ``usage`` and the model's prices)."""

    @property
    def text(self) -> str:
        """The concatenated text blocks: what a person reads of this message."""
        return "".join(b.text for b in self.content if isinstance(b, TextBlock))

    @property
    def thinking(self) -> str:
        """The concatenated thinking text, shown apart from the reply."""
        return "".join(b.text for b in self.content if isinstance(b, ThinkingBlock))


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
    choice: str | None = None
    """What the session's model was set to by this switch (a model id, or ``auto``),
    when the switch set it (``session/switch_model``); None for a switch a turn made
    (an auto pick, a failover, a model for one turn). A switch to ``auto`` may keep
    the model that answers: ``from_model == to_model`` with ``choice: "auto"``."""

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
    cost_usd: float = 0.0
    """What the session's replies have cost so far, as billed (every model's). Zero
    on a daemon answering from the emulator, which bills nothing."""
    title_given: bool = False
    """The title was given by a person (``session/create`` with a title,
    ``session/rename``) or came with an import: the daemon never replaces it. A
    session without one is titled by the daemon after its first exchange completes
    (a ``session/renamed`` event), from what was asked."""


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


class PriceTier(Record, frozen=True):
    """Prices that apply instead when a request's prompt is above ``above_tokens``
    (Gemini Pro bills prompts over 200k tokens higher, input and output alike)."""

    above_tokens: int
    input_per_mtok: float
    output_per_mtok: float
    cache_read_per_mtok: float | None = None


class Pricing(Record, frozen=True):
    """US dollars per million tokens.

    Cache prices default from the input price the way Anthropic bills them (reads
    0.1x, 5-minute writes 1.25x, 1-hour writes 2x) when the catalog gives none.
    """

    input_per_mtok: float
    output_per_mtok: float
    cache_read_per_mtok: float | None = None
    cache_write_per_mtok: float | None = None
    cache_write_1h_per_mtok: float | None = None
    tiers: list[PriceTier] = []


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
    thinking: Thinking = "none"
    thinking_control: ThinkingControl = "none"
    forbids_prefill: bool = False
    """The API refuses a request that ends with an assistant message (Claude 4.6+)."""
    images: bool = True
    """The model reads images (its API takes image blocks or parts)."""
    lifecycle: Literal["active", "deprecated", "retired", "unlisted"] = "active"
    """From the provider's models endpoint when the daemon could list it; ``unlisted``
    means the provider's list did not name this id."""
