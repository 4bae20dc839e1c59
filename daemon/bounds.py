"""Input the types accept but the store cannot hold, refused before anything is written.

msgspec checks what a schema can say (``since_seq <= MAX_SEQ``, a cursor's pattern).
What it cannot say for types shared with stored records is checked here, with the
same answer: INVALID_PARAMS whose ``data.path`` names the field. A line range must
name lines (1 <= start <= end <= MAX_LINE); a timestamp from another tool must not
be before 1970 (keys hold milliseconds since then as unsigned integers); an import
names each message once; an image is base64 of the format it names, within the
size limits of ``protocol/images.py`` (a provider would refuse it on every later
turn of the session).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone

from duologue.protocol import methods as m
from duologue.protocol import images
from duologue.protocol.entities import CodeContextBlock, ImageBlock
from duologue.protocol.errors import ErrorCode, RpcError

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _invalid(message: str, path: str) -> RpcError:
    return RpcError(ErrorCode.INVALID_PARAMS, message, {"path": path})


def check_blocks(blocks: Sequence[object], path: str) -> None:
    """Every code context's line range names lines the store can hold; every image
    is one a provider reads, and the images of ``blocks`` (one message) are within
    the limit of a message."""
    total = 0
    for i, block in enumerate(blocks):
        if isinstance(block, ImageBlock):
            wrong = images.problem(block)
            if wrong is not None:
                raise _invalid(wrong, f"{path}[{i}].data")
            total += len(block.data)
            if total > images.MAX_IMAGE_DATA_PER_MESSAGE:
                raise _invalid(f"the images of one message may hold {images.MAX_IMAGE_DATA_PER_MESSAGE} "
                               f"base64 characters in all; with this one they hold {total}: send fewer or "
                               "smaller images", f"{path}[{i}].data")
        r = block.range if isinstance(block, CodeContextBlock) else None
        if r is None:
            continue
        where = f"{path}[{i}].range"
        if not 1 <= r.start <= m.MAX_LINE:
            raise _invalid(f"range.start must be from 1 to {m.MAX_LINE}, got {r.start}", f"{where}.start")
        if not r.start <= r.end <= m.MAX_LINE:
            raise _invalid(f"range.end must be from range.start ({r.start}) to {m.MAX_LINE}, got {r.end}",
                           f"{where}.end")


def check_time(t: datetime, path: str) -> None:
    if t < EPOCH:
        raise _invalid(f"{t.isoformat()} is before 1970-01-01; duologue keeps times from then on", path)


def check_import(p: m.ImportParams) -> None:
    """The whole request, before any session of it is written. A message external id
    given twice is refused: one of the two would be lost, and counting it as imported
    before would be untrue."""
    seen: dict[str, str] = {}
    for i, item in enumerate(p.sessions):
        where = f"$.sessions[{i}]"
        check_time(item.created_at, f"{where}.created_at")
        for j, msg in enumerate(item.messages):
            at = f"{where}.messages[{j}]"
            check_time(msg.created_at, f"{at}.created_at")
            check_blocks(msg.content, f"{at}.content")
            if msg.external_id in seen:
                raise _invalid(f"message external id {msg.external_id!r} is given twice "
                               f"(first at {seen[msg.external_id]})", f"{at}.external_id")
            seen[msg.external_id] = at
