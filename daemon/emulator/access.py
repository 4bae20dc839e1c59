"""Who may use the emulator: only a caller holding the key it was started with.

The emulator listens on loopback TCP, which every local user can reach, and in
``--emulator`` mode it answers inside the daemon. So each emulator accepts one API
key per provider, made fresh when it is built (:func:`fresh_keys`, 192 random bits
each) unless its owner hands it keys, and given only to that owner: the daemon puts
them in its settings, a test reads ``Emulator.api_keys``, ``python -m
duologue.daemon.emulator`` prints them on its own stdout. A request with any other
key is refused the way the real provider refuses a bad key, before it is read,
recorded, scripted or billed, so a stranger learns nothing but the refusal.

Keys are compared in constant time, so a wrong guess does not tell how close it was.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping


def fresh_keys(prefixes: Mapping[str, str]) -> dict[str, str]:
    """A new key for each provider, starting with its prefix (which tells a reader
    whose key it is, and that it is the emulator's, without weakening it)."""
    return {name: prefix + secrets.token_urlsafe(24) for name, prefix in prefixes.items()}


def checked_keys(keys: Mapping[str, str], providers: tuple[str, ...]) -> dict[str, str]:
    """Keys an owner chose, one non-empty key for each of ``providers``, or ValueError."""
    missing = [name for name in providers if not keys.get(name)]
    unknown = sorted(set(keys) - set(providers))
    if missing or unknown:
        raise ValueError(f"the emulator needs one key for each of {', '.join(providers)}"
                         + (f"; missing {', '.join(missing)}" if missing else "")
                         + (f"; unknown {', '.join(unknown)}" if unknown else ""))
    return {name: keys[name] for name in providers}


def key_matches(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())
