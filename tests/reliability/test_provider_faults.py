"""Provider faults, on both providers: each ends the turn as documented.

README and docs/RELIABILITY.md promise: a retryable provider error (429, 500, 529, a
timeout, a stream cut mid-way, malformed stream data) moves the turn to an
equivalent model of the other provider, recorded as a failover switch, and the
failed attempt keeps its partial text and a clear error; a non-retryable one (an
invalid key) fails the turn with a clear stored error that holds no key. Nothing
committed before the fault is lost (an earlier turn, the prompt, the text streamed
before a cut), and metrics/get counts the error by kind.

Each case runs on a fresh daemon so one provider's cool-down (three retryable
failures in a row) cannot leak from one case into the next.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conversation_support import provider_daemon, send_and_wait

from duologue.daemon.emulator import Emulator, Failure, Reply
from duologue.protocol import methods as m

STREAMED = [f"part{i} " for i in range(12)]
MODEL = {"anthropic": "sonnet", "gemini": "flash"}
MODEL_ID = {"anthropic": "claude-sonnet-5-5", "gemini": "gemini-3.8-flash"}
OTHER = {"anthropic": "gemini", "gemini": "anthropic"}

FAULTS = {
    "429": (lambda: Failure(status=429, retry_after=0), "rate_limited"),
    "500": (lambda: Failure(status=500), "server"),
    "529": (lambda: Failure(status=529), "overloaded"),
    "timeout": (lambda: Failure(delay=30.0), "timeout"),
    "stream_cut": (lambda: Failure(cut_after=6, reply=Reply(chunks=STREAMED, chunk_delay=0.06, thinking="")), "stream_cut"),
    "malformed_sse": (lambda: Failure(malformed_after=6, reply=Reply(chunks=STREAMED, chunk_delay=0.06, thinking="")), "server"),
    "invalid_key": (None, "auth"),
}
TALLY: dict[str, dict[str, str]] = {}


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    emu = Emulator().start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.mark.parametrize("provider", ["anthropic", "gemini"])
@pytest.mark.parametrize("fault", list(FAULTS))
async def test_a_provider_fault_ends_the_turn_as_documented_and_is_counted(
        home: Path, emulator: Emulator, provider: str, fault: str, figures):
    emulator.reset()
    make, kind = FAULTS[fault]
    keys = {f"{name}_key": key for name, key in emulator.api_keys.items()}
    if fault == "invalid_key":
        keys[f"{provider}_key"] = "invalid-" + keys[f"{provider}_key"]
    d = provider_daemon(home, emulator, timeout_s=2.0, **keys).start()
    try:
        async with d.client("faults") as c:
            s = await c.create_session(model=MODEL[provider])
            await c.attach(s.id, since_seq=s.last_seq)
            if fault != "invalid_key":  # something committed before the fault
                emulator.script(provider, Reply(text="an answer from before the fault"))
                await send_and_wait(c, s.id, "first question")
            before = (await c.get_session(s.id)).messages
            if make is not None:
                emulator.script(provider, make())
            emulator.script(OTHER[provider], Reply(text="the other provider answers"))
            events = await send_and_wait(c, s.id, "the question that meets the fault")
            got = await c.get_session(s.id)
            metrics = await c.metrics()
        log = d.log()
    finally:
        d.stop()

    assert got.messages[: len(before)] == before, "a message committed before the fault changed or vanished"
    new = got.messages[len(before):]
    prompt, failed = new[0], new[1]
    assert prompt.role == "user" and prompt.text == "the question that meets the fault"
    assert failed.role == "assistant" and failed.status == "failed" and failed.model == MODEL_ID[provider]
    assert failed.error and failed.error.startswith(kind), failed.error
    for secret in emulator.api_keys.values():
        assert secret not in failed.error and secret not in log
    if fault in ("stream_cut", "malformed_sse"):
        # the text streamed before the fault is kept, and it is the beginning of the reply
        assert failed.text and "".join(STREAMED).startswith(failed.text), failed.text
        deltas = "".join(e.text for e in events if isinstance(e, m.MessageDelta) and e.message_id == failed.id)
        assert deltas == failed.text
    model_metrics = {x.name: x for x in metrics.models}
    assert model_metrics[MODEL_ID[provider]].errors == {kind: 1}
    assert {x.name: x for x in metrics.providers}[provider].errors == {kind: 1}

    if fault == "invalid_key":
        assert len(new) == 2, "an auth error must not fail over"
        assert not got.switches
        outcome = "failed with a stored auth error"
    else:
        answered = new[2]
        assert answered.status == "complete" and answered.text == "the other provider answers"
        switch = got.switches[-1]
        assert switch.kind == "failover" and kind in switch.reason and switch.from_model == MODEL_ID[provider]
        assert switch.to_model == answered.model
        assert model_metrics[MODEL_ID[provider]].failovers_from == 1
        assert model_metrics[answered.model].completed == 1
        outcome = f"failover to {answered.model}"
    TALLY.setdefault(provider, {})[fault] = f"{kind}: {outcome}"
    figures["provider_faults"] = TALLY
