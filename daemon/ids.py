"""Sortable, model-agnostic ids: 48 bits of milliseconds then 80 random bits,
in Crockford base32 (26 characters). Ids created later sort later, so a session
list by id is a list by creation time, and ids are safe in file names and URLs.

Within one millisecond the random part counts up from the previous id's, so ids made
in the same millisecond still sort in the order they were made (two sessions created
back to back list newest first, not by chance)."""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


_RANDOM_BITS = 80
_last_ms = -1
_last_random = 0


def new_id(now_ms: int | None = None) -> str:
    global _last_ms, _last_random
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    if ms == _last_ms and _last_random + 1 < 1 << _RANDOM_BITS:
        _last_random += 1
    else:
        _last_ms, _last_random = ms, int.from_bytes(os.urandom(10), "big")
    value = (ms << _RANDOM_BITS) | _last_random
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))
