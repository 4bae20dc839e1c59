"""The ACP agent: ACP methods relayed to the daemon, its events relayed back.

An ACP session id *is* the duologue session id, so ``duologue list``, ``show``,
``attach``, the chat and the language server see the sessions an ACP client makes,
and an ACP client can load any of theirs. The link to the daemon is the client
library's :class:`~..rpc.bridge.Bridge`: it starts the daemon when none runs, and
after a restart reattaches every open session with ``since_seq``, so each stored
event reaches the ACP client once, in seq order.

Every event is turned into ACP updates (:mod:`.updates`) by one task, in the order
the daemon sent them; a prompt's answer is given by that same task once its turn's
last event has been written, so no update of a turn follows its answer.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import Any, TypeVar

from acp import RequestError
from acp import schema as a
from acp.interfaces import Client

from duologue.protocol import methods as m
from duologue.protocol.entities import ModelInfo, Session
from duologue.protocol.errors import ErrorCode, RpcError
from duologue.protocol.paths import Paths

from ..rpc.bridge import Bridge
from ..rpc.launcher import DaemonUnavailable, EmulatorMode
from ..rpc.project import project_of
from . import updates as u
from .view import Pending, View

log = logging.getLogger("duologue.acp")

ACP_PROTOCOL_VERSION = 1
SWITCH_REASON = "chosen in the ACP client"

T = TypeVar("T")


def relayed(fn: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """A daemon refusal becomes the same JSON-RPC error for the ACP client."""
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return await fn(*args, **kwargs)
        except RpcError as exc:
            raise RequestError(exc.code, exc.message, exc.data) from None
        except u.PromptRefused as exc:
            raise RequestError(ErrorCode.INVALID_PARAMS, str(exc), {"path": "$.prompt"}) from None
        except DaemonUnavailable as exc:
            raise RequestError(ErrorCode.INTERNAL_ERROR, f"the duologue daemon is not reachable: {exc}",
                               {"reason": "daemon_unavailable"}) from None
    return wrapper


class DuologueAgent:
    """The ACP ``Agent`` side, one per ACP connection (one editor)."""

    def __init__(self, paths: Paths, *, emulator: EmulatorMode = "if-no-key", call_timeout_s: float = 60.0):
        self.paths = paths
        self.bridge = Bridge(paths, self, emulator=emulator, client_name="acp", call_timeout_s=call_timeout_s,
                             relay_unknown=False)
        self.conn: Client | None = None
        self.views: dict[str, View] = {}
        self.models: list[ModelInfo] = []
        self._events: asyncio.Queue[Any] = asyncio.Queue()
        self._started = False
        self._start_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._forwarder: asyncio.Task[None] | None = None
        self._instance = ""
        """The daemon instance this agent last talked to: a new one ran none of the old one's turns."""

    def on_connect(self, conn: Client) -> None:
        self.conn = conn

    # --- lifecycle ----------------------------------------------------------------------

    async def _ready(self) -> None:
        async with self._start_lock:
            if self._started:
                return
            await self.bridge.start()
            self._started = True
            self._instance = self._daemon_instance()
            self.models = list((await self.bridge.call("models/list", m.Empty())).models)
            self._forwarder = asyncio.create_task(self._forward(), name="acp-forward")

    async def close(self) -> None:
        for view in self.views.values():
            if view.prompt is not None and not view.prompt.done.done():
                view.prompt.done.cancel()
        tasks = [*self._tasks, *([self._forwarder] if self._forwarder else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._started:
            await self.bridge.close()

    # --- the Bridge's listener ----------------------------------------------------------

    def deliver(self, method: str, event: Any) -> None:
        self._events.put_nowait(event)

    def connection(self, online: bool, detail: str) -> None:
        log.info("daemon connection %s: %s", "up" if online else "down", detail)
        instance = self._daemon_instance()
        if online and instance != self._instance:
            self._instance = instance
            self._spawn(self._end_orphaned_prompts(), "acp-restarted")

    def warn(self, text: str) -> None:
        log.warning("%s", text)

    # --- ACP methods --------------------------------------------------------------------

    @relayed
    async def initialize(self, protocol_version: int, client_capabilities: Any = None,
                         client_info: Any = None, **kwargs: Any) -> a.InitializeResponse:
        await self._ready()
        from importlib.metadata import version
        return a.InitializeResponse(
            protocol_version=ACP_PROTOCOL_VERSION,
            agent_capabilities=a.AgentCapabilities(
                load_session=True,
                prompt_capabilities=a.PromptCapabilities(
                    embedded_context=True, image=any(info.images for info in self.models), audio=False),
                session_capabilities=a.SessionCapabilities(
                    list=a.SessionListCapabilities(), resume=a.SessionResumeCapabilities(),
                    close=a.SessionCloseCapabilities(), fork=a.SessionForkCapabilities(),
                    delete=a.SessionDeleteCapabilities())),
            agent_info=a.Implementation(name="duologue", title="duologue", version=version("duologue")))

    @relayed
    async def new_session(self, cwd: str, mcp_servers: Any = None, **kwargs: Any) -> a.NewSessionResponse:
        await self._ready()
        created = await self.bridge.call("session/create", m.CreateParams(
            project_id=project_of(cwd), metadata={"client": "acp"}))
        view = await self._open(created.session, cwd, since_seq=None)
        return a.NewSessionResponse(session_id=view.session.id, config_options=view.options())

    @relayed
    async def load_session(self, cwd: str, session_id: str, mcp_servers: Any = None,
                           **kwargs: Any) -> a.LoadSessionResponse:
        """Replay the whole history as updates, then answer."""
        await self._ready()
        got = await self.bridge.call("session/get", m.GetParams(session_id=session_id, limit=1))
        view = await self._open(got.session, cwd, since_seq=0)
        return a.LoadSessionResponse(config_options=view.options())

    @relayed
    async def resume_session(self, session_id: str, cwd: str, mcp_servers: Any = None,
                             **kwargs: Any) -> a.ResumeSessionResponse:
        """Follow the session from now on, without a replay."""
        await self._ready()
        got = await self.bridge.call("session/get", m.GetParams(session_id=session_id, limit=1))
        view = await self._open(got.session, cwd, since_seq=None)
        view.cost_usd = got.session.cost_usd
        return a.ResumeSessionResponse(config_options=view.options())

    @relayed
    async def fork_session(self, session_id: str, cwd: str, additional_directories: Any = None,
                           mcp_servers: Any = None, **kwargs: Any) -> a.ForkSessionResponse:
        """A new duologue session holding a copy of this one's history (imported, so the
        copy is one batch that lands whole) and of its task list, answering with the
        source's model."""
        await self._ready()
        doc = await self.bridge.export_session(session_id)
        fork_id = f"acp-fork:{session_id}:{uuid.uuid4().hex}"
        imported = await self.bridge.call("import/run", m.ImportParams(
            sessions=[u.fork(doc, fork_id, project_of(cwd), datetime.now(timezone.utc))]))
        (made,) = imported.sessions
        assert made.session_id is not None  # not a dry run
        if doc.tasks.tasks:
            await self.bridge.update_tasks(made.session_id, u.task_inputs(doc.tasks))
        switched = await self.bridge.call("session/switch_model", m.SwitchParams(
            session_id=made.session_id, model=doc.session.model, reason=f"forked from {session_id}"))
        view = await self._open(switched.session, cwd, since_seq=None)
        return a.ForkSessionResponse(session_id=view.session.id, config_options=view.options())

    @relayed
    async def close_session(self, session_id: str, **kwargs: Any) -> a.CloseSessionResponse:
        """Stop following the session (and stop this client's running turn). The session
        itself stays in duologue."""
        await self._ready()
        view = self._view(session_id)
        if view.prompt is not None:
            await self.cancel(session_id)
        self.views.pop(session_id, None)
        await self.bridge.call("session/detach", m.SessionRef(session_id=session_id))
        return a.CloseSessionResponse()

    @relayed
    async def delete_session(self, session_id: str, **kwargs: Any) -> a.DeleteSessionResponse:
        """Delete the session from duologue, as ``duologue rm`` does: an ACP session is a
        duologue session, so every client attached to it is told (the editor asked its
        user first). This client's running turn stops first."""
        await self._ready()
        view = self.views.get(session_id)
        if view is not None and view.prompt is not None:
            await self.cancel(session_id)
        await self.bridge.call("session/delete", m.SessionRef(session_id=session_id))
        self.views.pop(session_id, None)
        return a.DeleteSessionResponse()

    @relayed
    async def list_sessions(self, cwd: str | None = None, cursor: str | None = None,
                            **kwargs: Any) -> a.ListSessionsResponse:
        await self._ready()
        listed = await self.bridge.call("session/list", m.ListParams(
            project_id=project_of(cwd) if cwd else None, before=cursor))
        return a.ListSessionsResponse(sessions=[u.session_info(s) for s in listed.sessions],
                                      next_cursor=listed.next_cursor)

    @relayed
    async def set_config_option(self, config_id: str, session_id: str, value: str | bool,
                                **kwargs: Any) -> a.SetSessionConfigOptionResponse:
        await self._ready()
        view = self._view(session_id)
        if config_id == u.MODEL_OPTION and isinstance(value, str):
            switched = await self.bridge.call("session/switch_model", m.SwitchParams(
                session_id=session_id, model=value, reason=SWITCH_REASON))
            view.session = switched.session
        elif config_id == u.THINKING_OPTION and value in u.THINKING_VALUES:
            view.thinking = str(value)
        else:
            raise RequestError(ErrorCode.INVALID_PARAMS,
                               f"no config option {config_id!r} takes the value {value!r}; "
                               f"the options are {u.MODEL_OPTION!r} and {u.THINKING_OPTION!r}",
                               {"path": "$.value"})
        return a.SetSessionConfigOptionResponse(config_options=view.options())

    @relayed
    async def prompt(self, prompt: list[Any], session_id: str, **kwargs: Any) -> a.PromptResponse:
        await self._ready()
        view = self._view(session_id)
        if view.prompt is not None:
            raise RequestError(ErrorCode.INVALID_REQUEST, "a prompt of this session is still running; "
                               "cancel it or wait for its answer", {"path": "$.sessionId"})
        asked = u.prompt_to_send(prompt, view.cwd)
        loop = asyncio.get_running_loop()
        pending = Pending(loop.create_future())
        view.prompt = pending
        view.sending = sending = loop.create_future()
        try:
            thinking = None if view.thinking == u.THINKING_DEFAULT else view.thinking
            try:
                sent = await self.bridge.call("session/send", m.SendParams(
                    session_id=session_id, text=asked.text, context=asked.context, images=asked.images,
                    thinking=thinking))  # type: ignore[arg-type]
                view.own_messages.add(sent.message.id)
            finally:
                sending.set_result(None)
            pending.turn_id = sent.turn_id
            if sent.turn_id in view.ended:
                view.finish(sent.turn_id)
            elif pending.cancel_requested and sent.turn_id in view.begun:
                await self._cancel_turn(view)
            return await pending.done
        finally:
            view.prompt = None

    @relayed
    async def cancel(self, session_id: str, **kwargs: Any) -> None:
        """Cancel this client's running prompt; one still queued is cancelled when it begins."""
        view = self.views.get(session_id)
        if view is None or view.prompt is None:
            return
        view.prompt.cancel_requested = True
        if view.prompt.turn_id is not None and view.prompt.turn_id in view.begun:
            await self._cancel_turn(view)

    # --- helpers ------------------------------------------------------------------------

    def _view(self, session_id: str) -> View:
        view = self.views.get(session_id)
        if view is None:
            raise RequestError(ErrorCode.UNKNOWN_SESSION, f"session {session_id} is not open here: "
                               "open it with session/new, session/load or session/resume first",
                               {"session_id": session_id})
        return view

    async def _open(self, session: Session, cwd: str | None, *, since_seq: int | None) -> View:
        """Follow a session; with ``since_seq``, answer once its replay has been written."""
        view = View(session=session, cwd=cwd, models=self.models)
        self.views[session.id] = view
        attached = await self.bridge.call("session/attach", m.AttachParams(
            session_id=session.id, since_seq=since_seq))
        view.session = attached.session
        if since_seq is None:
            view.delivered_seq = attached.last_seq
        else:
            async with view.caught_up:
                await view.caught_up.wait_for(lambda: view.delivered_seq >= attached.last_seq)
        return view

    async def _cancel_turn(self, view: View) -> None:
        try:
            await self.bridge.call("session/cancel", m.SessionRef(session_id=view.session.id))
        except RpcError as exc:
            if exc.code != ErrorCode.NOTHING_TO_CANCEL:
                raise

    def _spawn(self, coro: Awaitable[Any], name: str) -> None:
        async def run() -> None:
            try:
                await coro
            except Exception:
                log.exception("%s failed", name)
        task = asyncio.create_task(run(), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _daemon_instance(self) -> str:
        hello = self.bridge.client.hello_result
        return hello.instance_id if hello is not None else ""

    async def _end_orphaned_prompts(self) -> None:
        """After a daemon restart, answer the prompts whose turns the old daemon left.

        A restarted daemon closes a turn cut mid-reply (its reply is replayed marked
        interrupted, which answers the prompt), but a turn cut between two tool rounds
        leaves nothing open to close: without this its prompt would wait forever. Once
        the replay has caught up with the session, a prompt still waiting is answered
        with an error: the turn will not go on."""
        for view in list(self.views.values()):
            pending = view.prompt
            if pending is None or pending.turn_id is None or pending.done.done():
                continue
            got = await self.bridge.call("session/get", m.GetParams(session_id=view.session.id, limit=1))
            async with view.caught_up:
                await view.caught_up.wait_for(
                    lambda: view.delivered_seq >= got.session.last_seq or pending.done.done())
            if not pending.done.done() and pending.turn_id not in view.ended:
                view.fail(ErrorCode.INTERNAL_ERROR,
                          "the duologue daemon restarted during this turn and the turn did not go on; "
                          "what it wrote is kept in the session: send the prompt again to continue",
                          {"turn_id": pending.turn_id, "reason": "daemon_restarted"})

    # --- events to updates --------------------------------------------------------------

    async def _forward(self) -> None:
        while True:
            event = await self._events.get()
            try:
                await self._relay(event)
            except Exception:
                log.exception("could not relay %s", type(event).__name__)

    async def _relay(self, event: Any) -> None:
        view = self.views.get(getattr(event, "session_id", ""))
        if view is None or self.conn is None:
            return
        if isinstance(event, m.MessageCreated) and event.message.role == "user" and view.sending is not None:
            await asyncio.shield(view.sending)  # is it this client's own prompt? its send says
        for update in view.updates(event):
            await self.conn.session_update(session_id=view.session.id, update=update)
        if view.cancel_due(event):
            self._spawn(self._cancel_turn(view), "acp-cancel")
        if isinstance(event, m.Progress):
            return
        if isinstance(event, m.SessionDeleted):
            self.views.pop(view.session.id, None)
            view.fail(ErrorCode.UNKNOWN_SESSION, "the session was deleted by another client")
            return
        async with view.caught_up:
            view.delivered_seq = max(view.delivered_seq, event.seq)
            view.caught_up.notify_all()

