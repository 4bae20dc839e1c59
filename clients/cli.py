"""The `duologue` command: a thin shell over the client library.

Every subcommand accepts ``--json`` for scripts (the result as the protocol encodes
it) and prints readable text otherwise. Failures print one line on stderr and exit
non-zero: 1 for an error the daemon reported, 2 for bad usage, 3 when no daemon is
reachable. No provider SDK is imported here, so the command starts fast.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import msgspec

from duologue.protocol.errors import RpcError
from duologue.protocol.paths import locate

from . import render
from .connection import AsyncClient, DaemonUnavailable
from .launcher import EmulatorMode, daemon_args
from .follow import ContextArgError, follow_session, follow_turn, parse_context_arg

EXIT_ERROR, EXIT_USAGE, EXIT_NO_DAEMON = 1, 2, 3


class UsageError(Exception):
    pass


class TurnFailed(Exception):
    """The reply did not complete; what was kept is in the session."""


def _print_json(value: Any) -> None:
    sys.stdout.write(msgspec.json.format(msgspec.json.encode(value)).decode() + "\n")


def project_of(path: str | None) -> str:
    """A project id: the git root above ``path`` (default: here), else the directory."""
    start = Path(path or os.getcwd()).resolve()
    for d in (start, *start.parents):
        if (d / ".git").exists():
            return str(d)
    return str(start)


async def resolve_session(client: AsyncClient, ref: str) -> str:
    """A full id from an id, a unique id prefix, or ``last`` (most recent session)."""
    if ref == "last":
        page = await client.list_sessions(limit=1)
        if not page.sessions:
            raise UsageError("there are no sessions yet; create one with `duologue new`")
        return page.sessions[0].id
    if len(ref) == 26:
        return ref
    page = await client.list_sessions(limit=10_000)
    matches = [s.id for s in page.sessions if s.id.startswith(ref.upper())]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise UsageError(f"no session id starts with {ref!r}; `duologue list` shows them")
    raise UsageError(f"{ref!r} matches {len(matches)} sessions; give more characters")


# --- commands -------------------------------------------------------------------------


async def cmd_new(c: AsyncClient, a: argparse.Namespace) -> Any:
    s = await c.create_session(project_id=project_of(a.project), title=a.title, model=a.model,
                               system_prompt=a.system)
    return s, lambda: f"{s.id}  {s.title}  ({s.current_model})"


async def cmd_list(c: AsyncClient, a: argparse.Namespace) -> Any:
    project = project_of(a.project) if a.project else None
    r = await c.list_sessions(project_id=project, limit=a.limit)
    return r, lambda: "\n".join(render.session_line(s) for s in r.sessions) or "no sessions"


async def cmd_show(c: AsyncClient, a: argparse.Namespace) -> Any:
    r = await c.get_session(await resolve_session(c, a.session), since_seq=a.since, limit=a.limit)
    return r, lambda: render.transcript(r)


async def cmd_switch(c: AsyncClient, a: argparse.Namespace) -> Any:
    r = await c.switch_model(await resolve_session(c, a.session), a.model, a.reason)
    text = (render.switch_line(r.switch) if r.switch else f"already on {r.session.current_model}")
    return r, lambda: text


async def cmd_rename(c: AsyncClient, a: argparse.Namespace) -> Any:
    s = await c.rename_session(await resolve_session(c, a.session), a.title)
    return s, lambda: f"{s.id}  {s.title}"


async def cmd_rm(c: AsyncClient, a: argparse.Namespace) -> Any:
    ids = [await resolve_session(c, ref) for ref in a.sessions]
    for sid in ids:
        await c.delete_session(sid)
    return {"deleted": ids}, lambda: "\n".join(f"deleted {sid}" for sid in ids)


async def cmd_models(c: AsyncClient, a: argparse.Namespace) -> Any:
    r = await c.list_models()
    return r, lambda: render.models_table(r.models, r.default_model)


async def cmd_tasks(c: AsyncClient, a: argparse.Namespace) -> Any:
    t = await c.list_tasks(await resolve_session(c, a.session))
    return t, lambda: render.tasks_text(t)


async def cmd_summaries(c: AsyncClient, a: argparse.Namespace) -> Any:
    r = await c.summaries(await resolve_session(c, a.session))
    return r, lambda: "\n\n".join(render.summary_text(x) for x in r) or "no summaries"


async def cmd_stats(c: AsyncClient, a: argparse.Namespace) -> Any:
    r = await c.metrics(a.model)
    return r, lambda: render.metrics_text(r)


async def cmd_send(c: AsyncClient, a: argparse.Namespace) -> Any:
    sid = await resolve_session(c, a.session)
    return await _send_and_follow(c, sid, a)


async def cmd_ask(c: AsyncClient, a: argparse.Namespace) -> Any:
    title = " ".join(a.text.split())[:60]
    s = await c.create_session(project_id=project_of(None), title=title, model=a.model)
    return await _send_and_follow(c, s.id, a)


async def _send_and_follow(c: AsyncClient, sid: str, a: argparse.Namespace) -> Any:
    context = [parse_context_arg(spec) for spec in a.context]
    session = (await c.get_session(sid, limit=1)).session
    await c.attach(sid, since_seq=session.last_seq)
    sent = await c.send(sid, a.text, context=context, model=a.model)
    final = await follow_turn(c, sent.turn_id, echo=not a.json)
    if a.json:
        _print_json(final)
    if final is None or final.status != "complete":
        raise TurnFailed(final.error or final.status if final else "no reply")
    return None, None


async def cmd_attach(c: AsyncClient, a: argparse.Namespace) -> Any:
    sid = await resolve_session(c, a.session)
    await follow_session(c, sid, since_seq=a.since, as_json=a.json)
    return None, None


async def cmd_chat(c: AsyncClient, a: argparse.Namespace) -> Any:
    from .chat import run_chat

    sid = await resolve_session(c, a.session) if a.session else None
    await run_chat(c, sid, project_of(None))
    return None, None


async def cmd_daemon_status(c: AsyncClient, a: argparse.Namespace) -> Any:
    r = await c.status()
    return r, lambda: render.status_text(r)


async def cmd_daemon_stop(c: AsyncClient, a: argparse.Namespace) -> Any:
    status = await c.status()
    await c.shutdown()
    return {"stopped": status.pid}, lambda: f"stopped daemon (pid {status.pid})"


# --- parsing --------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print the result as JSON")
    p = argparse.ArgumentParser(prog="duologue", description="One conversation, any model.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, fn: Any, help_: str, needs_daemon: bool = True) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_, parents=[common], description=help_)
        sp.set_defaults(fn=fn, needs_daemon=needs_daemon)
        return sp

    d = add("daemon", None, "run the daemon in the foreground, or start|stop|status it")
    d.add_argument("action", nargs="?", choices=["start", "stop", "status"])
    d.add_argument("--emulator", action="store_true",
                   help="always use the offline provider emulator (by default it is used only "
                        "when no provider API key is configured)")

    sp = add("new", cmd_new, "create a session")
    sp.add_argument("--title")
    sp.add_argument("--model", help="model id, short name or auto")
    sp.add_argument("--project", help="project directory (default: the git root here)")
    sp.add_argument("--system", help="system prompt")
    sp = add("list", cmd_list, "list sessions, most recent first")
    sp.add_argument("--project", help="only this project's sessions ('.' for here)")
    sp.add_argument("--limit", type=int, default=50)
    sp = add("show", cmd_show, "print a session's transcript")
    sp.add_argument("session", help="id, unique id prefix, or 'last'")
    sp.add_argument("--since", type=int, default=0, help="only messages after this seq")
    sp.add_argument("--limit", type=int)
    sp = add("switch", cmd_switch, "switch a session's model")
    sp.add_argument("session")
    sp.add_argument("model", help="model id, short name or auto")
    sp.add_argument("--reason")
    sp = add("rename", cmd_rename, "rename a session")
    sp.add_argument("session")
    sp.add_argument("title")
    sp = add("rm", cmd_rm, "delete sessions")
    sp.add_argument("sessions", nargs="+")
    add("models", cmd_models, "list the model catalog")
    sp = add("tasks", cmd_tasks, "print a session's task list")
    sp.add_argument("session")
    sp = add("summaries", cmd_summaries, "the summaries that replaced older turns for small windows")
    sp.add_argument("session")
    sp = add("stats", cmd_stats, "per-model metrics since the daemon started")
    sp.add_argument("--model")
    for name, fn, help_ in (("send", cmd_send, "send a message to a session and stream the reply"),
                            ("ask", cmd_ask, "start a session with a question and stream the reply")):
        sp = add(name, fn, help_)
        if name == "send":
            sp.add_argument("session")
        sp.add_argument("text")
        sp.add_argument("--model", help="model for this turn (id, short name or auto)")
        sp.add_argument("--context", action="append", default=[], metavar="FILE[:START-END]",
                        help="attach a file (or a line range of it) as code context")
    sp = add("chat", cmd_chat, "chat in the terminal (most recent session of this project by default)")
    sp.add_argument("session", nargs="?")
    sp = add("attach", cmd_attach, "follow a session live (Ctrl-C to stop)")
    sp.add_argument("session")
    sp.add_argument("--since", type=int, help="replay events after this seq first")
    return p


async def _run(args: argparse.Namespace) -> int:
    async with AsyncClient(locate(), client_name="cli", emulator=_emulator_mode(args)) as client:
        if args.fn is None:
            fn = {"status": cmd_daemon_status, "stop": cmd_daemon_stop}[args.action]
        else:
            fn = args.fn
        value, text = await fn(client, args)
        if args.json and value is not None:
            _print_json(value)
        elif text is not None:
            print(text())
    return 0


def _emulator_mode(args: argparse.Namespace) -> EmulatorMode:
    """--emulator forces it; otherwise a daemon this command starts uses the emulator
    only when no provider key is configured (as the client library does)."""
    return True if getattr(args, "emulator", False) else "if-no-key"


def _daemon_command(args: argparse.Namespace) -> int:
    paths = locate()
    if args.action is None:
        os.execv(sys.executable, [sys.executable, "-m", "duologue.daemon", *daemon_args(_emulator_mode(args))])
    if args.action == "start":
        client = AsyncClient(paths, client_name="cli", emulator=_emulator_mode(args))
        was_running = client.daemon_running()

        async def start() -> int:
            async with client:
                status = await client.status()
            if args.json:
                _print_json(status)
            elif was_running:
                print(f"already running (pid {status.pid}); {render.status_text(status)}")
            else:
                print(render.status_text(status))
            return 0

        return asyncio.run(start())
    if args.action in ("stop", "status"):
        client = AsyncClient(paths, autostart=False)
        if not client.daemon_running():
            if args.json:
                _print_json({"running": False})
            else:
                print("no daemon is running")
            return 0 if args.action == "stop" else EXIT_NO_DAEMON
        args.fn = None
    return asyncio.run(_run(args))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "daemon":
            return _daemon_command(args)
        return asyncio.run(_run(args))
    except RpcError as exc:
        print(f"duologue: {exc.message}", file=sys.stderr)
        return EXIT_ERROR
    except TurnFailed as exc:
        print(f"duologue: the turn did not complete: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except (UsageError, ContextArgError) as exc:
        print(f"duologue: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except DaemonUnavailable as exc:
        print(f"duologue: {exc}", file=sys.stderr)
        return EXIT_NO_DAEMON
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
