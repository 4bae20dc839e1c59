"""From a frame to responses: decode, route through the method table, encode.

The dispatcher refuses to start unless every method in the protocol's table has a
handler and no handler exists for a method outside it: the table is the API.
A handler that raises :class:`RpcError` answers that error; any other exception is
logged with its trace and answered with INTERNAL_ERROR that says where the log is.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Iterable

from duologue.protocol.errors import ErrorCode, RpcError
from duologue.protocol.jsonrpc import (
    Invalid,
    decode_params,
    encode_batch,
    encode_error,
    encode_result,
    parse_frame,
)
from duologue.protocol.methods import METHODS

from .hub import Subscriber
from .store import StoreWriteError

log = logging.getLogger(__name__)


@dataclass
class Context:
    """What a handler knows of its caller. The frames of each iterable in ``after``
    are sent to the caller after the response, in order, as its connection takes
    them (attach uses it to replay missed events, read lazily from the store)."""

    peer: Subscriber
    after: list[Iterable[bytes]] = field(default_factory=list)


Handler = Callable[[Any, Context], Awaitable[Any]]


class Dispatcher:
    def __init__(self, handlers: dict[str, Handler], log_path: str):
        missing = sorted(set(METHODS) - set(handlers))
        extra = sorted(set(handlers) - set(METHODS))
        if missing or extra:
            raise RuntimeError(f"handlers do not match the method table: missing {missing}, extra {extra}")
        self._handlers = handlers
        self._log_path = log_path

    async def handle(self, data: bytes, peer: Subscriber) -> tuple[bytes | None, list[Iterable[bytes]]]:
        """The response frame (None when nothing is to be answered) and the frames
        to send after it."""
        frame = parse_frame(data)
        ctx = Context(peer)
        responses: list[bytes] = []
        for item in frame.items:
            if isinstance(item, Invalid):
                responses.append(encode_error(item.id, item.error))
                continue
            try:
                params = decode_params(item)  # METHOD_NOT_FOUND for a name outside the table
                result = await self._handlers[item.method](params, ctx)
                # Encoded inside the try: a result that cannot be encoded is this
                # request's internal error, not an exception that stops the daemon.
                encoded = None if item.is_notification else encode_result(item.id, result)
            except RpcError as exc:
                if not item.is_notification:
                    responses.append(encode_error(item.id, exc))
                continue
            except StoreWriteError as exc:
                if not item.is_notification:
                    responses.append(encode_error(item.id, RpcError(
                        ErrorCode.STORE_UNWRITABLE, str(exc), {"disk_full": exc.disk_full})))
                continue
            except Exception:
                log.exception("handler for %s failed", item.method)
                if not item.is_notification:
                    responses.append(encode_error(item.id, RpcError(
                        ErrorCode.INTERNAL_ERROR,
                        f"internal error while handling {item.method}; details are in {self._log_path}",
                    )))
                continue
            if encoded is not None:
                responses.append(encoded)
        if not responses:
            return None, ctx.after
        return (encode_batch(responses) if frame.batch else responses[0]), ctx.after

