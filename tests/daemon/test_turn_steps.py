"""The turn's pure decisions, without a daemon: what follows an attempt, what a
stream's end means, the output budget, and which messages a round sends."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from duologue.daemon.providers.base import Finished, ProviderError
from duologue.daemon.turns.outcome import (
    MALFORMED_RETRIES,
    MAX_ATTEMPTS,
    MAX_OUTPUT_TOKENS,
    THINKING_ROOM,
    Attempts,
    Outcome,
    after_attempt,
    finished_outcome,
    output_budget,
)
from duologue.daemon.turns.request import history_for
from duologue.protocol.entities import Message, ModelInfo, Pricing, Refusal, TextBlock


def model(id_: str, thinking: str = "none", max_output: int = 64_000) -> ModelInfo:
    provider = "anthropic" if id_.startswith("claude") else "gemini"
    return ModelInfo(id=id_, provider=provider, display_name=id_, short_name=id_, context_window=200_000,
                     max_output_tokens=max_output, pricing=Pricing(input_per_mtok=1, output_per_mtok=2),
                     tier="balanced", thinking=thinking)  # type: ignore[arg-type]


SONNET, FLASH = model("claude-sonnet-5-5"), model("gemini-3.8-flash")


def failed(kind: str, retryable: bool) -> Outcome:
    return Outcome("failed", ProviderError(kind, "it went wrong", provider="anthropic", retryable=retryable))


def test_success_refusal_and_a_final_error_finish_the_turn():
    for outcome in (Outcome("complete"), Outcome("refused", refusal=Refusal(provider="anthropic")),
                    failed("auth", retryable=False), Outcome("failed", failure="the disk is full")):
        assert after_attempt(outcome, SONNET, Attempts(), FLASH).action == "finish"


def test_a_retryable_error_fails_over_and_says_to_which_model():
    step = after_attempt(failed("overloaded", retryable=True), SONNET, Attempts(), FLASH)
    assert step.action == "failover" and step.attempts.made == 1
    assert step.reason == "failover: claude-sonnet-5-5 failed (overloaded); using gemini-3.8-flash"


def test_a_retryable_error_with_nowhere_to_go_finishes():
    assert after_attempt(failed("server", retryable=True), SONNET, Attempts(), None).action == "finish"


def test_failover_stops_after_the_last_attempt():
    attempts, actions = Attempts(), []
    for _ in range(MAX_ATTEMPTS + 2):
        step = after_attempt(failed("rate_limited", retryable=True), SONNET, attempts, FLASH)
        actions.append(step.action)
        attempts = step.attempts
        if step.action == "finish":
            break
    assert actions == ["failover"] * (MAX_ATTEMPTS - 1) + ["finish"]


def test_a_malformed_reply_is_asked_again_of_the_same_model_before_it_counts():
    malformed = failed("malformed", retryable=True)
    attempts = Attempts()
    for _ in range(MALFORMED_RETRIES):
        step = after_attempt(malformed, FLASH, attempts, SONNET)
        assert step.action == "again" and step.attempts.made == 0
        assert "asked again" in step.reason
        attempts = step.attempts
    assert after_attempt(malformed, FLASH, attempts, SONNET).action == "failover"


def test_a_stream_without_its_final_event_is_a_failure_not_a_complete_reply():
    outcome = finished_outcome(None)
    assert outcome.status == "failed" and outcome.error.kind == "internal"


def test_a_refusal_stop_and_a_call_cut_by_the_output_limit():
    refusal = Refusal(provider="anthropic", category="cyber")
    assert finished_outcome(Finished("refusal", None, refusal=refusal)) == Outcome("refused", refusal=refusal)
    cut = finished_outcome(Finished("max_tokens", None, truncated_call="update_tasks"))
    assert cut.status == "failed" and "update_tasks" in cut.error_text and not cut.error.retryable
    assert finished_outcome(Finished("end_turn", None)) == Outcome("complete")


def test_the_error_text_names_the_kind_and_the_http_status():
    error = ProviderError("server", "boom", provider="gemini", status=503)
    assert Outcome("failed", error).error_text == "server: boom (HTTP 503)"
    assert Outcome("failed", error, failure="the disk is full").error_text == "the disk is full"
    assert Outcome("complete").error_text is None


@pytest.mark.parametrize("thinking, cap, expected", [
    ("none", 64_000, MAX_OUTPUT_TOKENS),
    ("default", 64_000, MAX_OUTPUT_TOKENS + THINKING_ROOM),
    ("always", 16_000, 16_000),
])
def test_thinking_models_get_room_to_think_within_their_cap(thinking, cap, expected):
    assert output_budget(model("claude-x", thinking, cap)) == expected


def _msg(seq: int, role: str, turn: str, status: str = "complete") -> Message:
    return Message(id=f"m{seq}", session_id="s", seq=seq, role=role, content=[TextBlock(text=f"#{seq}")],  # type: ignore[arg-type]
                   created_at=datetime(2026, 12, 1, tzinfo=UTC), turn_id=turn, status=status)  # type: ignore[arg-type]


def test_a_prompt_queued_during_a_reply_follows_that_reply_and_later_prompts_stay_out():
    messages = [_msg(1, "user", "a"), _msg(2, "user", "b"), _msg(3, "assistant", "a"), _msg(4, "user", "c")]
    assert [x.seq for x in history_for(messages, messages[1])] == [1, 3, 2]


def test_attempts_that_did_not_complete_stay_out_of_the_request():
    messages = [_msg(1, "user", "a"), _msg(2, "assistant", "a", "failed"), _msg(3, "assistant", "a"),
                _msg(4, "user", "b"), _msg(5, "assistant", "b", "failed")]
    # the earlier turn's replaced failure goes; so does the running turn's own failed attempt
    assert [x.seq for x in history_for(messages, messages[3])] == [1, 3, 4]
