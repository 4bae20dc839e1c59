"""What every provider adapter promises the router, independent of any SDK.

A turn goes in as a :class:`TurnRequest` built from the unified history; what comes
back is a stream of :class:`TextDelta`, :class:`ToolCallEvent` and exactly one final
:class:`Finished`. Anything that goes wrong surfaces as one :class:`ProviderError`
whose ``kind`` the router can act on (retry, fail over, tell the user) without
knowing which SDK raised what. No SDK is imported here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from duologue.protocol.entities import Message, Usage

ErrorKind = Literal["rate_limited", "overloaded", "server", "timeout", "auth", "bad_request", "stream_cut"]

RETRYABLE_KINDS: frozenset[str] = frozenset({"rate_limited", "overloaded", "server", "timeout", "stream_cut"})

StopReason = Literal["end_turn", "max_tokens", "tool_use", "stop_sequence", "refusal", "other"]


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


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ToolCallEvent:
    """A complete tool call (its input fully received)."""

    id: str
    name: str
    input: dict[str, Any]


@dataclass(frozen=True)
class Finished:
    """The last event of a successful stream. ``stop_reason`` is normalised."""

    stop_reason: str | None
    usage: Usage


StreamEvent = TextDelta | ToolCallEvent | Finished


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


class Provider(Protocol):
    """A model provider adapter. ``stream`` yields events of one turn, then Finished."""

    name: str

    def stream(self, req: TurnRequest) -> AsyncIterator[StreamEvent]: ...

    async def aclose(self) -> None: ...


def scrub(text: str, *secrets: str | None) -> str:
    """Remove secrets from a message that may be shown or logged."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return text
