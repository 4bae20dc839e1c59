"""Secrets out of text that may be shown, stored or logged.

A provider's error may echo the key it was given: whole, lower-cased, upper-cased,
cut short ("sk-ant-abc...xyz"), or with a prefix of its own. So matching only the
exact key is not enough. :func:`scrub` removes, case-insensitively, every run of
text made of fragments of a configured secret at least :data:`MIN_FRAGMENT`
characters long. Shorter pieces are left alone: a key shares short substrings
("sk-ant-", "api") with ordinary text, and eight characters of a random key are
already too many to be a coincidence.
"""

from __future__ import annotations

MIN_FRAGMENT = 8
MARK = "[redacted]"


def scrub(text: str, *secrets: str | None) -> str:
    """``text`` with every fragment of 8+ characters of any of ``secrets`` (compared
    case-insensitively) replaced by ``[redacted]``; adjacent fragments become one mark.
    A secret shorter than 8 characters is removed where it appears whole."""
    if not text:
        return text
    lowered = text.lower()
    if len(lowered) != len(text):  # a few letters lower to two ("İ"): keep positions aligned
        lowered = "".join(c if len(c.lower()) != 1 else c.lower() for c in text)
    hidden = bytearray(len(text))
    for secret in secrets:
        if not secret:
            continue
        key = secret.lower()
        if len(key) < MIN_FRAGMENT:
            _mark_whole(lowered, key, hidden)
            continue
        grams = {key[i:i + MIN_FRAGMENT] for i in range(len(key) - MIN_FRAGMENT + 1)}
        for i in range(len(lowered) - MIN_FRAGMENT + 1):
            if lowered[i:i + MIN_FRAGMENT] in grams:
                hidden[i:i + MIN_FRAGMENT] = b"\1" * MIN_FRAGMENT
    if not any(hidden):
        return text
    out: list[str] = []
    i = 0
    while i < len(text):
        if hidden[i]:
            out.append(MARK)
            while i < len(text) and hidden[i]:
                i += 1
        else:
            j = i
            while j < len(text) and not hidden[j]:
                j += 1
            out.append(text[i:j])
            i = j
    return "".join(out)


def _mark_whole(lowered: str, key: str, hidden: bytearray) -> None:
    start = lowered.find(key)
    while start != -1:
        hidden[start:start + len(key)] = b"\1" * len(key)
        start = lowered.find(key, start + 1)
