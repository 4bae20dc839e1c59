"""A send handed to the daemon that holds its session's lease, and the progress of
that turn relayed back to the device that sent it.

A send is a write: when another live device holds the session's lease, this
daemon asks the holder to take it (a NATS request on ``duologue.send.<holder>``);
the holder writes the user message and runs the turn like one of its own, and its
events come back here by replication. Clients here still see the turn's progress
(begin, reports, end), which is not stored and so not replicated: the holder
publishes it on ``duologue.p.<sender>`` and this daemon hands it to its hub.

Each turn runs once. A request carries an id; the holder answers a retry of one
it has taken with the same answer, never a second turn. A request the holder
cannot have received (nobody listens: it died) is routed again once its lease
expires; one that may have reached it (an answer that did not come) is an error
the client sees, never a silent second send.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from duologue.protocol import methods as m
from duologue.protocol.errors import ErrorCode, RpcError

from ..ids import new_id
from ..store import StoreWriteError
from . import bucket
from .bucket import Holder, NoAnswer
from .link import Link, LinkError

log = logging.getLogger(__name__)

SEND_PREFIX = "duologue.send."
PROGRESS_PREFIX = "duologue.p."
ANSWER_TIMEOUT_S = 10.0
ATTEMPTS = 3
REMEMBERED = 1024
"""Answers kept to answer a retried request again (request ids are never reused)."""


class HandedSend(msgspec.Struct, kw_only=True):
    request_id: str
    origin: str
    """The device that sent it: where the turn's progress goes."""
    params: m.SendParams


class HandedAnswer(msgspec.Struct, kw_only=True, omit_defaults=True):
    result: m.SendResult | None = None
    code: int = 0
    message: str = ""
    data: dict[str, Any] | None = None
    moved_to: str | None = None
    """The asked daemon does not hold the lease (any more): it is this device's."""


class Moved(Exception):
    """The send reached nobody, or the holder changed: route it again."""


_send = msgspec.json.Decoder(HandedSend)
_answer = msgspec.json.Decoder(HandedAnswer)
_progress = msgspec.json.Decoder(m.Progress)


class Handoff:
    def __init__(self, device: str, submit: Callable[[m.SendParams], m.SendResult],
                 take: Callable[[str], Awaitable[Holder | None]], announce: Callable[[str, str, Any], None]):
        """``submit`` writes a send here (``Turns.submit``), ``take`` takes the lease
        (``Leases.take``), ``announce`` hands progress to this daemon's hub."""
        self.device = device
        self._submit = submit
        self._take = take
        self._announce = announce
        self._origins: dict[str, str] = {}
        """Turns running here for another device -> that device."""
        self._answered: OrderedDict[str, bytes] = OrderedDict()
        self._outgoing: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        self._link: Link | None = None

    async def start(self, link: Link) -> None:
        """Listen on this device's subjects (until the connection ends)."""
        await bucket.serve(link, SEND_PREFIX + self.device, self._take_send)
        await bucket.serve(link, PROGRESS_PREFIX + self.device, self._relayed)
        self._link = link

    async def run(self, link: Link) -> None:
        """Publish relayed progress in the order the turns made it, until cancelled."""
        try:
            while True:
                subject, data = await self._outgoing.get()
                await bucket.publish(link, subject, data)
        finally:
            self._link = None

    # --- the sending side ---------------------------------------------------------------

    async def hand(self, holder: Holder, p: m.SendParams) -> m.SendResult:
        """Have ``holder`` write and run the send; its result. Raises :class:`Moved`
        when it must be routed again (it reached nobody), LinkError when NATS is
        away (nothing was sent), RpcError when it may have run there."""
        link = self._link
        if link is None:
            raise LinkError("not connected to NATS")
        request = msgspec.json.encode(HandedSend(request_id=new_id(), origin=self.device, params=p))
        subject = SEND_PREFIX + holder.device
        for attempt in range(ATTEMPTS):
            try:
                raw = await bucket.request(link, subject, request, ANSWER_TIMEOUT_S)
            except NoAnswer as exc:
                if exc.gone and attempt == 0:
                    raise Moved(holder.device) from None
                continue
            except LinkError:  # it broke with the request sent or not: never written here too
                continue
            answer = _answer.decode(raw)
            if answer.moved_to is not None:
                raise Moved(answer.moved_to)
            if answer.result is not None:
                return answer.result
            raise RpcError(answer.code, answer.message, answer.data)
        raise RpcError(ErrorCode.SESSION_HELD,
                       f"session {p.session_id} is written by {holder.device}, which did not answer the send "
                       f"handed to it; it may have run there: look at the session before sending again",
                       {"holder": holder.device})

    async def _relayed(self, data: bytes) -> None:
        try:
            progress = _progress.decode(data)
        except msgspec.DecodeError:
            log.warning("sync: a relayed progress notification cannot be read; passed over")
            return None
        self._announce(progress.session_id, "progress", progress)
        return None

    # --- the holding side ---------------------------------------------------------------

    async def _take_send(self, data: bytes) -> bytes:
        try:
            handed = _send.decode(data)
        except msgspec.DecodeError as exc:
            return msgspec.json.encode(HandedAnswer(code=ErrorCode.INVALID_PARAMS, message=f"bad hand-off: {exc}"))
        if handed.request_id in self._answered:
            return self._answered[handed.request_id]
        try:
            holder = await self._take(handed.params.session_id)
        except LinkError as exc:
            return msgspec.json.encode(HandedAnswer(code=ErrorCode.SESSION_HELD, message=str(exc)))
        if holder is not None:  # the lease moved on since the sender read it: not remembered
            return msgspec.json.encode(HandedAnswer(moved_to=holder.device))
        try:
            result = self._submit(handed.params)
        except RpcError as exc:
            answer = HandedAnswer(code=exc.code, message=exc.message, data=exc.data)
        except StoreWriteError as exc:  # answered as the sender's own daemon would answer it
            answer = HandedAnswer(code=ErrorCode.STORE_UNWRITABLE, message=str(exc),
                                  data={"disk_full": exc.disk_full})
        else:
            self._origins[result.turn_id] = handed.origin
            answer = HandedAnswer(result=result)
            log.info("sync: took a send from %s in session %s (turn %s)", handed.origin,
                     handed.params.session_id, result.turn_id)
        encoded = msgspec.json.encode(answer)
        self._answered[handed.request_id] = encoded
        while len(self._answered) > REMEMBERED:
            self._answered.popitem(last=False)
        return encoded

    def progress(self, progress: m.Progress) -> None:
        """``Turns.on_progress``: a handed-off turn's progress goes to its sender."""
        origin = self._origins.get(progress.turn_id)
        if origin is None:
            return
        if progress.kind == "end":
            del self._origins[progress.turn_id]
        if self._link is not None:
            self._outgoing.put_nowait((PROGRESS_PREFIX + origin, msgspec.json.encode(progress)))
