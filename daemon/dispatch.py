"""From a frame to responses: decode, route through the method table, encode.

The dispatcher refuses to start unless every method in the protocol's table has a
handler and no handler exists for a method outside it: the table is the API.
A handler that raises :class:`RpcError` answers that error; any other exception is
logged with its trace and answered with INTERNAL_ERROR that says where the log is.

Two kinds of handler, told apart by their definition. A plain function answers
inline, in the transport's receive loop: it must not wait (it reads or writes the
store and returns). A coroutine function may wait (a stream to tear down, an SDK to
load, a big import written in slices): the frame that calls it is answered by a task
of the daemon's task group, so the receive loop goes on serving every other client.
Responses carry the request's id; a client must not rely on their order.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Union

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
from .replay import Lazy
from .store import StoreWriteError

log = logging.getLogger(__name__)


@dataclass
class Caller:
    """What a handler knows of its caller. The frames of each source in ``after``
    are sent to the caller after the response, in order, as its connection takes
    them (attach uses it to replay missed events, read lazily from the store)."""

    peer: Subscriber
    after: list[Lazy] = field(default_factory=list)


Handler = Union[Callable[[Any, Caller], Any], Callable[[Any, Caller], Awaitable[Any]]]
Respond = Callable[[bytes | None, list[Lazy]], None]
"""Takes the response frame (None when nothing is to be answered) and the frames to
send after it."""
Spawn = Callable[[Coroutine[Any, Any, None]], "asyncio.Task[None]"]


class Dispatcher:
    def __init__(self, handlers: dict[str, Handler], log_path: str, spawn: Spawn):
        missing = sorted(set(METHODS) - set(handlers))
        extra = sorted(set(handlers) - set(METHODS))
        if missing or extra:
            raise RuntimeError(f"handlers do not match the method table: missing {missing}, extra {extra}")
        self._handlers = handlers
        self._waits = {name for name, h in handlers.items() if inspect.iscoroutinefunction(h)}
        self._log_path = log_path
        self._spawn = spawn
        self._waiting: set[asyncio.Task[None]] = set()

    def handle(self, data: bytes, peer: Subscriber, respond: Respond) -> None:
        """Answer one frame through ``respond``: at once, or from a task when one of
        its requests calls a handler that may wait."""
        frame = parse_frame(data)
        if any(not isinstance(item, Invalid) and item.method in self._waits for item in frame.items):
            task = self._spawn(self._answer_later(frame, peer, respond))
            self._waiting.add(task)
            task.add_done_callback(self._waiting.discard)
            return
        caller = Caller(peer)
        respond(self._frame_response(frame, [self._answer(item, caller) for item in frame.items]), caller.after)

    async def stop(self) -> None:
        """Cancel the requests still waiting (the daemon is stopping): they end as
        they would on a crash, and their clients get no answer."""
        for task in self._waiting:
            task.cancel()
        await asyncio.gather(*self._waiting, return_exceptions=True)

    async def _answer_later(self, frame: Any, peer: Subscriber, respond: Respond) -> None:
        caller = Caller(peer)
        responses = []
        for item in frame.items:
            waits = not isinstance(item, Invalid) and item.method in self._waits
            responses.append(await self._answer_waiting(item, caller) if waits else self._answer(item, caller))
        try:
            respond(self._frame_response(frame, responses), caller.after)
        except Exception:  # a task of the daemon's group must not end the daemon
            log.exception("could not send the answer to %s", [getattr(i, "method", None) for i in frame.items])

    async def _answer_waiting(self, item: Any, caller: Caller) -> bytes | None:
        try:
            result = await self._handlers[item.method](decode_params(item), caller)
            return None if item.is_notification else encode_result(item.id, result)
        except Exception as exc:
            return self._error(item, exc)

    @staticmethod
    def _frame_response(frame: Any, responses: list[bytes | None]) -> bytes | None:
        answered = [r for r in responses if r is not None]
        if not answered:
            return None
        return encode_batch(answered) if frame.batch else answered[0]

    def _answer(self, item: Any, caller: Caller) -> bytes | None:
        """The encoded response to one item (None for a notification)."""
        if isinstance(item, Invalid):
            return encode_error(item.id, item.error)
        try:
            params = decode_params(item)  # METHOD_NOT_FOUND for a name outside the table
            result = self._handlers[item.method](params, caller)
            # Encoded inside the try: a result that cannot be encoded is this
            # request's internal error, not an exception that stops the daemon.
            return None if item.is_notification else encode_result(item.id, result)
        except Exception as exc:
            return self._error(item, exc)

    def _error(self, item: Any, exc: Exception) -> bytes | None:
        """The error a handler's exception is answered with (nothing for a notification)."""
        if isinstance(exc, RpcError):
            error = exc
        elif isinstance(exc, StoreWriteError):
            error = RpcError(ErrorCode.STORE_UNWRITABLE, str(exc), {"disk_full": exc.disk_full})
        else:
            log.error("handler for %s failed", item.method, exc_info=exc)
            error = RpcError(ErrorCode.INTERNAL_ERROR,
                             f"internal error while handling {item.method}; details are in {self._log_path}")
        return None if item.is_notification else encode_error(item.id, error)
