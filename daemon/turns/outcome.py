"""What an attempt came to, and what the turn does next: pure decisions, no I/O.

An attempt is one model answering the turn (its rounds of streaming and tool calls).
Its :class:`Outcome` says how its reply ended; :func:`after_attempt` turns that into
the turn's next step: finish, ask the same model again (an unusable reply), or fail
over to an equivalent model of another provider (a retryable error).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from duologue.protocol.entities import MessageStatus, ModelInfo, Refusal

from ..providers.base import Finished, ProviderError

MAX_ATTEMPTS = 3
MALFORMED_RETRIES = 1
"""A malformed reply (Gemini's MALFORMED_FUNCTION_CALL) is asked again this often."""
MAX_OUTPUT_TOKENS = 8192
THINKING_ROOM = 32_000
"""Output tokens added to a thinking model's budget so thinking cannot crowd out the answer."""


@dataclass
class Outcome:
    status: MessageStatus
    error: ProviderError | None = None
    refusal: Refusal | None = None
    failure: str | None = None
    """Why the turn failed when no provider did (the store could not be written)."""

    @property
    def error_text(self) -> str | None:
        if self.failure is not None:
            return self.failure
        error = self.error
        if error is None:
            return None
        return f"{error.kind}: {error.provider_message}" + (f" (HTTP {error.status})" if error.status else "")


def finished_outcome(finished: Finished | None) -> Outcome:
    """What a stream that ended normally means for the reply."""
    if finished is None:
        return Outcome("failed", ProviderError("internal", "the provider stream ended without its final event",
                                               retryable=False))
    if finished.stop_reason == "refusal":
        return Outcome("refused", refusal=finished.refusal)
    if finished.truncated_call is not None:
        return Outcome("failed", ProviderError(
            "bad_request", f"the reply reached its output limit in the middle of a call of {finished.truncated_call}; "
                           "the call was not run", retryable=False))
    return Outcome("complete")


@dataclass(frozen=True)
class Attempts:
    """What the turn has used so far."""

    made: int = 0
    malformed_left: int = MALFORMED_RETRIES


@dataclass(frozen=True)
class Next:
    action: Literal["finish", "again", "failover"]
    attempts: Attempts
    reason: str = ""


def after_attempt(outcome: Outcome, model: ModelInfo, attempts: Attempts, failover_to: ModelInfo | None) -> Next:
    """The step after an attempt of ``model`` came to ``outcome``.

    ``failover_to`` is the equivalent model routing would move to (None when no
    other provider can take the turn). A refusal, a success and a non-retryable
    error finish the turn; a malformed reply is asked again of the same model,
    ``MALFORMED_RETRIES`` times, before it counts; a retryable error fails over,
    ``MAX_ATTEMPTS`` attempts at most."""
    error = outcome.error
    if error is not None and error.kind == "malformed" and attempts.malformed_left:
        return Next("again", Attempts(attempts.made, attempts.malformed_left - 1),
                    f"{model.id} sent an unusable reply; asked again")
    made = Attempts(attempts.made + 1, attempts.malformed_left)
    if error is None or not error.retryable or failover_to is None or made.made >= MAX_ATTEMPTS:
        return Next("finish", made)
    return Next("failover", made, f"failover: {model.id} failed ({error.kind}); using {failover_to.id}")


def output_budget(model: ModelInfo) -> int:
    """``max_tokens`` for a request: the answer's room, plus room for thinking on a
    model that thinks (thinking counts against ``max_tokens``)."""
    room = MAX_OUTPUT_TOKENS + (THINKING_ROOM if model.thinking != "none" else 0)
    return min(model.max_output_tokens, room)
