"""Image input as both APIs check it: the emulator refuses what they refuse.

Claude (Vision guide; the 400 bodies its users report): an ``image`` block's
``source`` is ``base64`` with ``media_type`` one of JPEG, PNG, GIF or WebP
("Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'"), base64
of at most 5 MB counted in base64 characters ("image exceeds 5 MB maximum: N bytes >
5242880 bytes"), bytes that are the format named ("Image does not match the
provided media type image/png"), sent to a model that reads images.

Gemini (image understanding guide; protobuf JSON's bytes rule): an ``inlineData``
part's image ``mimeType`` is one of PNG, JPEG, WebP, HEIC or HEIF, its ``data`` is
base64 in either alphabet ("Base64 decoding failed for ..."), and the inline data of
one request stays under 20 MB.

Wording marked "(ours)" is not in the stored docs or reports. The format checks are
the emulator's own, not the daemon's (``protocol/images.py``): a double that shares
the checked code's idea of an image could not catch it being wrong.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from .default_reply import Turn

CLAUDE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
CLAUDE_MAX_BASE64 = 5 * 1024 * 1024
GEMINI_TYPES = ("image/png", "image/jpeg", "image/webp", "image/heic", "image/heif")
GEMINI_MAX_INLINE = 20 * 1024 * 1024
_HEIF_BRANDS = (b"heic", b"heix", b"mif1", b"msf1", b"heif")
_STANDARD = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_EITHER = re.compile(r"[A-Za-z0-9+/_-]*={0,2}")


def _bytes(data: str, alphabet: re.Pattern[str]) -> bytes | None:
    if not alphabet.fullmatch(data):
        return None
    try:
        return base64.b64decode(data.replace("-", "+").replace("_", "/") + "=" * (-len(data) % 4))
    except (binascii.Error, ValueError):
        return None


def _format(raw: bytes) -> str | None:
    """What the file's leading bytes say it is."""
    if raw.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if raw.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if raw[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if raw[:4] == b"RIFF" and raw[8:12] == b"WEBP":
        return "image/webp"
    if raw[4:8] == b"ftyp" and raw[8:12] in _HEIF_BRANDS:
        return "image/heic" if raw[8:12] in (b"heic", b"heix") else "image/heif"
    return None


class ImageError(Exception):
    """An image the real API refuses: 400 with this message."""


def _quoted(options: tuple[str, ...]) -> str:
    quoted = [f"'{o}'" for o in options]
    return ", ".join(quoted[:-1]) + f" or {quoted[-1]}"


def check_claude(block: dict[str, Any], path: str, model_reads_images: bool, model: str, turn: Turn) -> None:
    """One ``image`` block of a user message at ``path`` (``messages.N.content.M``)."""
    where = f"{path}.image.source"
    source = block.get("source")
    if not isinstance(source, dict) or source.get("type") != "base64":
        kind = source.get("type") if isinstance(source, dict) else None
        raise ImageError(f"{where}: the emulator reads base64 image sources only, not {kind!r}")  # (ours)
    media_type = source.get("media_type")
    if media_type not in CLAUDE_TYPES:
        raise ImageError(f"{where}.base64.media_type: Input should be {_quoted(CLAUDE_TYPES)}")
    data = source.get("data")
    if not isinstance(data, str):
        raise ImageError(f"{where}.base64.data: Field required")
    if len(data) > CLAUDE_MAX_BASE64:
        raise ImageError(f"{where}.base64: image exceeds 5 MB maximum: {len(data)} bytes > {CLAUDE_MAX_BASE64} bytes")
    raw = _bytes(data, _STANDARD) if len(data) % 4 == 0 else None
    if raw is None:
        raise ImageError(f"{where}.base64.data: Invalid base64 data")  # (ours)
    if _format(raw) != media_type:
        raise ImageError(f"{where}.base64.data: Image does not match the provided media type {media_type}")
    if not model_reads_images:
        raise ImageError(f"{path}: {model} does not support image input")  # (ours)
    turn.images.append(media_type)


def check_gemini(part: dict[str, Any], where: str, turn: Turn) -> int:
    """One part at ``where`` (``contents[i].parts[j]``); returns the inline bytes it
    carries (0 for a part without ``inlineData``)."""
    inline = part.get("inlineData", part.get("inline_data"))
    if inline is None:
        return 0
    mime = inline.get("mimeType", inline.get("mime_type")) if isinstance(inline, dict) else None
    data = inline.get("data") if isinstance(inline, dict) else None
    if not isinstance(mime, str) or not isinstance(data, str):
        raise ImageError(f"* GenerateContentRequest.{where}.inline_data: mime_type and data are required")  # (ours)
    raw = _bytes(data, _EITHER)
    if raw is None:
        shown = data if len(data) <= 64 else data[:64] + "..."
        raise ImageError(f"Invalid value at '{where}.inline_data.data' (TYPE_BYTES), "
                         f"Base64 decoding failed for \"{shown}\"")
    if mime.startswith("image/"):
        if mime not in GEMINI_TYPES:
            raise ImageError(f"Unsupported MIME type: {mime}")
        if _format(raw) != mime:
            raise ImageError(f"Unable to process input image: the data at {where} is not {mime}.")  # (ours)
        turn.images.append(mime)
    return len(raw)


def check_gemini_total(total: int) -> None:
    if total > GEMINI_MAX_INLINE:
        raise ImageError(f"Request payload size exceeds the limit: {GEMINI_MAX_INLINE} bytes.")
