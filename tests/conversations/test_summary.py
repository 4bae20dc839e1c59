"""Summaries: a model whose window cannot hold the history gets a summary of the
older turns, the recent turns verbatim, and pinned context verbatim."""

from __future__ import annotations

from conversation_support import model_entry, provider_daemon, send_and_wait

from duologue.protocol.entities import CodeContextBlock

TINY = model_entry("claude-tiny", "tiny", "Tiny window (test)", context_window=4000, max_output_tokens=500)


def _filler(tag: str, n: int = 300) -> str:
    return " ".join(f"{tag}{i}" for i in range(n))


async def test_small_window_gets_summary_recent_turns_and_pinned_context_verbatim(home, emulator):
    emulator.models.alias("claude-tiny", like="claude-haiku-4-5")  # a model the provider serves too
    d = provider_daemon(home, emulator, top='summary_model = "flash"', config=TINY).start()
    try:
        async with d.client() as c:
            s = await c.create_session(model="sonnet")
            await c.attach(s.id, since_seq=s.last_seq)
            code = CodeContextBlock(path="src/keep.rs", text="fn keep_me_verbatim() {}\n", language="rust")
            await send_and_wait(c, s.id, "first " + _filler("old"), context=[code])
            await send_and_wait(c, s.id, "PINNED-FACT: the deadline is Friday", pin=True)
            for k in range(3):
                await send_and_wait(c, s.id, f"middle {k} " + _filler(f"mid{k}x"))
            await c.switch_model(s.id, "tiny")
            await send_and_wait(c, s.id, "LATEST-QUESTION: what now?")

            tiny_request = [r for r in emulator.received if r.model == "claude-tiny"][-1]
            body = str(tiny_request.body["messages"])
            assert "Summary of the" in body
            assert "fn keep_me_verbatim() {}" in body and "PINNED-FACT: the deadline is Friday" in body
            assert "LATEST-QUESTION: what now?" in body
            assert "old150" not in body  # the oldest turn's text is summarised, not sent

            summary_requests = [r for r in emulator.received
                                if r.provider == "gemini" and "Summarise this conversation" in str(r.body)]
            assert len(summary_requests) == 1
            summaries = await c.summaries(s.id)
            assert len(summaries) == 1 and summaries[0].model == "gemini-3.8-flash"
            assert summaries[0].for_model == "claude-tiny" and summaries[0].text
            reply = [msg for msg in (await c.get_session(s.id)).messages if msg.role == "assistant"][-1]
            assert reply.status == "complete" and reply.model == "claude-tiny"
    finally:
        d.stop()


async def test_history_that_fits_is_sent_verbatim_without_a_summary(c1, emulator):
    s = await c1.create_session(model="sonnet")
    await c1.attach(s.id, since_seq=s.last_seq)
    await send_and_wait(c1, s.id, "one " + _filler("a"))
    await send_and_wait(c1, s.id, "two")
    assert "a299" in str(emulator.received[-1].body["messages"])
    assert await c1.summaries(s.id) == []
