"""Every method of the protocol's table as a typed coroutine, written once.

:class:`Calls` builds each method's params and names its result over a single
``call``. :class:`~.client.AsyncClient` inherits it and answers ``call`` from its
socket on the event loop; the blocking :class:`~.sync_client.Client` runs the same
coroutines against a stand-in whose ``call`` answers without suspending, so they
finish on their first step and no event loop is involved. Code written against
``Calls`` (the CLI's commands) runs on either client.
"""

from __future__ import annotations

from typing import Any

import msgspec

from duologue.protocol import methods as m
from duologue.protocol.entities import (CodeContextBlock, ContextSummary, ImageBlock, Message, Session, TaskList,
                                       ThinkingDepth)


class Calls:
    """The protocol's methods, typed, over :meth:`call` (which a client provides)."""

    client_name: str

    async def call(self, method: str, params: Any = None) -> Any:
        """Send one request and return its typed result (RpcError on error)."""
        raise NotImplementedError

    async def status(self) -> m.StatusResult:
        return await self.call("daemon/status")

    async def sync_status(self) -> m.SyncStatusResult:
        return await self.call("sync/status")

    async def shutdown(self) -> None:
        await self.call("daemon/shutdown")

    async def list_models(self) -> m.ModelsResult:
        return await self.call("models/list")

    async def create_session(self, *, project_id: str | None = None, title: str | None = None,
                             model: str | None = None, system_prompt: str | None = None,
                             metadata: dict[str, str] | None = None) -> Session:
        params = m.CreateParams(project_id=project_id, title=title, model=model,
                                system_prompt=system_prompt, metadata=metadata or {})
        return (await self.call("session/create", params)).session

    async def list_sessions(self, *, project_id: str | None = None, limit: int = 50,
                            before: str | None = None) -> m.ListResult:
        return await self.call("session/list", m.ListParams(project_id=project_id, limit=limit, before=before))

    async def get_session(self, session_id: str, *, since_seq: int = 0, before_seq: int | None = None,
                          limit: int = m.PAGE_MESSAGES) -> m.GetResult:
        """One page of the session's messages (see ``GetParams``): the first after
        ``since_seq``, or the last before ``before_seq`` (``latest`` reads the end)."""
        return await self.call("session/get", m.GetParams(session_id=session_id, since_seq=since_seq,
                                                          before_seq=before_seq, limit=limit))

    async def latest(self, session_id: str, limit: int = m.PAGE_MESSAGES) -> m.GetResult:
        """The session with its last ``limit`` messages: what a chat shows on opening."""
        return await self.get_session(session_id, before_seq=m.MAX_SEQ, limit=limit)

    async def whole_session(self, session_id: str, *, since_seq: int = 0) -> m.GetResult:
        """Every message after ``since_seq``, read a page at a time (one answer
        holding a long session would pass the frame limit)."""
        return await self._joined("session/get", m.GetParams(
            session_id=session_id, since_seq=since_seq, limit=m.MAX_PAGE_MESSAGES))

    async def _joined(self, method: str, params: m.GetParams | m.ExportParams) -> Any:
        """Call a paged method until its last page; that page with every page's messages."""
        page = await self.call(method, params)
        messages = list(page.messages)
        while page.next is not None:
            page = await self.call(method, msgspec.structs.replace(params, since_seq=page.next.since_seq))
            messages += page.messages
        return msgspec.structs.replace(page, messages=messages)

    async def rename_session(self, session_id: str, title: str) -> Session:
        return (await self.call("session/rename", m.RenameParams(session_id=session_id, title=title))).session

    async def delete_session(self, session_id: str) -> None:
        await self.call("session/delete", m.SessionRef(session_id=session_id))

    async def switch_model(self, session_id: str, model: str, reason: str | None = None) -> m.SwitchResult:
        return await self.call("session/switch_model",
                               m.SwitchParams(session_id=session_id, model=model, reason=reason))

    async def attach(self, session_id: str, since_seq: int | None = None) -> m.AttachResult:
        return await self.call("session/attach", m.AttachParams(session_id=session_id, since_seq=since_seq))

    async def detach(self, session_id: str) -> None:
        await self.call("session/detach", m.SessionRef(session_id=session_id))

    async def send(self, session_id: str, text: str, *, context: list[CodeContextBlock] | None = None,
                   images: list[ImageBlock] | None = None, model: str | None = None, pin: bool = False,
                   thinking: ThinkingDepth | None = None) -> m.SendResult:
        return await self.call("session/send", m.SendParams(
            session_id=session_id, text=text, context=context or [], images=images or [], model=model, pin=pin,
            thinking=thinking))

    async def cancel(self, session_id: str) -> m.CancelResult:
        return await self.call("session/cancel", m.SessionRef(session_id=session_id))

    async def pin(self, session_id: str, message_id: str, pinned: bool = True) -> Message:
        return (await self.call("session/pin", m.PinParams(
            session_id=session_id, message_id=message_id, pinned=pinned))).message

    async def summaries(self, session_id: str) -> list[ContextSummary]:
        return (await self.call("session/summaries", m.SessionRef(session_id=session_id))).summaries

    async def metrics(self, model: str | None = None) -> m.MetricsResult:
        return await self.call("metrics/get", m.MetricsParams(model=model))

    async def update_tasks(self, session_id: str, tasks: list[m.TaskInput],
                           client: str | None = None) -> TaskList:
        return (await self.call("tasks/update", m.TasksUpdateParams(
            session_id=session_id, tasks=tasks, client=client or self.client_name))).tasks

    async def list_tasks(self, session_id: str) -> TaskList:
        return (await self.call("tasks/list", m.SessionRef(session_id=session_id))).tasks

    async def import_sessions(self, sessions: list[m.ImportSession], *, dry_run: bool = False,
                              batch_id: str | None = None, more: bool = False) -> m.ImportResult:
        """One request of an import; pass the first result's ``batch_id`` to continue
        the same batch (``clients.importers.requests`` splits a large import), and
        ``more`` on every request but the last, so the batch lands whole or not at all."""
        return await self.call("import/run", m.ImportParams(sessions=sessions, dry_run=dry_run,
                                                            batch_id=batch_id, more=more))

    async def undo_import(self, batch_id: str) -> m.UndoResult:
        return await self.call("import/undo", m.UndoParams(batch_id=batch_id))

    async def list_imports(self) -> list[m.ImportBatch]:
        return (await self.call("import/list")).batches

    async def export_session(self, session_id: str) -> m.ExportDocument:
        """The session as one document, its messages joined from the daemon's pages."""
        return await self._joined("session/export", m.ExportParams(
            session_id=session_id, limit=m.MAX_PAGE_MESSAGES))
