"""The method table's implementations: one small function per method.

Each handler takes the decoded params and the caller's :class:`Caller` and returns
the method's result type. A handler that waits (``async def``) is answered from a
task, the others inline (see ``dispatch``). The logic lives in ``sessions`` and ``turns``; this module
only adapts between them and the protocol.
"""

from __future__ import annotations

import msgspec

from duologue.protocol import methods as m
from duologue.protocol.errors import ErrorCode, RpcError

from .bounds import check_blocks
from .dispatch import Caller, Handler
from .export import export_session
from .imports import Imports
from .services import Services
from .sessions import tasks_from_inputs

def build_handlers(services: Services) -> dict[str, Handler]:
    sessions, turns = services.sessions, services.turns
    imports = Imports(sessions, turns)
    imports.recover()  # before any client is served: no batch is seen half-imported

    def hello(p: m.HelloParams, caller: Caller) -> m.HelloResult:
        ours = m.PROTOCOL_VERSION.split(".")[0]
        theirs = p.protocol_version.split(".")[0]
        if ours != theirs:
            raise RpcError(
                ErrorCode.PROTOCOL_MISMATCH,
                f"this daemon speaks protocol {m.PROTOCOL_VERSION}, the client {p.protocol_version}; "
                "use a client and daemon of the same major version",
                {"daemon": m.PROTOCOL_VERSION, "client": p.protocol_version},
            )
        return m.HelloResult(protocol_version=m.PROTOCOL_VERSION, daemon_version=services.version,
                             emulator=services.emulator_url is not None, instance_id=services.instance_id)

    def status(p: m.Empty, caller: Caller) -> m.StatusResult:
        return services.status()

    def sync_status(p: m.Empty, caller: Caller) -> m.SyncStatusResult:
        return m.SyncStatusResult(configured=False) if services.sync is None else services.sync.status()

    def shutdown(p: m.Empty, caller: Caller) -> m.EmptyResult:
        services.request_stop("daemon/shutdown")
        return m.EmptyResult()

    def catalog_result() -> m.ModelsResult:
        # a model discovery marked unavailable (retired) stays so, whatever its provider's state
        models = [msgspec.structs.replace(mi, available=mi.available and services.routing.available(mi))
                  for mi in services.catalog.models]
        return services.discovery.result(models, services.catalog.default_model)

    def models_list(p: m.Empty, caller: Caller) -> m.ModelsResult:
        return catalog_result()

    async def models_refresh(p: m.RefreshParams, caller: Caller) -> m.ModelsResult:
        await services.discovery.refresh_all(p.provider)
        return catalog_result()

    def create(p: m.CreateParams, caller: Caller) -> m.SessionResult:
        return m.SessionResult(session=sessions.create(p))

    def list_(p: m.ListParams, caller: Caller) -> m.ListResult:
        return sessions.list(p)

    def get(p: m.GetParams, caller: Caller) -> m.GetResult:
        return sessions.get(p)

    def rename(p: m.RenameParams, caller: Caller) -> m.SessionResult:
        return m.SessionResult(session=sessions.rename(p))

    async def delete(p: m.SessionRef, caller: Caller) -> m.DeleteResult:
        await turns.forget_session(p.session_id)
        sessions.delete(p.session_id)
        return m.DeleteResult(deleted=True)

    def switch(p: m.SwitchParams, caller: Caller) -> m.SwitchResult:
        session, switch_ = sessions.switch_model(p.session_id, p.model, p.reason)
        return m.SwitchResult(session=session, switch=switch_)

    def attach(p: m.AttachParams, caller: Caller) -> m.AttachResult:
        result, replay = sessions.attach(p, caller.peer)
        if replay is not None:
            caller.after.append(replay)
        return result

    def detach(p: m.SessionRef, caller: Caller) -> m.EmptyResult:
        sessions.require(p.session_id)
        sessions.hub.detach(p.session_id, caller.peer)
        return m.EmptyResult()

    def send(p: m.SendParams, caller: Caller) -> m.SendResult:
        check_blocks(p.context, "$.context")
        check_blocks(p.images, "$.images")
        return turns.submit(p)

    send_handler: Handler = send
    if services.sync is not None:
        replicator = services.sync

        async def send_synced(p: m.SendParams, caller: Caller) -> m.SendResult:
            """With [sync], a send may wait for its session's lease or its holder's
            answer: answered from a task, so the request loop never waits (sync.md)."""
            check_blocks(p.context, "$.context")
            return await replicator.send(p)
        send_handler = send_synced

    def cancel(p: m.SessionRef, caller: Caller) -> m.CancelResult:
        return turns.cancel(p.session_id)

    def pin(p: m.PinParams, caller: Caller) -> m.MessageResult:
        return m.MessageResult(message=sessions.pin(p.session_id, p.message_id, p.pinned))

    def summaries(p: m.SessionRef, caller: Caller) -> m.SummariesResult:
        sessions.require(p.session_id)
        return m.SummariesResult(summaries=sessions.store.summaries(p.session_id))

    def metrics_get(p: m.MetricsParams, caller: Caller) -> m.MetricsResult:
        model = None if p.model is None else services.catalog.resolve(p.model).id
        return services.metrics.snapshot(model)

    def tasks_update(p: m.TasksUpdateParams, caller: Caller) -> m.TasksResult:
        who = f"client:{p.client}" if p.client else f"client:{caller.peer.key.hex()[:8]}"
        return m.TasksResult(tasks=sessions.update_tasks(p.session_id, tasks_from_inputs(p.tasks), who))

    def tasks_list(p: m.SessionRef, caller: Caller) -> m.TasksResult:
        sessions.require(p.session_id)
        return m.TasksResult(tasks=sessions.store.tasks(p.session_id))

    async def import_run(p: m.ImportParams, caller: Caller) -> m.ImportResult:
        return await imports.run(p)

    async def import_undo(p: m.UndoParams, caller: Caller) -> m.UndoResult:
        return await imports.undo(p.batch_id)

    def import_list(p: m.Empty, caller: Caller) -> m.ImportListResult:
        return imports.list()

    def export(p: m.ExportParams, caller: Caller) -> m.ExportDocument:
        return export_session(sessions, p)

    return {
        "daemon/hello": hello,
        "daemon/status": status,
        "sync/status": sync_status,
        "daemon/shutdown": shutdown,
        "models/list": models_list,
        "models/refresh": models_refresh,
        "session/create": create,
        "session/list": list_,
        "session/get": get,
        "session/rename": rename,
        "session/delete": delete,
        "session/switch_model": switch,
        "session/attach": attach,
        "session/detach": detach,
        "session/send": send_handler,
        "session/cancel": cancel,
        "session/pin": pin,
        "session/summaries": summaries,
        "metrics/get": metrics_get,
        "tasks/update": tasks_update,
        "tasks/list": tasks_list,
        "import/run": import_run,
        "import/undo": import_undo,
        "import/list": import_list,
        "session/export": export,
    }

