"""Sortable, model-agnostic ids: 48 bits of milliseconds then 80 random bits,
in Crockford base32 (26 characters). Ids created later sort later, so a session
list by id is a list by creation time, and ids are safe in file names and URLs."""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_id(now_ms: int | None = None) -> str:
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    value = (ms << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))
