"""What every provider adapter promises the router, independent of any SDK.

A turn goes in as a :class:`TurnRequest` built from the unified history; what comes
back is a stream of :class:`TextDelta`, :class:`ThinkingDelta`, :class:`ThinkingDone`,
:class:`TextSignature`, :class:`ToolCallEvent` and exactly one final
:class:`Finished`, in the order the model produced them (the order is side data too:
Claude wants its thinking blocks back where they were). Anything that goes wrong surfaces as one :class:`ProviderError`
whose ``kind`` the router can act on (retry, fail over, tell the user) without
knowing which SDK raised what. A provider's models endpoint, when it has one, is read
as :class:`ListedModel` entries. No SDK is imported here.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import timezone
from typing import Any, Literal, Protocol, TypeVar

import msgspec

from duologue.protocol.entities import Message, ModelInfo, Refusal, ThinkingDepth, Timestamp, Usage

from ..redact import scrub
from .preparation import PreparedHistory

ErrorKind = Literal["rate_limited", "overloaded", "server", "timeout", "auth", "bad_request", "stream_cut",
                    "not_found", "malformed", "internal", "deadline"]
"""``not_found``: the model id is unknown or retired (another model may answer);
``malformed``: the model produced an unusable reply (a malformed function call);
``internal``: an exception nobody foresaw at the provider boundary (an SDK or our bug);
``deadline``: the turn ran past ``turn_timeout_s``."""

T = TypeVar("T")

RETRYABLE_KINDS: frozenset[str] = frozenset({"rate_limited", "overloaded", "server", "timeout", "stream_cut",
                                             "not_found", "deadline"})

@dataclass(frozen=True)
class ToolSpec:
    """A tool offered to the model; ``parameters`` is a JSON Schema object."""

    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(frozen=True)
class TurnRequest:
    """One provider call: the whole history as the model should see it."""

    model: str
    system: str | None
    messages: list[Message]
    tools: list[ToolSpec] = field(default_factory=list)
    max_tokens: int = 4096
    info: ModelInfo | None = None
    """The catalog entry of ``model``: whether it thinks, how thinking is set, whether
    it forbids prefill. None in tests that call an adapter with a bare id."""
    thinking: ThinkingDepth | None = None
    """What the user asked for this turn; None leaves the model's default."""
    prepared: PreparedHistory | None = None
    """``messages`` with their settled start already prepared and encoded (a round
    sending the verbatim history); None: the adapter prepares them all."""


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ThinkingDelta:
    """Thinking text as it streams, to show (apart from the reply) while it arrives."""

    text: str


@dataclass(frozen=True)
class ThinkingDone:
    """One whole thinking block, with the side data the provider wants back."""

    text: str
    signature: str | None = None
    redacted: str | None = None


@dataclass(frozen=True)
class TextSignature:
    """A signature on the text part just streamed (Gemini's last text chunk)."""

    signature: str


@dataclass(frozen=True)
class ToolCallEvent:
    """A complete tool call (its input fully received)."""

    id: str
    name: str
    input: dict[str, Any]
    signature: str | None = None


@dataclass(frozen=True)
class Finished:
    """The last event of a successful stream. ``stop_reason`` is normalised to one of
    ``end_turn``, ``max_tokens``, ``tool_use``, ``stop_sequence``, ``refusal`` or
    ``other``; a ``refusal`` stop carries the provider's reason. ``truncated_call`` names a tool
    call the output limit cut off (its input never completed)."""

    stop_reason: str | None
    usage: Usage
    refusal: Refusal | None = None
    truncated_call: str | None = None


StreamEvent = TextDelta | ThinkingDelta | ThinkingDone | TextSignature | ToolCallEvent | Finished


class ListedModel(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One model as a provider's models endpoint lists it; None where it says nothing."""

    id: str
    display_name: str | None = None
    max_input_tokens: int | None = None
    max_output_tokens: int | None = None
    thinking: bool | None = None
    """Whether the model supports thinking at all."""
    thinking_types: list[str] | None = None
    """Claude: the ``thinking.type`` values the model accepts (``adaptive``, ``enabled``,
    ``disabled``, ``between_tools``). None for Gemini, whose listing has no such detail."""
    effort: bool | None = None
    """Claude: whether ``output_config.effort`` is accepted."""
    images: bool | None = None
    """Claude: whether the model reads images (``capabilities.image_input``)."""
    lifecycle: Literal["active", "deprecated", "retired"] = "active"
    retires_at: Timestamp | None = None


class ProviderError(Exception):
    """A provider failure in provider-neutral terms.

    ``provider_message`` is safe to show and to log: the adapters scrub the API key
    from it. ``retry_after`` is the server's requested wait in seconds, when it gave
    one. ``retryable`` defaults from the kind.
    """

    def __init__(
        self,
        kind: ErrorKind,
        provider_message: str,
        *,
        provider: str = "",
        status: int | None = None,
        retry_after: float | None = None,
        retryable: bool | None = None,
    ) -> None:
        self.kind: ErrorKind = kind
        self.provider_message = provider_message
        self.provider = provider
        self.status = status
        self.retry_after = retry_after
        self.retryable = kind in RETRYABLE_KINDS if retryable is None else retryable
        where = f"{provider} " if provider else ""
        code = f" (HTTP {status})" if status else ""
        super().__init__(f"{where}{kind}{code}: {provider_message}")


@dataclass(frozen=True)
class Connection:
    """What every adapter is built from, whatever its SDK's constructor wants: the one
    signature the registry and the router call (``Adapter.connect(connection)``)."""

    api_key: str
    base_url: str | None
    """None: the provider's public endpoint (never an environment variable the SDK
    would read behind the settings' back)."""
    timeout_s: float
    max_retries: int


class Provider(Protocol):
    """A model provider adapter. ``stream`` yields events of one turn, then Finished."""

    name: str

    @classmethod
    def connect(cls, connection: Connection) -> Provider: ...

    def stream(self, req: TurnRequest) -> AsyncIterator[StreamEvent]: ...

    async def aclose(self) -> None: ...


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``retry-after`` value: a number of seconds or an
    HTTP-date (RFC 9110 allows both); None when it is neither."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def unforeseen(exc: BaseException, provider: str, api_key: str | None) -> ProviderError:
    """Any exception nobody mapped (an SDK choking on an event, a bug of ours) as a
    ProviderError with a message, so a turn never ends without an error text."""
    detail = scrub(str(exc), api_key)[:300] or "no detail"
    return ProviderError("internal", f"unexpected {type(exc).__name__} while reading the {provider} reply: {detail}",
                         provider=provider, retryable=False)


ErrorMapper = Callable[..., "ProviderError | None"]
"""An adapter's SDK error mapping: ``(exc, *, api_key, midstream) -> ProviderError | None``."""


@contextlib.contextmanager
def sdk_boundary(provider: str, api_key: str | None, mapper: ErrorMapper,
                 midstream: Callable[[], bool] = lambda: False) -> Iterator[None]:
    """Where an adapter's SDK calls run: every exception leaves as a ProviderError.

    The adapter's ``mapper`` names what it knows (statuses, transport failures);
    anything else becomes ``unforeseen``, so a turn never ends without an error text.
    ``midstream`` says whether stream events had arrived (a cut is then a stream cut)."""
    try:
        yield
    except ProviderError:
        raise
    except Exception as exc:
        mapped = mapper(exc, api_key=api_key, midstream=midstream())
        raise (mapped or unforeseen(exc, provider, api_key)) from exc


async def idle_guard(events: AsyncIterator[T], idle_s: float, provider: str) -> AsyncIterator[T]:
    """Yield ``events``, failing when none arrives for ``idle_s`` seconds.

    The HTTP read timeout alone cannot end a stream that sends only keepalives (each
    ``ping`` resets it, and the SDK hides pings); this watches for real events.
    """
    iterator = events.__aiter__()
    while True:
        try:
            # Not wait_for: on Python 3.11 it drops a cancellation that arrives as the
            # awaited event completes, and session/cancel would then be lost.
            async with asyncio.timeout(idle_s):
                item = await iterator.__anext__()
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise ProviderError("timeout", f"{provider} sent nothing but keepalives for {idle_s:g} s",
                                provider=provider) from None
        yield item
