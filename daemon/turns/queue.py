"""The per-session queue: one running turn at a time, each owned by its session's worker.

``submit`` makes the user message durable and returns; the turn itself runs later,
as a task owned by its session's worker, which is owned by the daemon's task group.
A turn is attempts (``outcome.after_attempt`` decides the next one), each attempt is
rounds (a request and its streamed reply, written by ``writer.ReplyWriter``, then
the model's tool calls answered), until the model stops calling tools.

A retryable provider error (after the SDK's own retries) moves the turn to an
equivalent model of another provider, recorded as a failover switch; the failed
attempt's message keeps its partial text and the error. Cancellation closes the
provider stream (the async generator is closed in ``finally``) and commits the
partial text marked cancelled.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Coroutine

from duologue.protocol import methods as m
from duologue.protocol.entities import (
    AUTO,
    TOOL_ROUNDS_USED_UP,
    Message,
    MessageStatus,
    ModelInfo,
    Session,
    SwitchKind,
    TextBlock,
    ThinkingDepth,
)
from duologue.protocol.errors import ErrorCode, RpcError

from .. import task_tool
from ..catalog import alternatives
from ..summaries import WindowFitter
from ..titles import title_first_exchange
from ..ids import new_id
from ..metrics import Metrics
from ..providers.base import Finished, ProviderError, ToolCallEvent, TurnRequest, unforeseen
from ..routing import Routing
from ..sessions import Sessions
from ..store import StoreWriteError
from . import admission
from .outcome import Attempts, Outcome, after_attempt, finished_outcome, output_budget
from .history import Histories
from .writer import Opening, ReplyWriter

log = logging.getLogger(__name__)

MAX_TOOL_ROUNDS = 8
UNWRITTEN_RETRY_S = 5.0
"""How often the end of a reply the store refused (a full disk) is written again."""


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
    tokens_before: int = 0
    """Output tokens of the turn's rounds that ended (``output_tokens`` adds the
    running one's, as of its last checkpoint)."""
    task: asyncio.Task[None] | None = None
    stop_status: MessageStatus = "cancelled"
    stop_error: ProviderError | None = None
    ended: bool = False
    """Its progress end is sent: ``daemon/status`` no longer lists it, though its
    task has yet to return."""
    """Why the turn was stopped, when it was stopped for a fault (the deadline)."""
    expected_end: float | None = None
    """monotonic() time the reply is expected to end, from the estimate at begin."""


@dataclass
class _Queue:
    pending: deque[Turn] = field(default_factory=deque)
    running: Turn | None = None
    worker: asyncio.Task[None] | None = None


Spawn = Callable[[Coroutine[Any, Any, None]], asyncio.Task[None]]


class Turns:
    def __init__(self, sessions: Sessions, routing: Routing, metrics: Metrics, spawn: Spawn,
                 queue_limit: int = 32, summary_model: str | None = None, turn_timeout_s: float = 600.0):
        self.sessions = sessions
        self.window = WindowFitter(sessions, routing, summary_model)
        self.histories = Histories(sessions.store)
        sessions.watch(self.histories.committed)
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
        self.on_progress: Callable[[m.Progress], None] | None = None
        """Told every progress notification too (replication relays a handed-off
        turn's to the device that sent it, daemon/sync/handoff.py)."""

    # --- requests -----------------------------------------------------------------------

    def submit(self, p: m.SendParams) -> m.SendResult:
        if self._stopping:
            raise RpcError(ErrorCode.SHUTTING_DOWN, "the daemon is stopping; send again once it restarts")
        session = self.sessions.require(p.session_id)
        if p.model is not None:
            self.sessions.catalog.resolve_choice(p.model)  # an unknown model fails before anything is written
        choice = p.model or session.model
        if p.thinking is not None:
            admission.check_thinking(self.sessions.catalog, p.thinking, choice)
        if p.images:
            admission.check_images(self.sessions.catalog, choice)
        queue = self._queues.setdefault(session.id, _Queue())
        if len(queue.pending) >= self._queue_limit:
            raise RpcError(ErrorCode.QUEUE_FULL,
                           f"{len(queue.pending)} turns are already queued in this session; wait for one to finish")
        if not p.text.strip() and not p.context and not p.images:
            raise RpcError(ErrorCode.INVALID_PARAMS, "the message is empty: give text, context or images",
                           {"path": "$.text"})
        self._write_unwritten()  # a reply that ended while the disk was full comes first
        draft = self.sessions.draft(session)
        content = [*p.images, *([TextBlock(text=p.text)] if p.text else []), *p.context]
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

    def cancel(self, session_id: str) -> m.CancelResult:
        """Signal the running turn to stop; its reply's ``message/completed``
        (cancelled, partial text kept) follows once the stream is torn down."""
        self.sessions.require(session_id)
        queue = self._queues.get(session_id)
        turn = queue.running if queue else None
        if turn is None or turn.task is None or turn.task.done():
            raise RpcError(ErrorCode.NOTHING_TO_CANCEL, f"no turn is running in session {session_id!r}")
        turn.stop_status = "cancelled"
        turn.task.cancel()
        return m.CancelResult(turn_id=turn.id, cancelled=True)

    async def forget_session(self, session_id: str) -> None:
        """Stop and drop a session's turns (it is being deleted)."""
        self.histories.forget(session_id)
        queue = self._queues.pop(session_id, None)
        if queue is None:
            return
        queue.pending.clear()
        if queue.worker is not None:
            queue.worker.cancel()
            await asyncio.gather(queue.worker, return_exceptions=True)

    def busy(self, session_id: str) -> bool:
        """Whether the session has a turn running or queued here."""
        return session_id in self._queues

    def interrupt(self, session_id: str) -> None:
        """Stop the session's running turn as interrupted, its text kept (its writer
        lease went to another device, daemon/sync/lease.py)."""
        queue = self._queues.get(session_id)
        turn = queue.running if queue else None
        if turn is not None and turn.task is not None and not turn.task.done():
            turn.stop_status = "interrupted"
            turn.task.cancel()

    def running(self) -> list[m.RunningTurn]:
        return [
            m.RunningTurn(session_id=q.running.session_id, turn_id=q.running.id,
                          model=q.running.model or "", started_at=q.running.started_at,
                          output_tokens=q.running.output_tokens)
            for q in self._queues.values() if q.running and q.running.started_at and not q.running.ended
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

    # --- the worker ---------------------------------------------------------------------

    async def _work(self, session_id: str, queue: _Queue) -> None:
        try:
            while queue.pending:
                turn = queue.pending.popleft()
                queue.running = turn
                try:
                    # The turn is a task of this worker's own group: session/cancel
                    # cancels it alone (the group ends quietly and the next turn runs),
                    # and stopping the worker cancels the turn with it.
                    async with asyncio.TaskGroup() as owner:
                        turn.task = owner.create_task(self._run(turn), name=f"turn-{turn.id}")
                except* Exception:
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
        if turn.model_choice is not None and model.id != session.current_model:
            self._record_switch(turn.session_id, model.id, reason, kind)  # stored before the turn begins
        estimate = self.metrics.estimate_s(model.id)
        turn.expected_end = time.monotonic() + estimate if estimate is not None else None
        self._progress(turn, "begin", model.id, estimated_s=estimate)
        deadline = asyncio.get_running_loop().call_later(self._turn_timeout_s, self._expire, turn)
        outcome = Outcome("failed")
        try:
            attempts = Attempts()
            while True:
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
                retryable = outcome.error is not None and outcome.error.retryable
                target = self.routing.failover_target(model) if retryable else None
                step = after_attempt(outcome, model, attempts, target)
                attempts, reason = step.attempts, step.reason
                if step.action == "finish":
                    return
                if step.action == "failover" and target is not None:
                    self.metrics.record_failover(model.id, target.id)
                    model, kind = target, "failover"
        except StoreWriteError as exc:  # a tool result or a summary could not be stored
            outcome = Outcome("failed", failure=str(exc))
        except asyncio.CancelledError:
            outcome = Outcome(turn.stop_status, turn.stop_error)
            raise
        finally:
            deadline.cancel()
            if turn.model_choice is not None:
                self._back_to_session_model(turn.session_id)
            if outcome.status == "complete":  # before the end: who stops there has the title
                title_first_exchange(self.sessions, turn.prompt, turn.id)
            turn.ended = True
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
        progress = m.Progress(
            session_id=session.id, seq=session.last_seq, turn_id=turn.id, kind=kind, model=model,
            output_tokens=turn.output_tokens, tasks_completed=sum(t.status == "completed" for t in tasks),
            tasks_total=len(tasks), active_task=active, **extra)
        self.sessions.announce(session.id, "progress", progress)
        if self.on_progress is not None:
            self.on_progress(progress)

    def _record_switch(self, session_id: str, model_id: str, reason: str, kind: SwitchKind) -> None:
        session = self.sessions.require(session_id)
        draft = self.sessions.draft(session)
        self.sessions.record_switch(draft, model_id, reason, kind)
        self.metrics.record_switch(model_id)
        self.sessions.commit(draft, current_model=model_id)

    def _back_to_session_model(self, session_id: str) -> None:
        """``current_model`` names the model that answers next: after a turn answered by
        a model for that turn only, that is the session's model again, and the switch
        back is recorded (an ``auto`` session keeps its pick). After a failover the
        model that took over stays current: while the other provider cools down, it
        answers next."""
        session = self.sessions.store.get_session(session_id)
        if session is None or session.model == AUTO or session.current_model == session.model:
            return
        try:
            self._record_switch(session_id, session.model, "the session's model answers the next turn", "manual")
        except StoreWriteError:
            log.warning("session %s: the switch back to %s could not be stored", session_id, session.model)

    def _initial_choice(self, turn: Turn, session: Session) -> tuple[ModelInfo, str, SwitchKind]:
        catalog = self.sessions.catalog
        choice = turn.model_choice or session.model
        if choice == AUTO:
            count, tokens = self.histories.of(session).before_last()
            picked = self.routing.choose_auto(turn.prompt, session.current_model, count, tokens)
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

    async def _attempt(self, turn: Turn, model: ModelInfo, reason: str, kind: SwitchKind) -> Outcome:
        """One model answering the turn: rounds of streaming, each answering the
        model's tool calls, until it stops calling tools."""
        outcome = Outcome("failed")
        turn.model = model.id
        turn.started_at = turn.started_at or self.sessions.clock()
        for round_ in range(MAX_TOOL_ROUNDS):
            opening = Opening(model, reason, kind, switch=round_ == 0)
            outcome, calls = await self._round(turn, opening)
            if outcome.status != "complete" or not calls:
                return outcome
            self._answer_tools(turn, model, calls, last=round_ == MAX_TOOL_ROUNDS - 1)
        return outcome

    async def _round(self, turn: Turn, opening: Opening) -> tuple[Outcome, list[ToolCallEvent]]:
        """One request to the model and its streamed reply. The metrics clock starts
        at the provider call: loading the SDK and writing a summary are not the
        model's latency."""
        session = self.sessions.require(turn.session_id)
        model = opening.model
        max_tokens = output_budget(model)

        def checkpointed(tokens: int) -> None:
            turn.output_tokens = turn.tokens_before + tokens
            self._progress(turn, "report", model.id)

        stream = ReplyWriter(self.sessions, self.metrics, turn.session_id, turn.id, opening, checkpointed)
        started = time.monotonic()
        outcome = Outcome("failed")
        finished: Finished | None = None
        try:
            try:
                view = self.histories.view(session, turn.prompt)
                history = await self.window.fit(session.id, session.system_prompt, model, view.messages,
                                                max_tokens, view.tokens)
                request = TurnRequest(model=model.id, system=session.system_prompt, messages=history,
                                      tools=[task_tool.SPEC], max_tokens=max_tokens, info=model,
                                      thinking=turn.thinking,
                                      prepared=view if history is view.messages else None)
                adapter = await self.routing.ready(model.provider)
                started = stream.start()
                events = adapter.stream(request)
                stream.open_soon()
                try:
                    async for event in events:
                        if isinstance(event, Finished):
                            finished = event
                        else:
                            stream.add(event)
                finally:
                    await events.aclose()
            except (ProviderError, StoreWriteError, RpcError, asyncio.CancelledError):
                raise
            except Exception as exc:  # a bug anywhere on the way: still a failed turn with a reason
                log.exception("turn %s: %s raised", turn.id, model.id)
                raise unforeseen(exc, model.provider, None) from exc
            outcome = finished_outcome(finished)
            self.routing.record_success(model.provider)
        except ProviderError as exc:
            log.warning("turn %s: %s %s: %s", turn.id, model.id, exc.kind, exc.provider_message)
            if exc.kind == "not_found":
                others = alternatives(self.sessions.catalog, model)
                exc.provider_message += (f"; {model.id} may be retired or not offered to this key"
                                         + (f"; try {', '.join(others)}" if others else ""))
            outcome = Outcome("failed", exc)
            self.routing.record_failure(model.provider, exc.retryable, exc.retry_after)
        except StoreWriteError as exc:  # a checkpoint could not be stored: the reply ends here
            outcome = Outcome("failed", failure=str(exc))
        except RpcError as exc:  # the history could not be fitted to the model's window
            outcome = Outcome("failed", failure=exc.message)
        except asyncio.CancelledError:
            outcome = Outcome(turn.stop_status, turn.stop_error)
            raise
        finally:
            turn.tokens_before += stream.output_tokens
            turn.output_tokens = turn.tokens_before
            latency_ms = (time.monotonic() - started) * 1000
            usage = finished.usage if finished else None

            def finish() -> None:
                stream.finish(outcome, usage=usage, latency_ms=latency_ms,
                              stop_reason=finished.stop_reason if finished else None)
            try:
                finish()
            except StoreWriteError as exc:
                if outcome.failure is None:  # the reply ends failed, as its progress end says
                    outcome = Outcome("failed", failure=str(exc))
                self._unwritable(finish)
            self.metrics.record_turn(model, outcome.status, outcome.error.kind if outcome.error else None,
                                     ttft_ms=stream.ttft_ms, latency_ms=latency_ms, usage=usage)
        return outcome, stream.calls

    def _answer_tools(self, turn: Turn, model: ModelInfo, calls: list[ToolCallEvent], *, last: bool) -> None:
        """Run the model's tool calls and store their results as one user-role message
        of this turn, which the next round sends back to the model. Results the turn
        has no round left to send say so: they end the turn, and a restart must not
        take them for a turn a stop cut between two rounds."""
        results = [task_tool.run_tool(self.sessions, turn.session_id, call, model.id) for call in calls]
        session = self.sessions.require(turn.session_id)
        draft = self.sessions.draft(session)
        draft.add_message(lambda seq: Message(
            id=new_id(), session_id=session.id, seq=seq, role="user", content=list(results),
            created_at=draft.now, turn_id=turn.id, stop_reason=TOOL_ROUNDS_USED_UP if last else None))
        self.sessions.commit(draft)
        self._progress(turn, "report", model.id)
