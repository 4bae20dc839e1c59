"""Example values of any protocol type, built from the type itself.

Tests of the framing and of the schemas need a valid instance of every params,
result and notification type. Writing them by hand would drift from the table;
walking ``msgspec.inspect`` builds one for any type the table ever holds.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

import msgspec.inspect as mi
import pytest

WHEN = datetime(2025, 3, 4, 5, 6, 7, 890000, tzinfo=timezone.utc)
_PATTERNED = ["1741064767890.01JNM7ZQ0000000000000000AB", "some-provider"]
"""Examples for strings with a pattern (a page cursor, a provider name)."""


def example(t: Any, *, full: bool) -> Any:
    """A valid value of ``t``: only required fields, or (``full``) every field set,
    with every member of a union present wherever a list can hold them all."""
    return _build(mi.type_info(t), full)


def _build(info: mi.Type, full: bool) -> Any:
    if isinstance(info, mi.StructType):
        kwargs = {
            f.name: _build(f.type, full)
            for f in info.fields
            if f.required or full
        }
        return info.cls(**kwargs)
    if isinstance(info, mi.UnionType):
        options = [t for t in info.types if not isinstance(t, mi.NoneType)]
        return _build(options[0], full)
    if isinstance(info, mi.ListType):
        if not full:
            return []
        item = info.item_type
        members = item.types if isinstance(item, mi.UnionType) else (item,)
        values = [_build(m, full) for m in members if not isinstance(m, mi.NoneType)]
        return values[: info.max_length] if info.max_length is not None else values
    if isinstance(info, mi.DictType):
        return {"key": _build(info.value_type, full)} if full else {}
    if isinstance(info, mi.LiteralType):
        return sorted(info.values)[-1] if full else sorted(info.values)[0]
    if isinstance(info, mi.Metadata):
        return _build(info.type, full)
    if isinstance(info, mi.StrType) and info.pattern is not None:
        found = next((c for c in _PATTERNED if re.search(info.pattern, c)), None)
        if found is None:
            raise TypeError(f"no example matches {info.pattern!r}; add one to _PATTERNED")
        return found
    if isinstance(info, mi.StrType):
        n = max(info.min_length or 0, 3)
        if info.max_length is not None:
            n = min(n, info.max_length)
        return "abcdefghij"[:n] if n <= 10 else "a" * n
    if isinstance(info, mi.BoolType):
        return full
    if isinstance(info, mi.IntType):
        low = info.ge if info.ge is not None else (info.gt + 1 if info.gt is not None else 1)
        return max(low, 7 if full else low)
    if isinstance(info, mi.FloatType):
        return 2.5
    if isinstance(info, mi.DateTimeType):
        return WHEN
    if isinstance(info, mi.NoneType):
        return None
    if isinstance(info, mi.AnyType):
        return {"nested": [1, "two", None]}
    raise TypeError(f"no example for {info!r}; teach tests/protocol/conftest.py this type")


@pytest.fixture
def make_example():
    return example

