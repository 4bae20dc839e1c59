"""How a scripted :class:`Failure` changes an answer: headers, bodies, stream shape.

Kept apart from the server so the rules read in one place:

- ``retry-after`` is sent as delay-seconds or as an HTTP-date; RFC 9110 section
  10.2.3 allows both and the Anthropic SDK honours either, which is why a client
  must cap it in both forms;
- a ``body`` replaces the provider's own error shape, for the errors that do not
  come from the provider at all: a gateway's ``{"error": "some text"}``, a proxy's
  HTML 502 page;
- a stream is cut (connection closed before the final events), corrupted (a data
  line that is not JSON), interrupted by an in-stream error event, or left on
  keepalives only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any, TypeGuard

from .script import Failure, Step

HTML_502 = ("<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
            "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")


def answers_with_error(step: Step | None, stream: bool) -> TypeGuard[Failure]:
    """Whether the step is an HTTP error answer: a scripted status, unless it is meant
    for inside a stream and this request streams."""
    return isinstance(step, Failure) and step.status is not None and (step.in_stream_after is None or not stream)


def retry_headers(step: Failure) -> dict[str, str]:
    if step.retry_after is not None:
        return {"retry-after": f"{step.retry_after:g}"}
    if isinstance(step.retry_after_date, datetime):
        moment = step.retry_after_date
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return {"retry-after": format_datetime(moment.astimezone(UTC), usegmt=True)}
    if isinstance(step.retry_after_date, str):
        return {"retry-after": step.retry_after_date}
    return {}


def custom_body(step: Failure) -> tuple[bytes, str] | None:
    """The scripted non-provider body and its content type, if the step has one."""
    if step.body is None:
        return None
    if isinstance(step.body, str):
        guessed = "text/html; charset=utf-8" if step.body.lstrip().startswith("<") else "text/plain; charset=utf-8"
        return step.body.encode(), step.content_type or guessed
    return json.dumps(step.body).encode(), step.content_type or "application/json"


@dataclass
class StreamShape:
    """What to send of a stream: these events, then maybe a tail, then maybe keepalives."""

    events: list[bytes]
    tail: bytes | None = None
    keepalive: bool = False
    interval: float = 1.0


def shape(step: Any, events: list[bytes], closing_at: int, wire: Any) -> StreamShape:
    """Apply a scripted cut, corruption, in-stream error or keepalive to a stream."""
    if not isinstance(step, Failure):
        return StreamShape(events)
    if step.cut_after is not None:
        return StreamShape(events[: min(step.cut_after, closing_at)])
    if step.malformed_after is not None:
        return StreamShape(events[: min(step.malformed_after, closing_at)], wire.malformed_event())
    if step.in_stream_after is not None and step.status is not None:
        return StreamShape(events[: min(step.in_stream_after, closing_at)], wire.error_event(step.status, step.message))
    if step.keepalive_after is not None:
        return StreamShape(events[: min(step.keepalive_after, closing_at)], keepalive=True,
                           interval=step.keepalive_interval)
    return StreamShape(events)
