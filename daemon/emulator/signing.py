"""Signatures the emulator hands out and later checks, like the real opaque ones.

Both providers return opaque tokens that must come back unchanged: Claude's
``signature`` on ``thinking`` blocks (and the ``data`` of ``redacted_thinking``),
Gemini's ``thoughtSignature`` on parts. The real services refuse a block that was
edited, re-serialised, or produced by another model (Anthropic: "Invalid `signature`
in `thinking` block"; Google: a corrupted or missing signature is a 400). To refuse
the same requests the emulator makes its tokens verifiable:

    token = base64( b"EMU1" | kind (1 byte) | len(model) (1 byte) | model | nonce (8) | mac (32) )
    mac   = HMAC-SHA256(key, kind | model | nonce | SHA-256(content))

``content`` is what the client must send back unchanged: the thinking text as the
client saw it (empty under ``display: "omitted"``), the function call's name and
arguments, or nothing for Gemini text-part signatures (text parts are merged by
clients, and Google validates only function-call signatures). The key defaults to
a constant so signatures survive an emulator restart, as real ones survive time;
pass ``signing_key`` to ``Emulator`` to make tokens from another emulator invalid
(Haiku 5.5's "thinking blocks work only in the account that produced them").

Google documents two placeholder values for function calls that Gemini did not
produce (history from another model, injected calls): they are accepted in place
of a signature, as the literal string or base64 of it (the SDK base64-encodes
bytes fields, URL-safe alphabet).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from typing import Any, Literal

MAGIC = b"EMU1"
DEFAULT_KEY = b"duologue provider emulator: signatures are checked, not secret"
CLAUDE_THINKING, CLAUDE_REDACTED, GEMINI_CALL, GEMINI_TEXT = b"t", b"r", b"f", b"g"
# From https://ai.google.dev/gemini-api/docs/thought-signatures (FAQ: "dummy signatures").
GEMINI_PLACEHOLDERS = ("skip_thought_signature_validator", "context_engineering_is_the_way_to_go")

Verdict = Literal["ok", "placeholder", "foreign", "corrupt", "not_base64"]


def _digest(content: bytes) -> bytes:
    return hashlib.sha256(content).digest()


def decode_b64(value: str) -> bytes | None:
    """Decode base64 in either alphabet (Google accepts both; the SDK sends URL-safe)."""
    text = value.strip().replace("-", "+").replace("_", "/")
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def call_content(name: str, args: Any) -> bytes:
    """The canonical bytes a Gemini function-call signature covers."""
    return json.dumps({"name": name, "args": args or {}}, sort_keys=True, separators=(",", ":")).encode()


class Signer:
    """Issues and verifies the emulator's opaque tokens (thread-safe: no state)."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key or DEFAULT_KEY

    def _mac(self, kind: bytes, model: bytes, nonce: bytes, content: bytes) -> bytes:
        return hmac.new(self._key, kind + model + nonce + _digest(content), hashlib.sha256).digest()

    def issue(self, kind: bytes, model: str, content: bytes) -> str:
        encoded = model.encode()
        nonce = secrets.token_bytes(8)
        raw = MAGIC + kind + bytes([len(encoded)]) + encoded + nonce + self._mac(kind, encoded, nonce, content)
        return base64.b64encode(raw).decode()

    def verify(self, kind: bytes, model: str, content: bytes, token: Any) -> Verdict:
        """``ok`` for this model's untouched token; ``foreign`` for a genuine token of
        another model; ``corrupt`` for anything else that decodes; ``not_base64``."""
        if not isinstance(token, str) or not token:
            return "corrupt"
        raw = decode_b64(token)
        if raw is None:
            return "not_base64"
        if len(raw) < 6 + 8 + 32 or raw[:4] != MAGIC or raw[4:5] != kind:
            return "corrupt"
        size = raw[5]
        signed_model, rest = raw[6:6 + size], raw[6 + size:]
        if len(rest) != 8 + 32:
            return "corrupt"
        nonce, mac = rest[:8], rest[8:]
        if not hmac.compare_digest(mac, self._mac(kind, signed_model, nonce, content)):
            return "corrupt"
        return "ok" if signed_model == model.encode() else "foreign"

    # -- Claude -----------------------------------------------------------------

    def thinking_signature(self, model: str, shown_text: str) -> str:
        return self.issue(CLAUDE_THINKING, model, shown_text.encode())

    def check_thinking(self, model: str, shown_text: Any, signature: Any) -> bool:
        text = shown_text if isinstance(shown_text, str) else ""
        return self.verify(CLAUDE_THINKING, model, text.encode(), signature) == "ok"

    def redacted_data(self, model: str) -> str:
        return self.issue(CLAUDE_REDACTED, model, b"")

    def check_redacted(self, model: str, data: Any) -> bool:
        return self.verify(CLAUDE_REDACTED, model, b"", data) == "ok"

    # -- Gemini -----------------------------------------------------------------

    def call_signature(self, model: str, name: str, args: Any) -> str:
        return self.issue(GEMINI_CALL, model, call_content(name, args))

    def text_signature(self, model: str) -> str:
        return self.issue(GEMINI_TEXT, model, b"")

    def check_gemini(self, model: str, part: dict[str, Any], token: Any, call: dict[str, Any] | None) -> Verdict:
        """Verify a part's thoughtSignature; placeholders pass only on function calls."""
        if isinstance(token, str) and call is not None:
            if token in GEMINI_PLACEHOLDERS:
                return "placeholder"
            raw = decode_b64(token)
            if raw is not None and raw.decode("latin-1") in GEMINI_PLACEHOLDERS:
                return "placeholder"
        if call is not None:
            return self.verify(GEMINI_CALL, model, call_content(str(call.get("name", "")), call.get("args")), token)
        return self.verify(GEMINI_TEXT, model, b"", token)
