"""Where in a JSON document a msgspec decode failed, as a JSONPath (RFC 9535).

msgspec reports a location such as ``$.tasks[0].status``, but not everywhere a client
needs one: a member the type does not define is reported at the object that holds it
(``$`` for a top-level typo), and the key of a failing map entry is only ``[...]``,
which no JSONPath implementation can follow. :func:`locate` completes both, so
``data.path`` of an INVALID_PARAMS error always names the member at fault:
``$.modle`` for a misspelt field, ``$.metadata['editor']`` for a map value.

A map key is found by decoding again with the map cut short: msgspec stops at the
first bad entry, so a prefix of the map fails the same way exactly when it holds that
entry, and a bisection needs about log2(n) decodes for a map of n entries. If the
failure cannot be reproduced that way (a key given twice, which the untyped decode
merges), the step becomes ``[*]``: still a JSONPath, naming the map at least.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import msgspec

_LOCATION = " - at `"
_UNKNOWN_FIELD = re.compile(r"^Object contains unknown field `(.*)`$", re.S)
_STEP = re.compile(r"\.([^.\[]+)|\[(\d+)\]|(\[\.\.\.\])")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_WILDCARD = object()


class MapKey(str):
    """A step that is a map's key (written in brackets), not a struct's field."""


def locate(error: msgspec.ValidationError, raw: bytes, decode: Callable[[bytes], object]) -> tuple[str, str]:
    """(what is wrong, where) for ``error``, raised by ``decode(raw)``.

    The first is msgspec's description without its location; the second a JSONPath
    into ``raw``'s document."""
    what, steps = _split(str(error))
    if any(step is _WILDCARD for step in steps):
        steps = _resolve_keys(steps, raw, decode, str(error))
    return what, render(steps)


def render(steps: list[Any]) -> str:
    """A JSONPath from steps: ``.name`` for a field, ``['key']`` for a map key (and for
    a name that is not a plain identifier), ``[n]`` for an index, ``[*]`` for a key
    that could not be told."""
    out = ["$"]
    for step in steps:
        if step is _WILDCARD:
            out.append("[*]")
        elif isinstance(step, int):
            out.append(f"[{step}]")
        elif isinstance(step, MapKey) or not _NAME.match(step):
            out.append(f"[{_quoted(step)}]")
        else:
            out.append(f".{step}")
    return "".join(out)


def _split(text: str) -> tuple[str, list[Any]]:
    what, sep, where = text.rpartition(_LOCATION)
    if not sep:
        what, where = text, "$`"
    steps: list[Any] = []
    for name, index, key in _STEP.findall(where.removesuffix("`").removeprefix("$")):
        steps.append(_WILDCARD if key else int(index) if index else name)
    unknown = _UNKNOWN_FIELD.match(what)
    if unknown:
        steps.append(unknown.group(1))
    return what, steps


def _resolve_keys(steps: list[Any], raw: bytes, decode: Callable[[bytes], object], failure: str) -> list[Any]:
    try:
        document = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return steps
    resolved = list(steps)
    for at, step in enumerate(steps):
        if step is not _WILDCARD:
            continue
        found = _failing_key(document, resolved[:at], decode, failure)
        if found is None:
            return resolved  # the remaining [...] steps stay wildcards
        resolved[at] = found
    return resolved


def _failing_key(document: Any, prefix: list[Any], decode: Callable[[bytes], object],
                 failure: str) -> MapKey | None:
    """The key of the map at ``prefix`` whose entry makes ``decode`` fail as before."""
    container = document
    for step in prefix:
        try:
            container = container[step]
        except (KeyError, IndexError, TypeError):
            return None
    if not isinstance(container, dict) or not container:
        return None
    keys = list(container)

    def fails_with(count: int) -> bool:
        cut = dict(zip(keys[:count], (container[k] for k in keys[:count])))
        try:
            decode(msgspec.json.encode(_replaced(document, prefix, cut)))
        except msgspec.ValidationError as exc:
            return str(exc) == failure
        return False

    if not fails_with(len(keys)):
        return None
    low, high = 1, len(keys)  # the smallest prefix length that still fails
    while low < high:
        middle = (low + high) // 2
        if fails_with(middle):
            high = middle
        else:
            low = middle + 1
    return MapKey(keys[low - 1])


def _replaced(document: Any, prefix: list[Any], value: Any) -> Any:
    """``document`` with the node at ``prefix`` replaced (copies along the path only)."""
    if not prefix:
        return value
    head, rest = prefix[0], prefix[1:]
    copy = list(document) if isinstance(document, list) else dict(document)
    copy[head] = _replaced(document[head], rest, value)
    return copy


def _quoted(name: str) -> str:
    """A single-quoted JSONPath name selector, escaped as RFC 9535 says."""
    out = []
    for char in name:
        if char in ("'", "\\"):
            out.append("\\" + char)
        elif char in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[char])
        elif ord(char) < 0x20:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return "'" + "".join(out) + "'"


_SHORT_ESCAPES = {"\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
