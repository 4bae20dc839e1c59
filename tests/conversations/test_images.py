"""Images in ``session/send``: stored with the prompt, sent to each model in its
provider's shape (also after a switch), a note for a model that reads none, and bad
images refused with the path before anything is written (docs/protocol.md, "Images")."""

from __future__ import annotations

import base64

import pytest
from conversation_support import BLIND, provider_daemon, send_and_wait
from image_support import GIF_B64, JPEG_B64, PNG, PNG_B64

from duologue.protocol.entities import ImageBlock
from duologue.protocol.errors import ErrorCode, RpcError
from duologue.protocol.images import MAX_IMAGE_DATA

SHOT = ImageBlock(media_type="image/png", data=PNG_B64, name="shot.png")


def _inline_bytes(part: dict) -> bytes:
    data = part["inlineData"]["data"]
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


async def test_an_image_is_stored_and_reaches_claude_then_gemini_after_a_switch(c1, emulator):
    s = await c1.create_session(model="sonnet")
    await c1.attach(s.id, since_seq=s.last_seq)
    await send_and_wait(c1, s.id, "what is in this picture?", images=[SHOT])
    got = await c1.get_session(s.id)
    assert got.messages[0].content[0] == SHOT and got.messages[0].text == "what is in this picture?"
    assert "You showed me 1 image (image/png)" in got.messages[1].text
    claude = emulator.received[-1].body["messages"][0]["content"][0]
    assert claude == {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64}}

    await c1.switch_model(s.id, "flash")
    await send_and_wait(c1, s.id, "and in Gemini's eyes?")
    first = emulator.received[-1].body["contents"][0]["parts"][0]
    assert _inline_bytes(first) == PNG


async def test_a_model_without_images_gets_a_note_and_is_refused_new_images(home, emulator):
    emulator.models.alias("claude-blind", like="claude-haiku-4-5")
    d = provider_daemon(home, emulator, config=BLIND).start()
    try:
        async with d.client() as c:
            s = await c.create_session(model="sonnet")
            await c.attach(s.id, since_seq=s.last_seq)
            await send_and_wait(c, s.id, "look at this", images=[SHOT])
            await c.switch_model(s.id, "blind")
            await send_and_wait(c, s.id, "what did I show you?")
            sent = str(emulator.received[-1].body)
            assert "[image omitted: claude-blind does not accept images]" in sent and PNG_B64 not in sent
            with pytest.raises(RpcError) as refused:
                await c.send(s.id, "and this one?", images=[SHOT])
            assert refused.value.code == ErrorCode.INVALID_PARAMS
            assert refused.value.data == {"path": "$.images"} and "does not take images" in refused.value.message
            assert len((await c.get_session(s.id)).messages) == 4
    finally:
        d.stop()


@pytest.mark.parametrize("image, path, says", [
    (ImageBlock(media_type="image/gif", data=GIF_B64), "$.images[0].media_type", "'image/gif'"),
    (ImageBlock(media_type="image/png", data="not base64!"), "$.images[0].data", "not base64"),
    (ImageBlock(media_type="image/png", data=JPEG_B64), "$.images[0].data", "data holds an image/jpeg file, not image/png"),
    (ImageBlock(media_type="image/png", data=PNG_B64 + "A" * MAX_IMAGE_DATA), "$.images[0].data", "scale it down"),
])
async def test_a_bad_image_is_invalid_params_naming_its_path_and_nothing_is_stored(c1, image, path, says):
    s = await c1.create_session(model="sonnet")
    with pytest.raises(RpcError) as refused:
        await c1.send(s.id, "look", images=[image])
    assert refused.value.code == ErrorCode.INVALID_PARAMS
    assert refused.value.data["path"] == path and says in refused.value.message
    assert (await c1.get_session(s.id)).messages == []


async def test_the_images_of_one_message_are_bounded_together(c1):
    s = await c1.create_session(model="sonnet")
    big = base64.b64encode(PNG + b"\0" * (2_400 * 1024)).decode()  # 3.2 MiB of base64: two fit in a frame
    with pytest.raises(RpcError) as refused:
        await c1.send(s.id, "two big ones", images=[ImageBlock(media_type="image/png", data=big)] * 2)
    assert refused.value.data["path"] == "$.images[1].data" and "in all" in refused.value.message
    assert (await c1.get_session(s.id)).messages == []
