"""The `duologue` command: a thin shell over the client library.

Every subcommand accepts ``--json`` for scripts (the result as the protocol encodes
it) and prints readable text otherwise. Failures print one line on stderr and exit
non-zero: 1 for an error the daemon reported, 2 for bad usage, 3 when no daemon is
reachable.

A command that makes its requests and prints (``list``, ``show``, ``new``, ``daemon
status``, most of them) runs on the blocking client, whose calls finish without an
event loop: such a process never imports asyncio, nor the chat's Textual, the language
server's pygls, the importers or a provider SDK, and starts about as fast as the
libraries it needs (msgspec, pyzmq, argparse) take to import: it skips the
interpreter's teardown at exit (:func:`exit_quickly`; bench/resources.py measures
``duologue list``). The commands that
follow live events (``send``, ``ask``, ``attach``, ``chat``) run on the async client.
Every command is written once against :class:`~.rpc.calls.Calls`, which both clients
offer.
"""

from __future__ import annotations

import argparse
import atexit
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, get_args

import msgspec

from duologue.protocol import methods as m
from duologue.protocol.errors import RpcError
from duologue.protocol.paths import locate

from . import render
from .code_context import ContextArgError, parse_context_arg
from .confirm import NotConfirmed, confirm_removal
from .where import paths_report, paths_text
from .rpc.calls import Calls
from .rpc.launcher import DaemonUnavailable, EmulatorMode, daemon_args, daemon_running
from .rpc.project import project_of
from .rpc.sync_client import Client, run_in_one_step

if TYPE_CHECKING:
    from . import importers
    from .rpc.client import AsyncClient

Command = Callable[[Any, argparse.Namespace], Awaitable[Any]]
"""A command: given a client (:class:`Calls`, or AsyncClient for those that follow
events) and the parsed arguments, the value to print as JSON and a function giving
its text, or (None, None) when it printed already."""

EXIT_ERROR, EXIT_USAGE, EXIT_NO_DAEMON = 1, 2, 3


class UsageError(Exception):
    pass


class Refused(Exception):
    """The command would destroy something of the user's; it changed nothing."""


class TurnFailed(Exception):
    """The reply did not complete; what was kept is in the session."""


def _print_json(value: Any) -> None:
    sys.stdout.write(msgspec.json.format(msgspec.json.encode(value)).decode() + "\n")


async def resolve_session(client: Calls, ref: str) -> str:
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


async def cmd_new(c: Calls, a: argparse.Namespace) -> Any:
    s = await c.create_session(project_id=project_of(a.project), title=a.title, model=a.model,
                               system_prompt=a.system)
    return s, lambda: f"{s.id}  {s.title}  ({s.current_model})"


async def cmd_list(c: Calls, a: argparse.Namespace) -> Any:
    project = project_of(a.project) if a.project else None
    r = await c.list_sessions(project_id=project, limit=a.limit)
    return r, lambda: "\n".join(render.session_line(s) for s in r.sessions) or "no sessions"


async def cmd_show(c: Calls, a: argparse.Namespace) -> Any:
    sid = await resolve_session(c, a.session)
    r = (await c.get_session(sid, since_seq=a.since, limit=a.limit) if a.limit
         else await c.whole_session(sid, since_seq=a.since))
    return r, lambda: render.transcript(r)


async def cmd_switch(c: Calls, a: argparse.Namespace) -> Any:
    r = await c.switch_model(await resolve_session(c, a.session), a.model, a.reason)
    text = (render.switch_line(r.switch) if r.switch else f"already on {r.session.current_model}")
    return r, lambda: text


async def cmd_rename(c: Calls, a: argparse.Namespace) -> Any:
    s = await c.rename_session(await resolve_session(c, a.session), a.title)
    return s, lambda: f"{s.id}  {s.title}"


async def cmd_rm(c: Calls, a: argparse.Namespace) -> Any:
    """Deletion is for good (the daemon keeps no copy): asked on a terminal, refused
    elsewhere without --yes, and the question says how to keep a copy first."""
    ids = list(dict.fromkeys([await resolve_session(c, ref) for ref in a.sessions]))
    sessions = [(await c.get_session(sid, limit=1)).session for sid in ids]
    try:
        confirm_removal(sessions, yes=a.yes)
    except NotConfirmed as exc:
        raise UsageError(str(exc)) from None
    for sid in ids:
        await c.delete_session(sid)
    return {"deleted": ids}, lambda: "\n".join(f"deleted {sid}" for sid in ids)


async def cmd_models(c: Calls, a: argparse.Namespace) -> Any:
    if a.refresh:
        r = await c.call("models/refresh", m.RefreshParams(provider=a.provider))
    else:
        r = await c.list_models()
    return r, lambda: models_text(r)


def models_text(r: m.ModelsResult) -> str:
    """The catalog as a table; a model that cannot be used, is retiring or that its
    provider did not list is marked on its row and explained below the table."""
    rows = [f"{'SHORT':<10}{'ID':<24}{'TIER':<10}{'WINDOW':>10}{'OUT':>9}  {'$ IN/OUT/CACHE':<18}{'THINKING':<18}STATE"]
    notes = []
    for mi in r.models:
        p = mi.pricing
        cache = f"{p.cache_read_per_mtok:g}" if p.cache_read_per_mtok is not None else f"{p.input_per_mtok * 0.1:g}"
        price = f"{p.input_per_mtok:g}/{p.output_per_mtok:g}/{cache}" + ("+" if p.tiers else "")
        thinking = "-" if mi.thinking == "none" else f"{mi.thinking} ({mi.thinking_control})"
        state, note = _model_state(mi, r.retires_at.get(mi.id))
        if note:
            notes.append(f"  {mi.id}: {note}")
        mark = "*" if mi.id == r.default_model else " "
        rows.append(f"{mi.short_name:<10}{mi.id:<24}{mi.tier:<10}{mi.context_window:>10,}{mi.max_output_tokens:>9,}  "
                    f"{price:<18}{thinking:<18}{state}{mark}".rstrip())
    rows.append("* default   $ per Mtok: input / output (thinking included) / cache read; "
                "+ higher above a prompt size")
    tiers = [f"  {mi.id}: above {t.above_tokens:,} prompt tokens {t.input_per_mtok:g}/{t.output_per_mtok:g}"
             for mi in r.models for t in mi.pricing.tiers]
    rows += tiers + notes
    for x in r.listings:
        when = f"listed {x.models} models at {x.fetched_at:%Y-%m-%d %H:%M} UTC" if x.fetched_at else "never listed"
        rows.append(f"{x.provider}: {when}" + (f"; last attempt failed: {x.error}" if x.error else ""))
    return "\n".join(rows)


def _model_state(mi: Any, retires_at: Any) -> tuple[str, str | None]:
    if mi.lifecycle == "retired":
        return "retired", "retired by its provider: requests naming it fail; pick another model"
    if mi.lifecycle == "unlisted":
        return "unlisted", f"{mi.provider}'s models endpoint does not list it for this key"
    if not mi.available:
        return "unavailable", None
    if mi.lifecycle == "deprecated":
        when = f" on {retires_at:%Y-%m-%d}" if retires_at else ""
        return "retiring", f"deprecated: its provider retires it{when or ' soon'}"
    return "", None


async def cmd_tasks(c: Calls, a: argparse.Namespace) -> Any:
    t = await c.list_tasks(await resolve_session(c, a.session))
    return t, lambda: render.tasks_text(t)


async def cmd_summaries(c: Calls, a: argparse.Namespace) -> Any:
    r = await c.summaries(await resolve_session(c, a.session))
    return r, lambda: "\n\n".join(render.summary_text(x) for x in r) or "no summaries"


async def cmd_sync(c: Calls, a: argparse.Namespace) -> Any:
    r = await c.sync_status()
    return r, lambda: sync_text(r)


def sync_text(r: m.SyncStatusResult) -> str:
    """Replication at a glance: the link, then each session not in sync and why."""
    if not r.configured:
        return "sync is off: no [sync] in the config file; nothing leaves this machine"
    state = "connected" if r.connected else f"NOT connected: {r.error or 'connecting'}"
    lines = [f"{r.device_name} -> {r.server}: {state}",
             f"following: {r.follow_lag} message(s) behind; leases held: {len(r.leases)}"]
    for row in r.sessions:
        why = [f"{row.unpublished} change(s) not published"] if row.unpublished else []
        if row.diverged_after_seq is not None:
            why.append(f"diverged after seq {row.diverged_after_seq}")
        if row.missing_after_seq is not None:
            why.append(f"this store lacks seqs up to {row.missing_after_seq}")
        if row.lease_lost is not None:
            why.append(f"writer lease lost ({row.lease_lost})")
        lines.append(f"  {row.session_id}: {'; '.join(why)}")
    if not r.sessions:
        lines.append("every session is in sync")
    return "\n".join(lines)


async def cmd_stats(c: Calls, a: argparse.Namespace) -> Any:
    r = await c.metrics(a.model)
    return r, lambda: stats_text(r)


def stats_text(r: m.MetricsResult) -> str:
    """The metrics table, each row followed by its dollars as billed: input, output
    (with the thinking tokens in it), cache reads and cache writes. From a daemon on
    the emulator the cost column says so instead of showing dollars nobody spent."""
    if not r.models:
        return "no turns yet"
    cost = (lambda x: "emulator") if r.emulator else (lambda x: f"{x.cost_usd:.4f}")
    rows = [f"{'MODEL':<26}{'REQ':>5}{'ERR%':>7}{'TTFT p50/p95 ms':>18}{'TOTAL p50/p95 ms':>19}"
            f"{'TOK IN/OUT':>16}{'CACHE R/W':>16}{'COST $':>10}{'SW':>4}{'FO':>4}"]
    for x in r.models + r.providers:
        writes = x.cache_write_tokens + x.cache_write_1h_tokens
        rows.append(f"{x.name:<26}{x.requests:>5}{x.error_rate * 100:>6.1f}%{_ms_pair(x.ttft):>18}"
                    f"{_ms_pair(x.latency):>19}{f'{x.input_tokens}/{x.output_tokens}':>16}"
                    f"{f'{x.cache_read_tokens}/{writes}':>16}{cost(x):>10}{x.switches_to:>4}{x.failovers_from:>4}")
        if not r.emulator and (x.cost_usd or x.cache_read_tokens or writes):
            rows.append("    " + _cost_line(x))
        if x.errors:
            rows.append("    errors: " + ", ".join(f"{k} {v}" for k, v in sorted(x.errors.items())))
    if r.emulator:
        rows.append("the replies came from the offline provider emulator: nothing was billed")
    return "\n".join(rows)


def _ms_pair(p: m.Percentiles) -> str:
    return "-" if p.p50_ms is None else f"{p.p50_ms:.0f}/{p.p95_ms:.0f}"


def _cost_line(x: m.ModelMetrics) -> str:
    parts = [f"input {render.format_cost(x.input_cost_usd)}",
             f"output {render.format_cost(x.output_cost_usd)}"
             + (f" ({x.thinking_tokens:,} thinking tok)" if x.thinking_tokens else "")]
    if x.cache_read_tokens or x.cache_read_cost_usd:
        parts.append(f"cache read {render.format_cost(x.cache_read_cost_usd)} ({x.cache_read_tokens:,} tok)")
    writes = x.cache_write_tokens + x.cache_write_1h_tokens
    if writes or x.cache_write_cost_usd:
        split = f", {x.cache_write_1h_tokens:,} of them 1h" if x.cache_write_1h_tokens else ""
        parts.append(f"cache write {render.format_cost(x.cache_write_cost_usd)} ({writes:,} tok{split})")
    return f"{render.format_cost(x.cost_usd)} = " + " + ".join(parts)


def prompt_text(text: str) -> str:
    """The prompt as given, or all of standard input for ``-`` (a file, a paste, a
    pipe: ``git diff | duologue ask -``)."""
    if text != "-":
        return text
    read = sys.stdin.read()
    if not read.strip():
        raise UsageError("the prompt is `-` but standard input was empty; pipe the prompt in, or give it as text")
    return read


async def cmd_send(c: AsyncClient, a: argparse.Namespace) -> Any:
    sid = await resolve_session(c, a.session)
    return await _send_and_follow(c, sid, a)


async def cmd_ask(c: AsyncClient, a: argparse.Namespace) -> Any:
    # the daemon titles the session from this first exchange, as for every client
    s = await c.create_session(project_id=project_of(None), model=a.model)
    return await _send_and_follow(c, s.id, a)


async def _send_and_follow(c: AsyncClient, sid: str, a: argparse.Namespace) -> Any:
    from .follow import follow_turn
    from .rpc.session_events import SessionEvents

    context = [parse_context_arg(spec) for spec in a.context]  # a bad one sends nothing
    text = prompt_text(a.text)
    session = (await c.get_session(sid, limit=1)).session
    events = SessionEvents(c)
    await events.attach(sid, since_seq=session.last_seq)
    sent = await c.send(sid, text, context=context, model=a.model, thinking=a.thinking)
    final = await follow_turn(events, sid, sent.turn_id, echo=not a.json)
    if a.json:
        _print_json(final)
    if final is None or final.status != "complete":
        raise TurnFailed(final.error or final.status if final else "no reply")
    return None, None


async def cmd_attach(c: AsyncClient, a: argparse.Namespace) -> Any:
    from .follow import follow_session

    sid = await resolve_session(c, a.session)
    await follow_session(c, sid, since_seq=a.since, as_json=a.json)
    return None, None


async def cmd_chat(c: AsyncClient, a: argparse.Namespace) -> Any:
    sid = await resolve_session(c, a.session) if a.session else None
    if a.project and not Path(a.project).is_dir():
        raise UsageError(f"--project {a.project}: no such directory")
    project = project_of(a.project)
    if a.plain or not (sys.stdin.isatty() and sys.stdout.isatty()):
        from .chat import run_chat  # piped input (scripts, tests) reads lines
        await run_chat(c, sid, project)
    else:
        from .tui import run_tui
        await run_tui(c, sid, project)
    return None, None


async def cmd_daemon_status(c: Calls, a: argparse.Namespace) -> Any:
    r = await c.status()
    return r, lambda: render.status_text(r)


async def cmd_daemon_stop(c: Calls, a: argparse.Namespace) -> Any:
    status = await c.status()
    await c.shutdown()
    return {"stopped": status.pid}, lambda: f"stopped daemon (pid {status.pid})"


async def cmd_import(c: Calls, a: argparse.Namespace) -> Any:
    if a.undo:
        u = await c.undo_import(a.undo)
        return u, lambda: (f"undid batch {u.batch_id}: deleted {len(u.deleted_sessions)} sessions, cut back "
                           f"{len(u.truncated_sessions)}, removed {u.removed_messages} messages"
                           + (f" ({len(u.already_gone)} sessions were already deleted)" if u.already_gone else ""))
    if a.list:
        batches = await c.list_imports()
        return {"batches": batches}, lambda: "\n".join(render_batch(b) for b in batches) or "no import batches"
    from . import importers  # only `import` reads other tools' files; the rest starts faster

    report = importers.ParseReport()
    sessions = importers.load(_import_roots(a), report, source=a.source, project_of=project_of,
                              known_projects=[os.getcwd(), project_of(None)])
    main = [s for s in sessions if "parent_external_id" not in s.metadata]
    if a.merge and len(main) > 1:  # subagents stay sessions of their own
        sessions = [importers.merge(main), *(s for s in sessions if "parent_external_id" in s.metadata)]
    pieces: dict[str, list[Any]] = {}
    batch_id = None
    chunks = importers.requests(sessions, report)
    try:
        for i, chunk in enumerate(chunks):
            r = await c.import_sessions(chunk, dry_run=a.dry_run, batch_id=batch_id,
                                        more=i < len(chunks) - 1 and not a.dry_run)
            batch_id = batch_id or r.batch_id
            for x in r.sessions:
                pieces.setdefault(x.external_id, []).append(x)
    except RpcError as exc:
        # The daemon undid the batch (a batch lands whole or not at all).
        raise RpcError(exc.code, f"{exc.message}; nothing was imported", exc.data) from None
    result = _import_summary(a.dry_run, batch_id, pieces, report)
    return result, lambda: render_import(result)


def _import_roots(a: argparse.Namespace) -> list[Path]:
    if a.paths:
        roots = [Path(p).expanduser() for p in a.paths]
        missing = [str(r) for r in roots if not r.exists()]
        if missing:
            raise UsageError(f"no such file or directory: {', '.join(missing)}")
        return roots
    from . import importers

    defaults = importers.default_paths(a.source)
    roots = [r for r in defaults if r.exists()]
    if not roots:
        raise UsageError(f"found no history in {' or '.join(str(r) for r in defaults)}; give a PATH")
    return roots


def _import_summary(dry_run: bool, batch_id: str | None, pieces: dict[str, list[Any]],
                    report: importers.ParseReport) -> dict[str, Any]:
    """The results of every request, one row per session (a big one came in pieces)."""
    rows = []
    for ext, parts in pieces.items():
        actions = {x.action for x in parts}
        action = "create" if "create" in actions else "append" if "append" in actions else "skip"
        rows.append({"external_id": ext, "title": parts[0].title, "action": action,
                     "session_id": next((x.session_id for x in parts if x.session_id), None),
                     "messages": sum(x.messages for x in parts),
                     "skipped_messages": sum(x.skipped_messages for x in parts)})
    created_messages = sum(r["messages"] for r in rows)
    return {"dry_run": dry_run, "batch_id": None if dry_run or not created_messages else batch_id,
            "created_sessions": sum(r["action"] == "create" for r in rows),
            "appended_sessions": sum(r["action"] == "append" for r in rows),
            "skipped_sessions": sum(r["action"] == "skip" for r in rows),
            "created_messages": created_messages,
            "skipped_messages": sum(r["skipped_messages"] for r in rows),
            "sessions": rows, "parse": report.to_json()}


def render_import(r: dict[str, Any]) -> str:
    verb = ("would create", "would append to", "would skip") if r["dry_run"] else ("created", "appended to", "skipped")
    lines = [("dry run, nothing changed: " if r["dry_run"] else "")
             + f"{verb[0]} {r['created_sessions']} sessions, {verb[1]} {r['appended_sessions']}, "
             f"{r['created_messages']} messages; {verb[2]} {r['skipped_sessions']} sessions and "
             f"{r['skipped_messages']} messages imported before"]
    for row in r["sessions"]:
        if row["action"] != "skip":
            lines.append(f"  {row['action']:<7}{row['title'][:50]:<52}{row['messages']:>5} msgs  {row['external_id']}")
    p = r["parse"]
    lines.append(f"read {p['files']} files: {p['sessions']} sessions, {p['messages']} messages")
    if p["skipped"]:
        lines.append("not imported (by kind): " + ", ".join(f"{n} {k}" for k, n in p["skipped"].items()))
    if p["problems"]:
        lines.append(f"{len(p['problems'])} problems (skipped, the rest was imported):")
        lines += [f"  {x['path']}{':' + x['where'] if x['where'] else ''}: {x['what']}" for x in p["problems"][:50]]
        if len(p["problems"]) > 50:
            lines.append(f"  … and {len(p['problems']) - 50} more (--json lists them all)")
    if r["batch_id"]:
        lines.append(f"batch {r['batch_id']}; undo with: duologue import --undo {r['batch_id']}")
    return "\n".join(lines)


def render_batch(b: Any) -> str:
    return (f"{b.id}  {b.created_at:%Y-%m-%d %H:%M}  {','.join(b.sources):<24} "
            f"{len(b.created_sessions)} created, {len(b.appended_sessions)} appended, {b.messages} messages")


async def cmd_export(c: Calls, a: argparse.Namespace) -> Any:
    doc = await c.export_session(await resolve_session(c, a.session))
    if a.format in ("claude-code", "gemini-cli"):
        from . import handback

        try:
            said = handback.hand_back(doc, a.format, a.output)
        except handback.Refused as exc:
            raise Refused(str(exc)) from None
        return said, lambda: f"wrote {said['wrote']}; {said['continue']}"
    if a.json or a.format == "json":
        text = msgspec.json.format(msgspec.json.encode(doc)).decode() + "\n"
    else:
        from .markdown import export_markdown

        text = export_markdown(doc)
    if a.output:
        Path(a.output).write_text(text, encoding="utf-8")
        return {"wrote": a.output}, lambda: f"wrote {a.output}"
    sys.stdout.write(text)
    return None, None


def _db_command(args: argparse.Namespace) -> int:
    """Store maintenance runs in the daemon package, as a process of its own."""
    import subprocess

    argv = [sys.executable, "-m", "duologue.daemon", "db", args.action]
    argv += [args.backup] if args.backup else []
    argv += ["--json"] if args.json else []
    return subprocess.run(argv).returncode


# --- parsing --------------------------------------------------------------------------


class _Formatter(argparse.HelpFormatter):
    """argparse's formatter, sized without shutil. argparse makes a formatter for every
    argument it adds (to check its metavar), and each measures the terminal with
    ``shutil.get_terminal_size``: importing shutil for it cost a tenth of what the
    interpreter does to start. The same rule, with ``os`` alone: $COLUMNS, else the
    terminal on stdout, else 80."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, width=_terminal_columns() - 2)


def _terminal_columns() -> int:
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


class _NotBuilt:
    """Stands for a subcommand's parser that :func:`build_parser` leaves out."""

    def add_argument(self, *args: Any, **kwargs: Any) -> None:
        pass


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The command line. With ``only`` (the command the arguments name), only that
    subcommand's parser is built: each costs argparse some filesystem lookups for its
    translations, and building all twenty cost a one-shot command more than importing
    the rest of our code. Every subcommand is built when ``only`` is None or names none
    of them, so help and errors list them all."""
    built: list[str] = []
    p = argparse.ArgumentParser(prog="duologue", description="One conversation, any model.",
                                formatter_class=_Formatter)
    # prog given, argparse does not lay out a usage line just to name their parent.
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND", prog=p.prog)

    def add(name: str, fn: Command | None, help_: str, *, follows: bool = False) -> Any:
        """A subcommand; ``follows``: it reads live events, so it runs on the async client."""
        if only is not None and name != only:
            return _NotBuilt()
        built.append(name)
        sp = sub.add_parser(name, help=help_, description=help_, formatter_class=_Formatter)
        sp.add_argument("--json", action="store_true", help="print the result as JSON")
        sp.set_defaults(fn=fn, follows=follows)
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
    sp.add_argument("--limit", type=int, help=f"only the first N messages (1 to {m.MAX_PAGE_MESSAGES})")
    sp = add("switch", cmd_switch, "switch a session's model")
    sp.add_argument("session")
    sp.add_argument("model", help="model id, short name or auto")
    sp.add_argument("--reason")
    sp = add("rename", cmd_rename, "rename a session")
    sp.add_argument("session")
    sp.add_argument("title")
    sp = add("rm", cmd_rm, "delete sessions for good (asks first on a terminal)")
    sp.add_argument("sessions", nargs="+")
    sp.add_argument("--yes", "-y", action="store_true",
                    help="delete without asking (needed when not on a terminal)")
    sp = add("models", cmd_models, "list the model catalog")
    sp.add_argument("--refresh", action="store_true",
                    help="read the providers' models endpoints now (lifecycle, limits, thinking)")
    sp.add_argument("--provider", help="with --refresh: only this provider (a name `duologue status` lists)")
    sp = add("tasks", cmd_tasks, "print a session's task list")
    sp.add_argument("session")
    sp = add("summaries", cmd_summaries, "the summaries that replaced older turns for small windows")
    sp.add_argument("session")
    sp = add("sync", cmd_sync, "replication through NATS: `duologue sync status`")
    sp.add_argument("action", choices=["status"])
    sp = add("stats", cmd_stats, "per-model metrics since the daemon started")
    sp.add_argument("--model")
    for name, fn, help_ in (("send", cmd_send, "send a message to a session and stream the reply"),
                            ("ask", cmd_ask, "start a session with a question and stream the reply")):
        sp = add(name, fn, help_, follows=True)
        if name == "send":
            sp.add_argument("session")
        sp.add_argument("text", help="the prompt; - reads it from standard input")
        sp.add_argument("--model", help="model for this turn (id, short name or auto)")
        sp.add_argument("--thinking", choices=["off", "low", "medium", "high", "max"],
                        help="more or less thinking for this turn, where the model allows it")
        sp.add_argument("--context", action="append", default=[], metavar="FILE[:START-END]",
                        help="attach a file (or a line range of it) as code context")
    sp = add("chat", cmd_chat, "chat in the terminal (most recent session of this project by default)",
             follows=True)
    sp.add_argument("session", nargs="?")
    sp.add_argument("--plain", action="store_true", help="the line-based chat even on a terminal")
    sp.add_argument("--project", help="chat about this project directory (default: the git root here)")
    sp = add("lsp", None, "run the language server on stdin/stdout (for editors)")
    sp.add_argument("--emulator", action="store_true", help="when starting the daemon, use the emulator")
    sp.add_argument("--emulator-if-no-key", action="store_true",
                    help="when starting the daemon, use the emulator if no API key is configured")
    sp = add("acp", None, "run an Agent Client Protocol agent on stdin/stdout (Zed, JetBrains...)")
    sp.add_argument("--emulator", action="store_true", help="when starting the daemon, use the emulator")
    sp = add("attach", cmd_attach, "follow a session live (Ctrl-C to stop)", follows=True)
    sp.add_argument("session")
    sp.add_argument("--since", type=int, help="replay events after this seq first")
    sp = add("import", cmd_import, "import sessions from Claude Code, Gemini CLI or a duologue export")
    sp.add_argument("paths", nargs="*", metavar="PATH",
                    help="files or directories (default: ~/.claude/projects and ~/.gemini/tmp)")
    sp.add_argument("--from", dest="source", choices=get_args(m.ImportSource), help="only this tool's files")
    sp.add_argument("--dry-run", action="store_true", help="report what would be created; change nothing")
    sp.add_argument("--merge", action="store_true",
                    help="make one session of everything found (work done partly in each tool)")
    sp.add_argument("--undo", metavar="BATCH", help="remove exactly what that import batch created")
    sp.add_argument("--list", action="store_true", help="list the import batches")
    sp = add("export", cmd_export, "write a session as Markdown, JSON (schemas/ExportDocument.json), "
                                   "or a Claude Code or Gemini CLI session to continue there")
    sp.add_argument("session", help="id, unique id prefix, or 'last'")
    sp.add_argument("--format", choices=["md", "json", "claude-code", "gemini-cli"], default="md",
                    help="claude-code / gemini-cli: a session file in that tool's own folder, to resume there")
    sp.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout (or the tool's folder)")
    add("paths", None, "where duologue keeps its store, log, config and socket (to back up or uninstall)")
    sp = add("db", None, "the store: status, check (read every page), backup, rollback [BACKUP] "
                         "(rollback needs the daemon stopped)")
    sp.add_argument("action", choices=["status", "check", "backup", "rollback"])
    sp.add_argument("backup", nargs="?", help="rollback: a backup name or unique prefix (default: the newest)")
    return p if built else build_parser()


def _run(args: argparse.Namespace) -> int:
    """Run the command on the blocking client, or on the async client in an event
    loop when it follows live events."""
    fn = args.fn or {"status": cmd_daemon_status, "stop": cmd_daemon_stop}[args.action]
    if args.follows:
        import asyncio

        return asyncio.run(_run_following(fn, args))
    with Client(locate(), client_name="cli", emulator=_emulator_mode(args)) as client:
        _print_result(args, *run_in_one_step(fn(client.coroutines, args)))
    return 0


async def _run_following(fn: Command, args: argparse.Namespace) -> int:
    from .rpc.client import AsyncClient

    async with AsyncClient(locate(), client_name="cli", emulator=_emulator_mode(args)) as client:
        _print_result(args, *await fn(client, args))
    return 0


def _print_result(args: argparse.Namespace, value: Any, text: Callable[[], str] | None) -> None:
    if args.json and value is not None:
        _print_json(value)
    elif text is not None:
        print(render.terminal_safe(text()))


def _emulator_mode(args: argparse.Namespace) -> EmulatorMode:
    """--emulator forces it; otherwise a daemon this command starts uses the emulator
    only when no provider key is configured (as the client library does)."""
    return True if getattr(args, "emulator", False) else "if-no-key"


def _daemon_command(args: argparse.Namespace) -> int:
    paths = locate()
    if args.action is None:
        os.execv(sys.executable, [sys.executable, "-m", "duologue.daemon", *daemon_args(_emulator_mode(args))])
    if args.action == "start":
        was_running = daemon_running(paths)
        with Client(paths, client_name="cli", emulator=_emulator_mode(args)) as client:
            status = client.status()
        if args.json:
            _print_json(status)
        elif was_running:
            print(f"already running (pid {status.pid}); {render.status_text(status)}")
        else:
            print(render.status_text(status))
        return 0
    if not daemon_running(paths):
        if args.json:
            _print_json({"running": False})
        else:
            print("no daemon is running")
        return 0 if args.action == "stop" else EXIT_NO_DAEMON
    args.fn = None
    return _run(args)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv[0] if argv and not argv[0].startswith("-") else None).parse_args(argv)
    try:
        if args.command == "daemon":
            return _daemon_command(args)
        if args.command == "db":
            return _db_command(args)
        if args.command == "paths":
            report = paths_report(locate())
            if args.json:
                _print_json(report)
            else:
                print(paths_text(report))
            return 0
        if args.command == "acp":
            from .acp.stdio import main as serve_acp

            return serve_acp(emulator=_emulator_mode(args))
        if args.command == "lsp":
            from .lsp.server import main as serve_lsp

            return serve_lsp(emulator=_emulator_mode(args))
        return _run(args)
    except RpcError as exc:
        print(f"duologue: {render.terminal_safe(exc.message)}", file=sys.stderr)
        return EXIT_ERROR
    except TurnFailed as exc:
        print(f"duologue: the turn did not complete: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except Refused as exc:
        print(f"duologue: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except (UsageError, ContextArgError) as exc:
        print(f"duologue: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except DaemonUnavailable as exc:
        print(f"duologue: {exc}", file=sys.stderr)
        return EXIT_NO_DAEMON
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`duologue attach | head`): stop quietly, and keep
        # Python from reporting the same broken pipe again when it flushes at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_ERROR


def run() -> NoReturn:
    """The ``duologue`` command: :func:`main`, then :func:`exit_quickly`."""
    exit_quickly(main())


def exit_quickly(code: int) -> NoReturn:
    """End the process without the interpreter's teardown.

    Tearing down frees every loaded module's objects one by one; for a short command
    that took longer than the command's own work (about 18 ms of a 108 ms ``duologue
    list``, bench/resources.py), and the kernel takes the memory back at once anyway.
    What an exit must do is still done, in the same order: the standard streams are
    flushed, then the ``atexit`` functions run (coverage saves its data there). While
    another Python thread still runs, the ordinary exit waits for it as it always has."""
    threading = sys.modules.get("threading")
    if threading is not None and threading.active_count() > 1:
        sys.exit(code)
    for stream in (sys.stdout, sys.stderr):
        if stream is None or stream.closed:  # the language server closes stdout itself
            continue
        try:
            stream.flush()
        except BrokenPipeError:  # the reader went away: what it did not read is not ours to keep
            code = code or EXIT_ERROR
    atexit._run_exitfuncs()
    os._exit(code)


if __name__ == "__main__":
    run()
