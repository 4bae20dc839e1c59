"""Images reach each provider in its own wire shape, and a model without image input
gets a note in their place (asserted on what the emulator received)."""

from __future__ import annotations

import base64
from dataclasses import replace

import msgspec
import pytest
from image_support import PNG, PNG_B64
from providers.provider_helpers import BOTH, CLAUDE, GEMINI, MODELS, collect, finished, request, text_of

from duologue.daemon.catalog import Catalog
from duologue.protocol.entities import ImageBlock, ModelInfo

IMAGE = ImageBlock(media_type="image/png", data=PNG_B64, name="shot.png")


def _text_only(model: str) -> ModelInfo:
    """A catalog entry for ``model`` that says it reads no images."""
    provider = "anthropic" if model.startswith("claude") else "gemini"
    base = next(m for m in Catalog().models if m.provider == provider)
    return msgspec.structs.replace(base, id=model, images=False)


async def test_claude_receives_a_base64_image_block_before_the_text(emu, make_provider, message):
    history = [message("user", IMAGE, "what is in this picture?")]
    events = await collect(make_provider("anthropic").stream(request(CLAUDE, history)))
    assert "You showed me 1 image (image/png)" in text_of(events)
    content = emu.received[-1].body["messages"][0]["content"]
    assert content[0] == {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64}}
    assert content[1]["text"] == "what is in this picture?"


async def test_gemini_receives_inline_data_with_the_image_bytes(emu, make_provider, message):
    history = [message("user", IMAGE, "what is in this picture?")]
    events = await collect(make_provider("gemini").stream(request(GEMINI, history)))
    assert "You showed me 1 image (image/png)" in text_of(events)
    part = emu.received[-1].body["contents"][0]["parts"][0]
    inline = part["inlineData"]
    assert inline.get("mimeType", inline.get("mime_type")) == "image/png"  # the SDK writes this one snake_case
    assert base64.urlsafe_b64decode(inline["data"] + "=" * (-len(inline["data"]) % 4)) == PNG


@pytest.mark.parametrize("name", BOTH)
async def test_a_model_without_image_input_gets_a_note_in_place_of_each_image(name, emu, make_provider, message):
    model = MODELS[name]
    if name == "anthropic":
        emu.models.alias("claude-blind", like=CLAUDE)
        emu.models.add(replace(emu.models.claude["claude-blind"], images=False))  # refuses any image
        model = "claude-blind"
    history = [message("user", IMAGE, "look"), message("assistant", "seen", model=model), message("user", "and now?")]
    req = request(model, history, info=_text_only(model))
    events = await collect(make_provider(name).stream(req))
    assert finished(events).stop_reason == "end_turn"
    raw = str(emu.received[-1].body)
    assert f"[image omitted: {model} does not accept images]" in raw
    assert PNG_B64 not in raw and "inlineData" not in raw and "'image'" not in raw
