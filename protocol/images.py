"""Images in messages: what the daemon accepts, and how clients show one.

Pure functions, shared by the daemon (which checks an image before anything is
written, so a session never holds one a provider will refuse on every later turn)
and by every client that shows messages (one short placeholder line, never the
bytes).

The limits follow the stricter provider: Claude refuses an image whose base64 is
over 5 MB (5,242,880 characters, about 3.75 MB of image); the whole message's images
stay under ``MAX_IMAGE_DATA_PER_MESSAGE`` so a ``session/send`` frame fits in the
daemon's 8 MiB frame with room for its text. History images travel with every later
request, and each provider bounds a whole request (Claude 32 MB, Gemini 20 MB of
inline data): a session holding many large images may reach those.
"""

from __future__ import annotations

import base64
import binascii

from .entities import ImageBlock

MAX_IMAGE_DATA = 5 * 1024 * 1024
"""Base64 characters of one image (Claude's limit counts the base64, not the bytes)."""
MAX_IMAGE_DATA_PER_MESSAGE = 6 * 1024 * 1024
"""Base64 characters of all the images of one message."""

_SIGNATURES: tuple[tuple[str, bytes, int], ...] = (
    ("image/png", b"\x89PNG\r\n\x1a\n", 0),
    ("image/jpeg", b"\xff\xd8\xff", 0),
    ("image/gif", b"GIF8", 0),
    ("image/webp", b"WEBP", 8),  # after "RIFF" and the chunk size
)


def decode(data: str, *, url_safe: bool = False) -> bytes | None:
    """The bytes of base64 ``data``, or None when it is not base64 (characters
    outside the alphabet, wrong padding). ``url_safe`` also reads ``-`` and ``_``
    (protobuf JSON, as Gemini reads bytes, takes either alphabet)."""
    if url_safe:
        data = data.replace("-", "+").replace("_", "/")
        data += "=" * (-len(data) % 4)
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return None


def sniff(raw: bytes) -> str | None:
    """The media type the bytes' signature says, or None when it is none we know."""
    for media_type, magic, at in _SIGNATURES:
        if raw[at:at + len(magic)] == magic and (media_type != "image/webp" or raw[:4] == b"RIFF"):
            return media_type
    return None


def problem(block: ImageBlock) -> str | None:
    """What is wrong with an image's ``data`` for the daemon, or None: too large, not
    base64, or not the format its ``media_type`` names."""
    if len(block.data) > MAX_IMAGE_DATA:
        return (f"an image may hold {MAX_IMAGE_DATA} base64 characters (about 3.75 MB), this one holds "
                f"{len(block.data)}: scale it down")
    raw = decode(block.data)
    if not raw:
        return "data is not base64 (standard alphabet, padded) of an image"
    found = sniff(raw)
    if found != block.media_type:
        what = f"an {found} file" if found else "no JPEG, PNG or WebP file"
        return f"data holds {what}, not {block.media_type}"
    return None


def decoded_size(data: str) -> int:
    """How many bytes base64 ``data`` holds (for labels; ``data`` is not checked)."""
    return len(data) * 3 // 4 - data[-2:].count("=")


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.0f} KB"
    return f"{n / (1024 * 1024):.1f} MB"


def label(block: ImageBlock) -> str:
    """One short line for an image in a transcript: ``[image shot.png, image/png, 12 KB]``."""
    named = f"{block.name}, " if block.name else ""
    return f"[image {named}{block.media_type}, {_size(decoded_size(block.data))}]"
