"""Turn progress as LSP work-done progress, so any editor shows it natively.

Each turn of an attached session becomes one server-initiated progress with the
token ``duologue/<turn_id>``: ``window/workDoneProgress/create``, then ``$/progress``
begin, reports and end, in the order the daemon sent them. One worker task per turn
keeps that order while the editor answers the create request; the others go on.
A turn whose begin this editor missed (it attached mid-turn) starts at its first
report; one that ended before its progress was created shows nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Protocol

from lsprotocol.types import WorkDoneProgressBegin, WorkDoneProgressEnd, WorkDoneProgressReport

from duologue.protocol import methods as m

log = logging.getLogger("duologue.lsp")

CREATE_TIMEOUT_S = 10.0


class WorkDoneProgress(Protocol):
    """What pygls' ``work_done_progress`` offers (duck-typed: no pygls import here)."""

    async def create_async(self, token: str) -> Any: ...
    def begin(self, token: str, value: WorkDoneProgressBegin) -> None: ...
    def report(self, token: str, value: WorkDoneProgressReport) -> None: ...
    def end(self, token: str, value: WorkDoneProgressEnd) -> None: ...


def token_of(turn_id: str) -> str:
    return f"duologue/{turn_id}"


def describe(p: m.Progress) -> tuple[str, int | None]:
    """The progress message and percentage (from the task list, when it has one).
    The model is in the title, which editors show next to the message."""
    parts: list[str] = []
    if p.output_tokens:
        parts.append(f"{p.output_tokens} tokens")
    if p.tasks_total:
        parts.append(f"{p.tasks_completed}/{p.tasks_total} tasks")
    if p.active_task:
        parts.append(p.active_task)
    if p.estimated_s is not None and p.kind != "end":
        parts.append(f"~{p.estimated_s:.0f}s left")
    percentage = round(100 * p.tasks_completed / p.tasks_total) if p.tasks_total else None
    return " · ".join(parts) or "waiting for the first tokens", percentage


def begin_value(p: m.Progress, short: str) -> WorkDoneProgressBegin:
    message, percentage = describe(p)
    return WorkDoneProgressBegin(title=f"duologue: {short}", message=message, cancellable=True,
                                 percentage=percentage)


def report_value(p: m.Progress) -> WorkDoneProgressReport:
    message, percentage = describe(p)
    return WorkDoneProgressReport(message=message, percentage=percentage, cancellable=True)


def end_value(p: m.Progress) -> WorkDoneProgressEnd:
    message, _ = describe(p)
    return WorkDoneProgressEnd(message=f"{p.outcome or 'done'} · {message}")


class WorkDoneRelay:
    """Turns ``progress`` notifications into ordered work-done progress."""

    def __init__(self, progress: WorkDoneProgress, short_name: Callable[[str], str]):
        self.progress = progress
        self.short_name = short_name
        self.sessions: dict[str, str] = {}
        """Live token -> session id, so an editor's cancel can cancel the turn."""
        self._queues: dict[str, asyncio.Queue[m.Progress]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}

    def on_progress(self, p: m.Progress) -> None:
        token = token_of(p.turn_id)
        queue = self._queues.get(token)
        if queue is None:
            if p.kind == "end":
                return  # nothing of this turn was shown
            queue = self._queues[token] = asyncio.Queue()
            self.sessions[token] = p.session_id
            self._workers[token] = asyncio.create_task(self._run(token, queue), name=token)
        queue.put_nowait(p)

    async def _run(self, token: str, queue: asyncio.Queue[m.Progress]) -> None:
        try:
            try:
                await asyncio.wait_for(self.progress.create_async(token), CREATE_TIMEOUT_S)
                created = True
            except Exception as exc:  # the editor refused or never answered: show nothing
                log.info("work-done progress %s not created: %r", token, exc)
                created = False
            began = False
            while True:
                p = await queue.get()
                if created:
                    if not began:
                        self.progress.begin(token, begin_value(p, self.short_name(p.model)))
                        began = True
                    elif p.kind == "end":
                        self.progress.end(token, end_value(p))
                    else:
                        self.progress.report(token, report_value(p))
                if p.kind == "end":
                    return
        finally:
            getattr(self.progress, "tokens", {}).pop(token, None)
            self._queues.pop(token, None)
            self._workers.pop(token, None)
            self.sessions.pop(token, None)

    async def close(self) -> None:
        workers = list(self._workers.values())
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
