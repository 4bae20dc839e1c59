"""Prompt caching billed the way each provider bills it.

Anthropic (Prompt caching guide): caching is opt-in with ``cache_control``
breakpoints on tools, system blocks and message content blocks, at most four per
request. The prompt is the prefix in the order tools -> system -> messages; a
breakpoint caches everything up to and including its block, matched byte for byte
and per model. On a request the API looks for a cached prefix at each breakpoint
and, failing that, at up to 20 blocks before it; the longest hit is read
(``cache_read_input_tokens``, refreshing that entry's TTL). Every breakpoint past
the hit whose prefix reaches the model's minimum cacheable length writes an entry;
the tokens from the hit to the last written breakpoint are
``cache_creation_input_tokens``, split by the TTL of the breakpoint that closes each
stretch (``ephemeral_5m_input_tokens`` / ``ephemeral_1h_input_tokens``). Tokens
after the last breakpoint are ``input_tokens``; the three add up to the prompt.
Changing ``tool_choice`` or the thinking parameters keeps the tools and system
cache but not the messages one ("What invalidates the cache"); a settings marker
between system and messages models that.

Gemini (Context caching, implicit caching): on by default from 2.5 on; a request
whose prefix (system instruction, tools, then contents) matches an earlier request
to the same model for at least the model's minimum (1,024 tokens Flash, 4,096 Pro)
reports that prefix as ``cachedContentTokenCount``; ``promptTokenCount`` still
includes it. Google does not document an implicit-cache lifetime; five minutes is
used.

A :class:`Segment` is one block as canonical JSON (sorted keys, compact, without
its ``cache_control``) and its token count (``approx_tokens``: about four
characters a token, stable across runs). The clock is injectable so tests can
expire entries without sleeping.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .script import approx_tokens

TTL_SECONDS = {"5m": 300.0, "1h": 3600.0}
LOOKBACK_BLOCKS = 20
GEMINI_IMPLICIT_TTL = 300.0


def _bytes_as_base64(value: Any) -> str:
    """Raw bytes only reach here when a caller hands in SDK-built dicts directly
    (the wire modules used as an oracle); on the wire they are base64 already."""
    if isinstance(value, bytes):
        return base64.urlsafe_b64encode(value).decode()
    raise TypeError(f"{type(value).__name__} is not JSON")


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=_bytes_as_base64).encode()


@dataclass(frozen=True)
class Segment:
    """One block of a prompt: its canonical bytes and what it costs in tokens."""

    data: bytes
    tokens: int

    @classmethod
    def of(cls, value: Any, *, free: bool = False) -> Segment:
        data = canonical(value)
        return cls(data, 0 if free else approx_tokens(data.decode()))


@dataclass(frozen=True)
class ClaudeBill:
    """The input side of an Anthropic ``usage`` object."""

    input_tokens: int
    cache_read: int = 0
    cache_write_5m: int = 0
    cache_write_1h: int = 0

    @property
    def cache_creation(self) -> int:
        return self.cache_write_5m + self.cache_write_1h


def _chain(segments: list[Segment]) -> tuple[list[bytes], list[int]]:
    """Prefix hashes and cumulative token counts, one per segment."""
    hashes, totals = [], []
    running, total = b"", 0
    for segment in segments:
        running = hashlib.sha256(running + hashlib.sha256(segment.data).digest()).digest()
        total += segment.tokens
        hashes.append(running)
        totals.append(total)
    return hashes, totals


class PromptCache:
    """Both providers' caches for one emulator (thread-safe)."""

    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        self._clock = clock or time.monotonic
        self._lock = threading.Lock()
        self._claude: dict[tuple[str, bytes], tuple[float, str]] = {}  # -> (expiry, ttl)
        self._gemini: dict[tuple[str, bytes], float] = {}  # -> expiry

    def clear(self) -> None:
        with self._lock:
            self._claude.clear()
            self._gemini.clear()

    def bill_claude(self, model: str, segments: list[Segment], breakpoints: list[tuple[int, str]],
                    min_tokens: int) -> ClaudeBill:
        """Read the longest cached prefix, write the breakpoints past it, and bill."""
        hashes, totals = _chain(segments)
        total = totals[-1] if totals else 0
        now = self._clock()
        with self._lock:
            hit = -1
            for position, _ttl in breakpoints:
                for probe in range(position, max(-1, position - LOOKBACK_BLOCKS - 1), -1):
                    entry = self._claude.get((model, hashes[probe]))
                    if entry is not None and entry[0] > now:
                        hit = max(hit, probe)
                        break
            if hit >= 0:
                ttl = self._claude[(model, hashes[hit])][1]
                self._claude[(model, hashes[hit])] = (now + TTL_SECONDS[ttl], ttl)
            read = totals[hit] if hit >= 0 else 0
            written = {"5m": 0, "1h": 0}
            covered = read
            for position, ttl in breakpoints:
                if position <= hit or totals[position] < min_tokens:
                    continue
                self._claude[(model, hashes[position])] = (now + TTL_SECONDS[ttl], ttl)
                written[ttl] += totals[position] - covered
                covered = totals[position]
        return ClaudeBill(total - covered, read, written["5m"], written["1h"])

    def bill_gemini(self, model: str, segments: list[Segment], min_tokens: int) -> tuple[int, int]:
        """(prompt tokens, cached tokens) under implicit caching; remembers this prefix."""
        hashes, totals = _chain(segments)
        now = self._clock()
        with self._lock:
            cached = 0
            for index in range(len(hashes) - 1, -1, -1):
                expiry = self._gemini.get((model, hashes[index]))
                if expiry is not None and expiry > now:
                    cached = totals[index] if totals[index] >= min_tokens else 0
                    break
            for digest in hashes:
                self._gemini[(model, digest)] = now + GEMINI_IMPLICIT_TTL
        return (totals[-1] if totals else 0), cached
