"""The emulator refuses the images each API refuses, with the API's error, through
the real SDKs (sources in daemon/emulator/images.py)."""

from __future__ import annotations

from dataclasses import replace

import anthropic
import pytest
from google import genai
from google.genai import errors, types
from image_support import GIF_B64, JPEG_B64, PNG, PNG_B64
from providers.provider_helpers import API_KEY

from duologue.daemon.emulator import Emulator

CLAUDE = "claude-sonnet-5-5"
GEMINI = "gemini-3.8-flash"


@pytest.fixture
async def claude(emu: Emulator):
    client = anthropic.AsyncAnthropic(api_key=API_KEY, base_url=emu.url, max_retries=0)
    yield client
    await client.close()


@pytest.fixture
async def gemini(emu: Emulator):
    client = genai.Client(api_key=API_KEY, http_options=types.HttpOptions(base_url=emu.url))
    yield client
    await client.aio.aclose()


def _image(media_type: str, data: str) -> list[dict]:
    return [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}},
        {"type": "text", "text": "what is this?"}]}]


async def _claude_error(claude, media_type: str, data: str, model: str = CLAUDE) -> str:
    with pytest.raises(anthropic.BadRequestError) as caught:
        await claude.messages.create(model=model, max_tokens=256, messages=_image(media_type, data))
    return caught.value.body["error"]["message"]


async def test_claude_reads_each_of_its_four_formats(claude):
    for media_type, data in (("image/png", PNG_B64), ("image/jpeg", JPEG_B64), ("image/gif", GIF_B64)):
        reply = await claude.messages.create(model=CLAUDE, max_tokens=256, messages=_image(media_type, data))
        assert f"(image/{media_type.split('/')[1]})" in reply.content[-1].text


async def test_claude_refuses_a_media_type_outside_its_four(claude):
    message = await _claude_error(claude, "image/heic", PNG_B64)
    assert message == ("messages.0.content.0.image.source.base64.media_type: "
                       "Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'")


async def test_claude_refuses_data_that_is_not_the_named_format_or_not_base64(claude):
    assert await _claude_error(claude, "image/jpeg", PNG_B64) == (
        "messages.0.content.0.image.source.base64.data: Image does not match the provided media type image/jpeg")
    assert "base64.data" in await _claude_error(claude, "image/png", "not base64!")


async def test_claude_refuses_base64_over_five_megabytes(claude):
    data = PNG_B64 + "A" * (5 * 1024 * 1024)
    data = data[: len(data) // 4 * 4]
    message = await _claude_error(claude, "image/png", data)
    assert message == (f"messages.0.content.0.image.source.base64: image exceeds 5 MB maximum: "
                       f"{len(data)} bytes > 5242880 bytes")


async def test_claude_refuses_images_for_a_model_without_image_input(emu, claude):
    emu.models.alias("claude-blind", like=CLAUDE)
    emu.models.add(replace(emu.models.claude["claude-blind"], images=False))
    assert "does not support image input" in await _claude_error(claude, "image/png", PNG_B64, "claude-blind")
    listed = await claude.models.retrieve("claude-blind")
    assert listed.capabilities.image_input.supported is False


async def test_gemini_reads_inline_png_bytes(gemini):
    reply = await gemini.aio.models.generate_content(model=GEMINI, contents=[types.Content(role="user", parts=[
        types.Part.from_bytes(data=PNG, mime_type="image/png"), types.Part(text="what is this?")])])
    assert "1 image (image/png)" in reply.text


async def test_gemini_refuses_gif_and_bytes_that_are_not_the_named_format(gemini):
    for mime, expected in (("image/gif", "Unsupported MIME type: image/gif"), ("image/jpeg", "is not image/jpeg")):
        with pytest.raises(errors.ClientError) as caught:
            await gemini.aio.models.generate_content(model=GEMINI, contents=[types.Content(role="user", parts=[
                types.Part.from_bytes(data=PNG, mime_type=mime), types.Part(text="what is this?")])])
        assert caught.value.code == 400 and expected in caught.value.message
