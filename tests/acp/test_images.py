"""Images in ACP prompts: an editor's ``image`` block reaches the model in its
provider's shape, comes back on ``session/load``, and a bad one is a JSON-RPC error
that stores nothing."""

from __future__ import annotations

import asyncio
import base64

import pytest
from acp import RequestError, image_block, text_block
from conversation_support import BLIND, provider_daemon
from image_support import GIF_B64, JPEG_B64, PNG, PNG_B64


async def _open(start_live_acp, project, model: str):
    agent = await start_live_acp()
    new = await agent.conn.new_session(cwd=str(project))
    await agent.conn.set_config_option(config_id="model", session_id=new.session_id, value=model)
    return agent, new.session_id


async def test_an_image_prompt_reaches_claude_as_an_image_block_and_gemini_as_inline_data(
        start_live_acp, project, emulator, live):
    agent, sid = await _open(start_live_acp, project, "sonnet")
    shot = image_block(PNG_B64, "image/png", uri=f"file://{project}/shot.png")
    answer = await asyncio.wait_for(agent.conn.prompt(session_id=sid, prompt=[
        text_block("what is in this screenshot?"), shot]), 90)
    assert answer.stop_reason == "end_turn"
    assert "You showed me 1 image (image/png)" in agent.recorder.text(sid)
    content = emulator.received[-1].body["messages"][0]["content"]
    assert content[0] == {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64}}
    assert content[1]["text"] == "what is in this screenshot?"

    await agent.conn.set_config_option(config_id="model", session_id=sid, value="flash")
    await asyncio.wait_for(agent.conn.prompt(session_id=sid, prompt=[image_block(JPEG_B64, "image/jpeg")]), 90)
    parts = [p for c in emulator.received[-1].body["contents"] for p in c["parts"] if "inlineData" in p]
    sent = [base64.urlsafe_b64decode(p["inlineData"]["data"] + "=" * (-len(p["inlineData"]["data"]) % 4))
            for p in parts]
    assert sent == [PNG, base64.b64decode(JPEG_B64)]
    async with live.client() as other:
        got = await other.get_session(sid)
    assert got.messages[0].content[0].name == "shot.png"


async def test_session_load_replays_the_image_as_a_user_message_chunk(start_live_acp, project):
    agent, sid = await _open(start_live_acp, project, "sonnet")
    await asyncio.wait_for(agent.conn.prompt(session_id=sid, prompt=[
        text_block("look"), image_block(PNG_B64, "image/png")]), 90)
    other = await start_live_acp()
    await other.conn.load_session(cwd=str(project), session_id=sid)
    chunks = [u.content for u in other.recorder.of(sid, "user_message_chunk")]
    assert [c.type for c in chunks] == ["image", "text"]
    assert chunks[0].mime_type == "image/png" and chunks[0].data == PNG_B64


@pytest.mark.parametrize("block, says", [
    (image_block(GIF_B64, "image/gif"), "image/gif images cannot be sent"),
    (image_block(JPEG_B64, "image/png"), "data holds an image/jpeg file, not image/png"),
    (image_block("%%%", "image/png"), "not base64"),
])
async def test_a_bad_image_is_invalid_params_and_nothing_is_stored(start_live_acp, project, live, block, says):
    agent, sid = await _open(start_live_acp, project, "sonnet")
    with pytest.raises(RequestError) as refused:
        await asyncio.wait_for(agent.conn.prompt(session_id=sid, prompt=[text_block("look"), block]), 60)
    assert refused.value.code == -32602 and "prompt block 1" in str(refused.value) \
        and says in str(refused.value)
    async with live.client() as other:
        assert (await other.get_session(sid)).messages == []


async def test_an_image_for_a_model_that_reads_none_is_refused_with_the_daemons_reason(home, emulator, project,
                                                                                     start_acp_on):
    emulator.models.alias("claude-blind", like="claude-haiku-4-5")
    d = provider_daemon(home, emulator, config=BLIND).start()
    try:
        agent = await start_acp_on(d)()
        new = await agent.conn.new_session(cwd=str(project))
        await agent.conn.set_config_option(config_id="model", session_id=new.session_id, value="blind")
        with pytest.raises(RequestError) as refused:
            await asyncio.wait_for(agent.conn.prompt(session_id=new.session_id, prompt=[
                text_block("look"), image_block(PNG_B64, "image/png")]), 60)
        assert refused.value.code == -32602 and "claude-blind does not take images" in str(refused.value)
        async with d.client() as other:
            assert (await other.get_session(new.session_id)).messages == []
    finally:
        d.stop()
