"""``duologue lsp``: a pygls language server on stdio that relays to the daemon.

The one module that meets pygls. It answers the LSP lifecycle and offers:

- every method of the protocol's table as a custom request of the same name, whose
  params are validated by the protocol's own decoders before they are forwarded
  (wrong shapes get a JSON-RPC error, never silence);
- the attached sessions' notifications, forwarded under their protocol names;
- turn progress as work-done progress (see :mod:`.workdone`);
- the commands ``duologue.newSession``, ``duologue.ask``, ``duologue.switchModel``,
  ``duologue.attach`` and ``duologue.sessions``, and an "Ask duologue about this"
  code action on a selection;
- errors the user did not ask for by request (a failed command, a failed reply, a
  lost daemon) as ``window/showMessage``.

pygls turns custom params into namedtuples, which mangle keys and serialise lists
badly, so this server's converter keeps them as plain JSON.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import msgspec
from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcException
from pygls.lsp.server import LanguageServer
from pygls.protocol import JsonRPCNotification, JsonRPCRequestMessage, LanguageServerProtocol, default_converter
from pygls.uris import to_fs_path

from duologue.protocol import methods as m
from duologue.protocol.errors import ErrorCode, RpcError
from duologue.protocol.jsonrpc import Call, decode_params
from duologue.protocol.paths import Paths, locate

from ..rpc.relay_log import log_to_state_file
from ..rpc.launcher import DaemonUnavailable, EmulatorMode
from . import commands as c
from ..rpc.bridge import Bridge, unavailable
from .framing import CheckedStdin, LockedStdout
from .workdone import WorkDoneRelay

log = logging.getLogger("duologue.lsp")


def _raw_params(fields: tuple[str, ...]):
    def hook(obj: dict[str, Any], cls: type) -> Any:
        values = {name: obj.get(name) for name in fields}
        return cls(**values)
    return hook


def _converter():
    """pygls' converter, except that custom messages keep their params as plain JSON."""
    converter = default_converter()
    converter.register_structure_hook(JsonRPCRequestMessage, _raw_params(("id", "method", "jsonrpc", "params")))
    converter.register_structure_hook(JsonRPCNotification, _raw_params(("method", "jsonrpc", "params")))
    return converter


class _Protocol(LanguageServerProtocol):
    """pygls' protocol, except that an object nested in params stays plain JSON.

    pygls decodes with ``object_hook`` and would turn any nested object that has a
    ``jsonrpc`` member into a message object; only a message has a method or an id."""

    def structure_message(self, data: dict[str, Any]) -> Any:
        if "method" not in data and "id" not in data:
            return data
        return super().structure_message(data)


def _as_json_rpc(error: RpcError) -> JsonRpcException:
    return JsonRpcException(message=error.message, code=error.code, data=error.data)


def _internal(what: str) -> JsonRpcException:
    """A bug of ours: logged with its trace, answered without it."""
    log.exception("%s failed", what)
    return JsonRpcException(message=f"{what} failed inside duologue lsp; its log (lsp.log) has details",
                            code=ErrorCode.INTERNAL_ERROR)


def _seen(task: asyncio.Task[None]) -> None:
    """Mark a failed connect as handled: it was shown, and :meth:`DuologueServer.ready`
    raises it to the next request, so asyncio need not log it as never retrieved."""
    if not task.cancelled():
        task.exception()


def _package_version() -> str:
    try:
        return version("duologue")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0"


class DuologueServer(LanguageServer):
    """The language server; also the bridge's :class:`~.bridge.Listener`."""

    def __init__(self, paths: Paths, *, emulator: EmulatorMode = False):
        super().__init__("duologue", _package_version(), protocol_cls=_Protocol, converter_factory=_converter)
        self.paths = paths
        self.bridge = Bridge(paths, self, emulator=emulator)
        self.relay = WorkDoneRelay(self.work_done_progress, self.bridge.short_name)
        self.root: str | None = None
        self.project_id = c.project_of_root(None, os.getcwd())
        self.current_session: str | None = None
        self.shutdown_requested = False
        self._connect: asyncio.Task[None] | None = None
        self._start_failure: str | None = None
        """The last reason shown for not reaching the daemon, so a retry that fails the
        same way does not pop it up again."""

    # --- the daemon link ----------------------------------------------------------------

    def start_connecting(self) -> None:
        if self._connect is None:
            self._connect = asyncio.create_task(self._connect_and_greet(), name="lsp-connect")
            self._connect.add_done_callback(_seen)

    async def _connect_and_greet(self) -> None:
        try:
            await self.bridge.start()
        except (DaemonUnavailable, RpcError, OSError) as exc:
            self._tell_start_failure(exc.message if isinstance(exc, RpcError) else str(exc))
            raise
        self._start_failure = None
        hello = self.bridge.client.hello_result
        if hello is not None and hello.emulator:
            self.window_log_message(lsp.LogMessageParams(
                type=lsp.MessageType.Warning,
                message="duologue: the daemon answers from the offline provider emulator"))

    def _tell_start_failure(self, detail: str) -> None:
        """Show why no daemon could be reached (a bad config file, a home it cannot
        write: the daemon's own words) the moment it is known, even before the editor
        asks for anything; the same words again only after something changed."""
        if detail != self._start_failure:
            self._start_failure = detail
            self.show(lsp.MessageType.Error, f"duologue: {detail}")

    async def ready(self) -> Bridge:
        """The connected bridge; the first call after a failed start tries again."""
        self.start_connecting()
        assert self._connect is not None
        try:
            await asyncio.shield(self._connect)
        except (DaemonUnavailable, RpcError, OSError) as exc:
            self._connect = None
            detail = exc.message if isinstance(exc, RpcError) else str(exc)
            raise unavailable(detail) from None
        return self.bridge

    async def forward(self, method: str, params: Any) -> Any:
        """A custom request: validate with the protocol's decoder, forward, answer."""
        if params is not None and not isinstance(params, (dict, list)):
            raise _as_json_rpc(RpcError(ErrorCode.INVALID_PARAMS, f"{method} takes params by name (an object)"))
        try:
            try:
                raw = msgspec.json.encode(params or {})
            except TypeError:
                raise RpcError(ErrorCode.INVALID_PARAMS, f"invalid params for {method}: not plain JSON") from None
            typed = decode_params(Call(0, method, msgspec.Raw(raw)))
            if method == "session/create" and isinstance(params, dict) and "project_id" not in params:
                typed = msgspec.structs.replace(typed, project_id=self.project_id)
            bridge = await self.ready()
            result = await bridge.call(method, typed)
        except RpcError as exc:
            raise _as_json_rpc(exc) from None
        except Exception:
            raise _internal(method) from None
        return msgspec.to_builtins(result)

    # --- Listener -----------------------------------------------------------------------

    def deliver(self, method: str, event: Any) -> None:
        plain = event if isinstance(event, (dict, list)) else msgspec.to_builtins(event)
        self.protocol.notify(method, plain)
        if isinstance(event, m.Progress) and self._client_shows_progress():
            self.relay.on_progress(event)
        elif isinstance(event, m.SessionDeleted) and event.session_id == self.current_session:
            self.current_session = None
        elif isinstance(event, m.MessageCompleted) and event.message.status == "failed":
            model = self.bridge.short_name(event.message.model or "the model")
            self.show(lsp.MessageType.Error,
                      f"duologue: the reply from {model} failed: {event.message.error or 'unknown error'}")

    def connection(self, online: bool, detail: str) -> None:
        self.window_log_message(lsp.LogMessageParams(
            type=lsp.MessageType.Info if online else lsp.MessageType.Warning, message=f"duologue: {detail}"))

    def warn(self, text: str) -> None:
        self.show(lsp.MessageType.Warning, text)

    def show(self, kind: lsp.MessageType, text: str) -> None:
        self.window_show_message(lsp.ShowMessageParams(type=kind, message=text))

    def _client_shows_progress(self) -> bool:
        try:
            window = self.client_capabilities.window
        except AttributeError:
            return False
        return bool(window and window.work_done_progress)

    # --- commands -----------------------------------------------------------------------

    async def run_command(self, command: str, arguments: list[Any]) -> Any:
        """Run an editor command; its errors are shown to the user and answered."""
        try:
            args = c.decode_args(command, list(arguments))
            bridge = await self.ready()
            result = await self._command(bridge, command, args)
        except RpcError as exc:
            self.show(lsp.MessageType.Error, f"duologue: {exc.message}")
            raise _as_json_rpc(exc) from None
        except Exception:
            self.show(lsp.MessageType.Error, f"duologue: {command} failed; see {self.paths.state_dir}/lsp.log")
            raise _internal(command) from None
        return msgspec.to_builtins(result)

    async def _command(self, bridge: Bridge, command: str, args: Any) -> Any:
        if command == c.NEW_SESSION:
            session = await self._new_session(bridge, args.title, args.model, args.project_id,
                                              args.system_prompt)
            return m.SessionResult(session=session)
        if command == c.ASK:
            sid = None if args.new_session else (args.session_id or self.current_session)
            if sid is None:
                sid = (await self._new_session(bridge, c.title_from(args.text), args.model, None, None)).id
            else:
                await bridge.ensure_attached(sid)
            sent = await bridge.call("session/send", m.SendParams(
                session_id=sid, text=args.text, context=args.context, model=args.model))
            return {"session_id": sid, **msgspec.to_builtins(sent)}
        if command == c.SWITCH_MODEL:
            sid = self._session_or_error(args.session_id)
            return await bridge.call("session/switch_model",
                                     m.SwitchParams(session_id=sid, model=args.model, reason=args.reason))
        if command == c.ATTACH:
            result = await bridge.call("session/attach",
                                       m.AttachParams(session_id=args.session_id, since_seq=args.since_seq))
            self.current_session = args.session_id
            return result
        if command == c.SESSIONS:
            project = None if args.all else (args.project_id or self.project_id)
            return await bridge.call("session/list", m.ListParams(project_id=project, limit=args.limit))
        raise RpcError(ErrorCode.METHOD_NOT_FOUND, f"no command {command!r}")  # pragma: no cover

    async def _new_session(self, bridge: Bridge, title: str | None, model: str | None,
                           project_id: str | None, system_prompt: str | None) -> Any:
        result = await bridge.call("session/create", m.CreateParams(
            project_id=project_id or self.project_id, title=title, model=model,
            system_prompt=system_prompt))
        session = result.session
        await bridge.call("session/attach", m.AttachParams(session_id=session.id, since_seq=0))
        self.current_session = session.id
        return session

    def _session_or_error(self, session_id: str | None) -> str:
        sid = session_id or self.current_session
        if sid is None:
            raise RpcError(ErrorCode.INVALID_PARAMS,
                           "no current session: run duologue.newSession or duologue.attach first, "
                           "or pass session_id", {"path": "$.session_id"})
        return sid

    # --- code action --------------------------------------------------------------------

    def ask_about(self, params: lsp.CodeActionParams) -> list[lsp.CodeAction] | None:
        rng = params.range
        if rng.start == rng.end:
            return None  # a selection is needed
        doc = self.workspace.get_text_document(params.text_document.uri)
        try:
            lines = list(doc.lines)
        except OSError:
            return None
        file_path = to_fs_path(params.text_document.uri) or params.text_document.uri
        block = c.code_context(c.display_path(file_path, self.root), lines, rng.start.line, rng.end.line,
                               rng.end.character, c.language_of(file_path, doc.language_id))
        arguments = [{"text": c.DEFAULT_QUESTION, "context": [msgspec.to_builtins(block)]}]
        command = lsp.Command(title=c.ASK_ABOUT_TITLE, command=c.ASK, arguments=arguments)
        return [lsp.CodeAction(title=c.ASK_ABOUT_TITLE, kind=lsp.CodeActionKind.Empty, command=command)]


def build_server(paths: Paths, *, emulator: EmulatorMode = False) -> DuologueServer:
    server = DuologueServer(paths, emulator=emulator)

    @server.feature(lsp.INITIALIZE)
    def initialize(ls: DuologueServer, params: lsp.InitializeParams) -> None:
        root = None
        if params.workspace_folders:
            root = to_fs_path(params.workspace_folders[0].uri)
        root = root or ls.workspace.root_path
        ls.root = root
        ls.project_id = c.project_of_root(root, os.getcwd())
        ls.start_connecting()

    @server.feature(lsp.SHUTDOWN)
    async def shutdown(ls: DuologueServer, *_: Any) -> None:
        ls.shutdown_requested = True
        await ls.relay.close()
        await ls.bridge.close()

    @server.feature(lsp.WINDOW_WORK_DONE_PROGRESS_CANCEL)
    async def cancel_turn(ls: DuologueServer, params: lsp.WorkDoneProgressCancelParams) -> None:
        session_id = ls.relay.sessions.get(str(params.token))
        if session_id is None:
            return
        try:
            await ls.bridge.call("session/cancel", m.SessionRef(session_id=session_id))
        except RpcError as exc:
            if exc.code != ErrorCode.NOTHING_TO_CANCEL:
                ls.show(lsp.MessageType.Warning, f"duologue: {exc.message}")

    @server.feature(lsp.TEXT_DOCUMENT_CODE_ACTION,
                    lsp.CodeActionOptions(code_action_kinds=[lsp.CodeActionKind.Empty]))
    def code_action(ls: DuologueServer, params: lsp.CodeActionParams) -> Any:
        return ls.ask_about(params)

    for name in m.METHODS:
        server.feature(name)(_forwarder(name))
    for name in c.COMMANDS:
        server.command(name)(_command(name))
    return server


def _forwarder(method: str):
    async def forward(ls: DuologueServer, params: Any) -> Any:
        return await ls.forward(method, params)
    forward.__name__ = f"forward_{method.replace('/', '_')}"
    return forward


def _command(name: str):
    async def run(ls: DuologueServer, *arguments: Any) -> Any:
        return await ls.run_command(name, list(arguments))
    run.__name__ = f"command_{name.replace('.', '_')}"
    return run


def main(*, emulator: EmulatorMode = False) -> int:
    """Serve on stdin/stdout until the editor says exit (0 after shutdown, else 1)."""
    paths = locate()
    log_to_state_file(paths, "lsp", "duologue.lsp")
    server = build_server(paths, emulator=emulator)
    out = LockedStdout(sys.stdout.buffer)
    server.start_io(stdin=CheckedStdin(sys.stdin.fileno(), out), stdout=out)  # type: ignore[arg-type]
    return 0 if server.shutdown_requested else 1
