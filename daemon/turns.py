"""Turns: one queue per session, one running turn at a time, streamed to every client.

``submit`` makes the user message durable and returns; the turn itself runs later,
as a task owned by its session's worker, which is owned by the daemon's task group.
While the reply streams, text is committed in small batches (at most every
``CHECKPOINT_S``) as ``message/delta`` events together with the message's text so far,
so a crash keeps what arrived and the restart marks the reply interrupted.

A retryable provider error (after the SDK's own retries) moves the turn to an
equivalent model of another provider, recorded as a failover switch; the failed
attempt's message keeps its partial text and the error. Cancellation closes the
provider stream (the async generator is closed in ``finally``) and commits the
partial text marked cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Coroutine, Iterator

import msgspec

from duologue.protocol import methods as m
from duologue.protocol.entities import (
    AUTO,
    ContentBlock,
    Message,
    MessageStatus,
    ModelInfo,
    Refusal,
    Session,
    SwitchKind,
    TextBlock,
    ThinkingBlock,
    ThinkingDepth,
    ToolCallBlock,
    Usage,
)
from duologue.protocol.errors import ErrorCode, RpcError

from .ids import new_id
from .metrics import Metrics
from .pricing import cost_usd
from . import task_tool
from .catalog import alternatives
from .context import ContextFitter
from .providers.base import (
    Finished,
    ProviderError,
    TextDelta,
    TextSignature,
    ThinkingDelta,
    ThinkingDone,
    ToolCallEvent,
    TurnRequest,
    unforeseen,
)
from .routing import Routing
from .sessions import Draft, Sessions
from .store import StoreWriteError

log = logging.getLogger(__name__)

CHECKPOINT_S = 0.05
REPORT_INTERVAL_S = 0.1
MAX_ATTEMPTS = 3
MAX_OUTPUT_TOKENS = 8192
THINKING_ROOM = 32_000
"""Output tokens added to a thinking model's budget so thinking cannot crowd out the answer."""
MAX_TOOL_ROUNDS = 8
MALFORMED_RETRIES = 1
UNWRITTEN_RETRY_S = 5.0
"""How often the end of a reply the store refused (a full disk) is written again."""
"""A malformed reply (Gemini's MALFORMED_FUNCTION_CALL) is asked again this often."""


@dataclass
class Turn:
    id: str
    session_id: str
    prompt: Message
    model_choice: str | None
    thinking: ThinkingDepth | None = None
    started_at: datetime | None = None
    model: str | None = None
    output_tokens: int = 0
    task: asyncio.Task[None] | None = None
    stop_status: MessageStatus = "cancelled"
    stop_error: ProviderError | None = None
    """Why the turn was stopped, when it was stopped for a fault (the deadline)."""
    expected_end: float | None = None
    """monotonic() time the reply is expected to end, from the estimate at begin."""


@dataclass
class _Queue:
    pending: deque[Turn] = field(default_factory=deque)
    running: Turn | None = None
    worker: asyncio.Task[None] | None = None


@dataclass
class _Outcome:
    status: MessageStatus
    error: ProviderError | None = None
    refusal: Refusal | None = None
    failure: str | None = None
    """Why the turn failed when no provider did (the store could not be written)."""

    @property
    def error_text(self) -> str | None:
        if self.failure is not None:
            return self.failure
        error = self.error
        if error is None:
            return None
        return f"{error.kind}: {error.provider_message}" + (f" (HTTP {error.status})" if error.status else "")


Spawn = Callable[[Coroutine[Any, Any, None]], asyncio.Task[None]]


class Turns:
    def __init__(self, sessions: Sessions, routing: Routing, metrics: Metrics, spawn: Spawn,
                 queue_limit: int = 32, summary_model: str | None = None, turn_timeout_s: float = 600.0):
        self.sessions = sessions
        self.context = ContextFitter(sessions, routing, summary_model)
        self.routing = routing
        self.metrics = metrics
        self._spawn = spawn
        self._queue_limit = queue_limit
        self._turn_timeout_s = turn_timeout_s
        self._queues: dict[str, _Queue] = {}
        self._stopping = False
        self._unwritten: list[Callable[[], None]] = []
        """Ends of replies the store could not take (a full disk), written once it can."""
        self._retry: asyncio.TimerHandle | None = None

    # --- requests -----------------------------------------------------------------------

    def submit(self, p: m.SendParams) -> m.SendResult:
        if self._stopping:
            raise RpcError(ErrorCode.SHUTTING_DOWN, "the daemon is stopping; send again once it restarts")
        session = self.sessions.require(p.session_id)
        if p.model is not None:
            self.sessions.catalog.resolve_choice(p.model)  # an unknown model fails before anything is written
        if p.thinking is not None:
            self._check_thinking(p.thinking, p.model or session.model)
        queue = self._queues.setdefault(session.id, _Queue())
        if len(queue.pending) >= self._queue_limit:
            raise RpcError(ErrorCode.QUEUE_FULL,
                           f"{len(queue.pending)} turns are already queued in this session; wait for one to finish")
        if not p.text.strip() and not p.context:
            raise RpcError(ErrorCode.INVALID_PARAMS, "the message is empty: give text or context",
                           {"path": "$.text"})
        self._write_unwritten()  # a reply that ended while the disk was full comes first
        draft = self.sessions.draft(session)
        content = ([TextBlock(text=p.text)] if p.text else []) + list(p.context)
        turn_id = new_id()
        prompt = draft.add_message(lambda seq: Message(
            id=new_id(), session_id=session.id, seq=seq, role="user", content=content,
            created_at=draft.now, pinned=p.pin, turn_id=turn_id))
        self.sessions.commit(draft)
        turn = Turn(id=turn_id, session_id=session.id, prompt=prompt, model_choice=p.model, thinking=p.thinking)
        queue.pending.append(turn)
        ahead = len(queue.pending) - 1 + (queue.running is not None)
        if queue.worker is None:
            queue.worker = self._spawn(self._work(session.id, queue))
        return m.SendResult(message=prompt, turn_id=turn.id, queued=ahead)

    def _check_thinking(self, depth: ThinkingDepth, choice: str) -> None:
        """Refuse a thinking depth the chosen model cannot honour (``auto`` picks a
        model later, so any depth goes and is applied where the model allows)."""
        if choice == AUTO:
            return
        model = self.sessions.catalog.resolve(choice)
        if model.thinking == "none":
            problem = f"{model.id} does not think; leave out thinking"
        elif depth == "off" and model.thinking == "always":
            problem = f"{model.id} always thinks; ask for low instead of off"
        else:
            return
        raise RpcError(ErrorCode.INVALID_PARAMS, problem, {"path": "$.thinking"})

    async def cancel(self, session_id: str) -> m.CancelResult:
        self.sessions.require(session_id)
        queue = self._queues.get(session_id)
        turn = queue.running if queue else None
        if turn is None or turn.task is None:
            raise RpcError(ErrorCode.NOTHING_TO_CANCEL, f"no turn is running in session {session_id!r}")
        turn.stop_status = "cancelled"
        turn.task.cancel()
        await asyncio.gather(turn.task, return_exceptions=True)
        return m.CancelResult(turn_id=turn.id, cancelled=True)

    async def forget_session(self, session_id: str) -> None:
        """Stop and drop a session's turns (it is being deleted)."""
        queue = self._queues.pop(session_id, None)
        if queue is None:
            return
        queue.pending.clear()
        if queue.worker is not None:
            queue.worker.cancel()
            await asyncio.gather(queue.worker, return_exceptions=True)

    def running(self) -> list[m.RunningTurn]:
        return [
            m.RunningTurn(session_id=q.running.session_id, turn_id=q.running.id,
                          model=q.running.model or "", started_at=q.running.started_at,
                          output_tokens=q.running.output_tokens)
            for q in self._queues.values() if q.running and q.running.started_at
        ]

    async def stop(self) -> None:
        """Interrupt every running turn (their partial text is kept, marked interrupted)."""
        self._stopping = True
        if self._retry is not None:
            self._retry.cancel()
        workers = []
        for queue in self._queues.values():
            queue.pending.clear()
            if queue.running is not None:
                queue.running.stop_status = "interrupted"
            if queue.worker is not None:
                queue.worker.cancel()
                workers.append(queue.worker)
        await asyncio.gather(*workers, return_exceptions=True)
        self._write_unwritten()

    def _unwritable(self, write: Callable[[], None]) -> None:
        """Keep the end of a reply the store refused, and try again every few seconds:
        clients were told in the turn's ``progress`` end; the store learns it once
        there is room (or, after a restart, recovery marks the reply interrupted)."""
        self._unwritten.append(write)
        if self._retry is None and not self._stopping:
            self._retry = asyncio.get_running_loop().call_later(UNWRITTEN_RETRY_S, self._retry_unwritten)

    def _retry_unwritten(self) -> None:
        self._retry = None
        self._write_unwritten()
        if self._unwritten and not self._stopping:
            self._retry = asyncio.get_running_loop().call_later(UNWRITTEN_RETRY_S, self._retry_unwritten)

    def _write_unwritten(self) -> None:
        while self._unwritten:
            try:
                self._unwritten[0]()
            except StoreWriteError:
                return
            self._unwritten.pop(0)

    def recover(self) -> int:
        """Mark the turns a crash (or a stop with turns queued) left open as
        interrupted: a reply still streaming keeps its text; a prompt that was never
        answered gets an empty interrupted reply saying so. Returns how many."""
        count = 0
        for msg in self.sessions.store.open_turns():
            session = self.sessions.store.get_session(msg.session_id)
            if session is None:
                continue
            if msg.role == "assistant":
                self._interrupted(msg)
            else:
                self._close_unanswered(session, msg)
            count += 1
        return count

    def _close_unanswered(self, session: Session, prompt: Message) -> None:
        draft = self.sessions.draft(session)
        msg = draft.add_message(lambda seq: Message(
            id=new_id(), session_id=session.id, seq=seq, role="assistant", content=[],
            created_at=draft.now, status="interrupted", turn_id=prompt.turn_id,
            error="the daemon stopped before this message was answered; send it again"))
        draft.emit(m.MessageCompleted, message=msg)
        self.sessions.commit(draft)

    # --- the worker ---------------------------------------------------------------------

    async def _work(self, session_id: str, queue: _Queue) -> None:
        try:
            while queue.pending:
                turn = queue.pending.popleft()
                queue.running = turn
                turn.task = asyncio.create_task(self._run(turn), name=f"turn-{turn.id}")
                try:
                    await turn.task
                except asyncio.CancelledError:
                    if asyncio.current_task().cancelling():
                        raise  # the worker itself is being stopped
                    # only the turn was cancelled (session/cancel): go on with the next
                except Exception:
                    log.exception("turn %s in session %s failed", turn.id, session_id)
                finally:
                    queue.running = None
        finally:
            queue.worker = None
            if not queue.pending and self._queues.get(session_id) is queue:
                del self._queues[session_id]

    async def _run(self, turn: Turn) -> None:
        session = self.sessions.store.get_session(turn.session_id)
        if session is None:
            return
        try:
            model, reason, kind = self._initial_choice(turn, session)
        except RpcError as exc:
            self._fail_without_call(turn, None, exc.message)
            return
        estimate = self.metrics.estimate_s(model.id)
        turn.expected_end = time.monotonic() + estimate if estimate is not None else None
        self._progress(turn, "begin", model.id, estimated_s=estimate)
        deadline = asyncio.get_running_loop().call_later(self._turn_timeout_s, self._expire, turn)
        outcome = _Outcome("failed")
        try:
            malformed_retries = MALFORMED_RETRIES
            attempt = 0
            while attempt < MAX_ATTEMPTS:
                if self.routing.cooling(model):
                    target = self.routing.failover_target(model)
                    if target is not None:
                        reason = (f"failover: {model.provider} is cooling down after repeated "
                                  f"failures; using {target.id}")
                        self.metrics.record_failover(model.id, target.id)
                        model, kind = target, "failover"
                try:
                    self.routing.require_available(model)
                except RpcError as exc:
                    self._fail_without_call(turn, model.id, exc.message)
                    return
                outcome = await self._attempt(turn, model, reason, kind)
                error = outcome.error
                if error is not None and error.kind == "malformed" and malformed_retries:
                    malformed_retries -= 1  # asked again once, same model, before it is an error
                    reason = f"{model.id} sent an unusable reply; asked again"
                    continue
                attempt += 1
                if error is None or not error.retryable:
                    return
                target = self.routing.failover_target(model)
                if target is None or attempt == MAX_ATTEMPTS:
                    return
                self.metrics.record_failover(model.id, target.id)
                reason = f"failover: {model.id} failed ({error.kind}); using {target.id}"
                model, kind = target, "failover"
        except StoreWriteError as exc:  # a tool result or a summary could not be stored
            outcome = _Outcome("failed", failure=str(exc))
        except asyncio.CancelledError:
            outcome = _Outcome(turn.stop_status, turn.stop_error)
            raise
        finally:
            deadline.cancel()
            self._progress(turn, "end", turn.model or model.id, outcome=outcome.status,
                           error=outcome.error_text)
            took = (self.sessions.clock() - turn.started_at).total_seconds() if turn.started_at else 0.0
            log.info("turn %s in session %s: %s %s in %.2f s, %d tokens out%s", turn.id, turn.session_id,
                     turn.model or model.id, outcome.status, took, turn.output_tokens,
                     f" ({outcome.error.kind})" if outcome.error else "")

    def _expire(self, turn: Turn) -> None:
        """The turn ran past ``turn_timeout_s``: end it failed, its partial text kept."""
        if turn.task is None or turn.task.done():
            return
        turn.stop_status = "failed"
        turn.stop_error = ProviderError(
            "deadline", f"the turn ran past turn_timeout_s ({self._turn_timeout_s:g} s); its partial text is kept",
            provider="", retryable=False)
        turn.task.cancel()

    def _progress(self, turn: Turn, kind: str, model: str, **extra: Any) -> None:
        session = self.sessions.store.get_session(turn.session_id)
        if session is None:
            return
        if kind == "report" and turn.expected_end is not None:
            extra.setdefault("estimated_s", round(max(turn.expected_end - time.monotonic(), 0.0), 1))
        tasks = self.sessions.store.tasks(session.id).tasks
        active = next((t.active_form or t.content for t in tasks if t.status == "in_progress"), None)
        self.sessions.announce(session.id, "progress", m.Progress(
            session_id=session.id, seq=session.last_seq, turn_id=turn.id, kind=kind, model=model,
            output_tokens=turn.output_tokens, tasks_completed=sum(t.status == "completed" for t in tasks),
            tasks_total=len(tasks), active_task=active, **extra))

    def _initial_choice(self, turn: Turn, session: Session) -> tuple[ModelInfo, str, SwitchKind]:
        catalog = self.sessions.catalog
        choice = turn.model_choice or session.model
        if choice == AUTO:
            history = self.sessions.store.messages(session.id)[:-1]
            picked = self.routing.choose_auto(history, turn.prompt, session.current_model)
            return picked.model, picked.reason, "auto"
        model = catalog.resolve(choice)
        reason = "model chosen for this turn" if turn.model_choice else "session model"
        return model, reason, "manual"

    def _fail_without_call(self, turn: Turn, model: str | None, error: str) -> None:
        session = self.sessions.require(turn.session_id)
        draft = self.sessions.draft(session)
        msg = draft.add_message(lambda seq: Message(
            id=new_id(), session_id=session.id, seq=seq, role="assistant", content=[],
            created_at=draft.now, model=model, status="failed", error=error, turn_id=turn.id))
        draft.emit(m.MessageCompleted, message=msg)
        self.sessions.commit(draft)

    async def _attempt(self, turn: Turn, model: ModelInfo, reason: str, kind: SwitchKind) -> _Outcome:
        """One model answering the turn: rounds of streaming, each answering the
        model's tool calls, until it stops calling tools."""
        outcome = _Outcome("failed")
        turn.model = model.id
        turn.started_at = turn.started_at or self.sessions.clock()
        for round_ in range(MAX_TOOL_ROUNDS):
            opening = _Opening(model, reason, kind, switch=round_ == 0)
            outcome, calls = await self._round(turn, opening)
            if outcome.status != "complete" or not calls:
                return outcome
            self._answer_tools(turn, model, calls)
        return outcome

    def open_reply(self, draft: Draft, turn: Turn, opening: _Opening) -> Message:
        """Add the reply (and the switch that brought its model, if any) to a draft.
        Called with the draft of the reply's first text or of its end, so opening a
        reply costs no sync of its own."""
        session = draft.session
        if opening.switch and opening.model.id != session.current_model:
            self.sessions.record_switch(draft, opening.model.id, opening.reason, opening.kind)
            self.metrics.record_switch(opening.model.id)
        return draft.add_message(lambda seq: Message(
            id=opening.id, session_id=session.id, seq=seq, role="assistant", content=[],
            created_at=draft.now, model=opening.model.id, status="streaming", turn_id=turn.id))

    async def _round(self, turn: Turn, opening: _Opening) -> tuple[_Outcome, list[ToolCallEvent]]:
        session = self.sessions.require(turn.session_id)
        model = opening.model
        max_tokens = output_budget(model)
        stream = _Stream(self, turn, opening)
        started = time.monotonic()
        outcome = _Outcome("failed")
        finished: Finished | None = None
        try:
            try:
                history = await self.context.fit(
                    session.id, session.system_prompt, model,
                    history_for(self.sessions.store.messages(session.id), turn.prompt), max_tokens)
                request = TurnRequest(model=model.id, system=session.system_prompt, messages=history,
                                      tools=[task_tool.SPEC], max_tokens=max_tokens, info=model,
                                      thinking=turn.thinking)
                events = (await self.routing.ready(model.provider)).stream(request)
                try:
                    async for event in events:
                        if isinstance(event, Finished):
                            finished = event
                        else:
                            stream.add(event)
                finally:
                    await events.aclose()
            except (ProviderError, StoreWriteError, asyncio.CancelledError):
                raise
            except Exception as exc:  # a bug anywhere on the way: still a failed turn with a reason
                log.exception("turn %s: %s raised", turn.id, model.id)
                raise unforeseen(exc, model.provider, None) from exc
            outcome = _finished_outcome(finished)
            self.routing.record_success(model.provider)
        except ProviderError as exc:
            log.warning("turn %s: %s %s: %s", turn.id, model.id, exc.kind, exc.provider_message)
            if exc.kind == "not_found":
                others = alternatives(self.sessions.catalog, model)
                exc.provider_message += (f"; {model.id} may be retired or not offered to this key"
                                         + (f"; try {', '.join(others)}" if others else ""))
            outcome = _Outcome("failed", exc)
            self.routing.record_failure(model.provider, exc.retryable, exc.retry_after)
        except StoreWriteError as exc:  # a checkpoint could not be stored: the reply ends here
            outcome = _Outcome("failed", failure=str(exc))
        except asyncio.CancelledError:
            outcome = _Outcome(turn.stop_status, turn.stop_error)
            raise
        finally:
            latency_ms = (time.monotonic() - started) * 1000
            usage = finished.usage if finished else None

            def finish() -> None:
                stream.finish(outcome, usage=usage, latency_ms=latency_ms,
                              stop_reason=finished.stop_reason if finished else None)
            try:
                finish()
            except StoreWriteError as exc:
                if outcome.failure is None:  # the reply ends failed, as its progress end says
                    outcome = _Outcome("failed", failure=str(exc))
                self._unwritable(finish)
            self.metrics.record_turn(model, outcome.status, outcome.error.kind if outcome.error else None,
                                     ttft_ms=stream.ttft_ms, latency_ms=latency_ms, usage=usage)
        return outcome, stream.calls

    def _answer_tools(self, turn: Turn, model: ModelInfo, calls: list[ToolCallEvent]) -> None:
        """Run the model's tool calls and store their results as one user-role message
        of this turn, which the next round sends back to the model."""
        results = [task_tool.run_tool(self.sessions, turn.session_id, call, model.id) for call in calls]
        session = self.sessions.require(turn.session_id)
        draft = self.sessions.draft(session)
        draft.add_message(lambda seq: Message(
            id=new_id(), session_id=session.id, seq=seq, role="user", content=list(results),
            created_at=draft.now, turn_id=turn.id))
        self.sessions.commit(draft)
        self._progress(turn, "report", model.id)

    def _interrupted(self, msg: Message) -> None:
        """Close a reply a crash left streaming: its checkpointed text is kept."""
        session = self.sessions.store.get_session(msg.session_id)
        if session is None:
            return
        final = msgspec.structs.replace(msg, status="interrupted")
        draft = self.sessions.draft(session)
        draft.messages.append(final)
        draft.emit(m.MessageCompleted, message=final)
        self.sessions.commit(draft)


def output_budget(model: ModelInfo) -> int:
    """``max_tokens`` for a request: the answer's room, plus room for thinking on a
    model that thinks (thinking counts against ``max_tokens``)."""
    room = MAX_OUTPUT_TOKENS + (THINKING_ROOM if model.thinking != "none" else 0)
    return min(model.max_output_tokens, room)


def _finished_outcome(finished: Finished | None) -> _Outcome:
    """What a stream that ended normally means for the reply."""
    if finished is None:
        return _Outcome("failed", ProviderError("internal", "the provider stream ended without its final event",
                                                retryable=False))
    if finished.stop_reason == "refusal":
        return _Outcome("refused", refusal=finished.refusal)
    if finished.truncated_call is not None:
        return _Outcome("failed", ProviderError(
            "bad_request", f"the reply reached its output limit in the middle of a call of {finished.truncated_call}; "
                           "the call was not run", retryable=False))
    return _Outcome("complete")


def history_for(messages: list[Message], prompt: Message) -> list[Message]:
    """What the model sees for the turn of ``prompt``: every earlier turn and this
    turn's messages so far, in turn order.

    Turns are ordered by their prompt's seq, not by raw seq: a prompt queued while
    an earlier turn was streaming has a smaller seq than that earlier reply, yet the
    reply belongs before it, and later prompts still waiting in the queue must not
    be shown at all.
    """
    prompt_seq: dict[str, int] = {}
    for msg in messages:  # in seq order: a turn's first message is its prompt
        if msg.turn_id:
            prompt_seq.setdefault(msg.turn_id, msg.seq)

    def turn_key(msg: Message) -> int:
        return prompt_seq.get(msg.turn_id, msg.seq) if msg.turn_id else msg.seq

    last_reply: dict[str, int] = {}  # each turn's newest assistant seq, read once (this runs every round)
    for msg in messages:
        if msg.role == "assistant" and msg.turn_id:
            last_reply[msg.turn_id] = msg.seq
    selected = [msg for msg in messages
                if turn_key(msg) <= prompt.seq and not _superseded(msg, last_reply, prompt)]
    return sorted(selected, key=lambda msg: (turn_key(msg), msg.seq))


def _superseded(msg: Message, last_reply: dict[str, int], prompt: Message) -> bool:
    """An attempt that is not part of the conversation the next model continues.

    In the running turn, every attempt that did not complete (a failover starts the
    answer afresh; sending the partial text would be prefill, which Claude refuses).
    In earlier turns, a failed attempt that a later attempt of the turn replaced.
    The attempts stay in the transcript, marked; only the request leaves them out.
    """
    if msg.role != "assistant" or msg.status in ("complete", "streaming", "refused") or not msg.turn_id:
        return False
    if msg.turn_id == prompt.turn_id:
        return True
    return msg.status == "failed" and last_reply.get(msg.turn_id, msg.seq) > msg.seq


@dataclass
class _Opening:
    """A reply not committed yet: it is opened in the transaction of its first text
    (or of its end), so the first token costs one sync, not two."""

    model: ModelInfo
    reason: str
    kind: SwitchKind
    switch: bool
    id: str = field(default_factory=new_id)


class _Stream:
    """The blocks of one reply as they arrive, committed in batches.

    Blocks keep the order the model produced them in (thinking, text, calls), with
    their side data: that order and those bytes are what the same model wants back.
    Thinking text goes out as ``message/delta`` with ``thinking`` set, never mixed
    into the reply's text.
    """

    def __init__(self, turns: Turns, turn: Turn, opening: _Opening):
        self._turns = turns
        self._turn = turn
        self._opening = opening
        self._reply: Message | None = None
        self._opened = False
        """Whether the reply's opening has been stored."""
        self._blocks: list[ContentBlock] = []
        self._text: list[str] = []
        """Text of the block being written (the last one, when it is a TextBlock)."""
        self._thinking: list[str] = []
        """Thinking text streamed for the block not yet complete."""
        self.calls: list[ToolCallEvent] = []
        self._after_text = False
        self._pending: list[tuple[str, str]] = []
        self._last_flush = 0.0  # the first text is committed at once: time to first token
        self._last_report = 0.0
        self._started = time.monotonic()
        self.ttft_ms: float | None = None

    def add(self, event: object) -> None:
        follows_text, self._after_text = self._after_text, isinstance(event, TextDelta) and bool(event.text)
        if isinstance(event, TextDelta):
            self._add_text(event.text)
        elif isinstance(event, ThinkingDelta):
            self._thinking.append(event.text)
            self._queue("thinking", event.text)
        elif isinstance(event, ThinkingDone):
            self._close_text()
            self._thinking.clear()
            self._blocks.append(ThinkingBlock(text=event.text, signature=event.signature, redacted=event.redacted))
        elif isinstance(event, TextSignature):
            self._close_text(event.signature, own_text=follows_text)
        elif isinstance(event, ToolCallEvent):
            self._close_text()
            self.calls.append(event)
            self._blocks.append(ToolCallBlock(id=event.id, name=event.name, input=dict(event.input),
                                              signature=event.signature))

    def _add_text(self, text: str) -> None:
        if not text:
            return
        self._text.append(text)
        self._queue("text", text)

    def _queue(self, channel: str, text: str) -> None:
        if not text:
            return
        now = time.monotonic()
        if self.ttft_ms is None:
            self.ttft_ms = (now - self._started) * 1000
        self._pending.append((channel, text))
        self._turn.output_tokens += max(1, len(text) // 4)
        if now - self._last_flush >= CHECKPOINT_S:
            self.flush()

    def _close_text(self, signature: str | None = None, own_text: bool = False) -> None:
        """End the text block being written. A signature belongs to the part that
        carried it (Gemini's last text part when it follows that part's text, else an
        empty part of its own), which stays a block of its own: Google asks that a
        signed part never be merged with others."""
        if signature is not None:
            signed = self._text.pop() if own_text and self._text else ""
            self._close_text()
            self._blocks.append(TextBlock(text=signed, signature=signature))
        elif self._text:
            self._blocks.append(TextBlock(text="".join(self._text)))
            self._text.clear()

    def _content(self) -> list[ContentBlock]:
        content = list(self._blocks)
        if self._thinking:
            content.append(ThinkingBlock(text="".join(self._thinking)))  # unsigned until it completes
        if self._text:
            content.append(TextBlock(text="".join(self._text)))
        return content

    def _message(self, reply: Message) -> Message:
        return msgspec.structs.replace(reply, content=self._content())

    @contextlib.contextmanager
    def _undone_if_refused(self) -> Iterator[None]:
        """A commit the store refuses leaves the stream as before it: its deltas
        pending, and a reply opened in that draft not open yet."""
        pending, opened = list(self._pending), self._opened
        try:
            yield
        except StoreWriteError:
            self._pending, self._opened = pending + self._pending, opened
            if not opened:
                self._reply = None
            raise
        self._opened = True

    def _draft(self) -> tuple[Draft, Message] | None:
        """A draft for the next commit, opening the reply in it if it is not yet."""
        sessions = self._turns.sessions
        session = sessions.store.get_session(self._turn.session_id)
        if session is None:
            return None
        draft = sessions.draft(session)
        if self._reply is None:
            self._reply = self._turns.open_reply(draft, self._turn, self._opening)
        return draft, self._reply

    def finish(self, outcome: _Outcome, *, usage: Usage | None, latency_ms: float,
               stop_reason: str | None) -> None:
        """Commit the final record; text not yet checkpointed goes out as a last
        delta in the same transaction, saving a sync per turn."""
        opened = self._draft()
        if opened is None:
            return
        draft, reply = opened
        with self._undone_if_refused():
            self._commit_final(draft, reply, outcome, usage=usage, latency_ms=latency_ms, stop_reason=stop_reason)

    def _commit_final(self, draft: Draft, reply: Message, outcome: _Outcome, *, usage: Usage | None,
                      latency_ms: float, stop_reason: str | None) -> None:
        self._emit_pending(draft, reply)
        model = self._opening.model
        cost = cost_usd(model, usage) if usage is not None else None
        final = msgspec.structs.replace(
            self._message(reply), status=outcome.status, usage=usage, ttft_ms=self.ttft_ms,
            latency_ms=latency_ms, stop_reason=stop_reason, error=outcome.error_text,
            refusal=outcome.refusal, cost_usd=cost)
        draft.messages.append(final)
        draft.emit(m.MessageCompleted, message=final)
        self._turns.sessions.commit(draft, current_model=model.id,
                                    cost_usd=draft.session.cost_usd + (cost or 0.0))

    def _emit_pending(self, draft: Draft, reply: Message) -> None:
        """One delta per run of the same channel (text or thinking), in order."""
        pending, self._pending = self._pending, []
        runs: list[tuple[str, list[str]]] = []
        for channel, text in pending:
            if runs and runs[-1][0] == channel:
                runs[-1][1].append(text)
            else:
                runs.append((channel, [text]))
        for channel, texts in runs:
            if channel == "thinking":
                draft.emit(m.MessageDelta, message_id=reply.id, text="", thinking="".join(texts))
            else:
                draft.emit(m.MessageDelta, message_id=reply.id, text="".join(texts))

    def flush(self) -> None:
        """Commit the pending text as delta events plus the message checkpoint."""
        if not self._pending:
            return
        opened = self._draft()
        if opened is None:
            self._pending.clear()
            return
        draft, reply = opened
        with self._undone_if_refused():
            self._emit_pending(draft, reply)
            draft.messages.append(self._message(reply))
            self._turns.sessions.commit(draft, current_model=self._opening.model.id)
        self._last_flush = time.monotonic()
        if self._last_flush - self._last_report >= REPORT_INTERVAL_S:
            self._last_report = self._last_flush
            self._turns._progress(self._turn, "report", self._opening.model.id)
