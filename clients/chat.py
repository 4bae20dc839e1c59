"""`duologue chat`: a line-based terminal chat attached to the daemon like any client.

It opens the given session, or the most recent one of the current project, or a new
one; prints the recent transcript; then reads lines. Plain lines are sent to the
session; lines starting with ``/`` are commands (``/help`` lists them). Events from
other clients attached to the same session are printed as they arrive, so a person
sees what an editor sent; after a daemon restart they go on from where they stopped.
When the daemon runs on the emulator it says so, loudly.
"""

from __future__ import annotations

import asyncio
import sys

import msgspec

from duologue.protocol import methods as m
from duologue.protocol.entities import Message
from duologue.protocol.errors import RpcError

from . import render
from .chat_commands import commands, help_lines, usage
from .exchanges import context_of, cost_by_model, cost_text, last_prompt, last_reply
from .rpc.client import AsyncClient, DaemonUnavailable, Disconnected
from .code_context import parse_context_arg
from .follow import _Printer
from .rpc.session_events import Resumed, SessionEvents, Unfollowed

HELP = "commands:\n" + "\n".join(f"  {line}" for line in help_lines("line"))


def find_text(messages: list[Message], query: str) -> str:
    """The messages holding ``query`` (case ignored), one line each around the first match."""
    needle = query.casefold()
    lines = []
    for msg in messages:
        at = msg.text.casefold().find(needle)
        if at < 0:
            continue
        start, end = max(at - 30, 0), at + len(query) + 50
        snippet = render.one_line(msg.text[start:end])
        who = "you" if msg.role == "user" else (msg.model or "assistant")
        lines.append(f"#{msg.seq} {who}: {'…' if start else ''}{snippet}{'…' if end < len(msg.text) else ''}")
    if not lines:
        return f"/find: {query!r} is in none of the {len(messages)} messages"
    return "\n".join([*lines, f"{len(lines)} of {len(messages)} messages hold {query!r}"])


def emulator_banner(providers: list[m.ProviderStatus]) -> str:
    return ("*** EMULATOR: no API key is configured, so replies come from duologue's offline "
            f"provider emulator, not a real model. {render.key_hint(providers)} "
            "and restart the daemon (`duologue daemon stop`) for real replies. ***")


def _say(text: str) -> None:
    print(render.terminal_safe(text))


class Chat:
    def __init__(self, client: AsyncClient, project: str):
        self.client = client
        self.project = project
        self.session_id = ""
        self.events = SessionEvents(client)
        self.printer = _Printer()
        self.turn_done: dict[str, asyncio.Event] = {}
        self.wait_for_replies = not sys.stdin.isatty()
        """Piped input waits for each reply before the next line; a person need not."""

    async def _send(self, text: str, **kwargs: object) -> None:
        sent = await self.client.send(self.session_id, text, **kwargs)
        if self.wait_for_replies:
            done = self.turn_done.setdefault(sent.turn_id, asyncio.Event())
            await done.wait()

    async def open(self, session_id: str | None) -> None:
        if self.session_id:
            await self.events.detach(self.session_id)
        if session_id is None:
            page = await self.client.list_sessions(project_id=self.project, limit=1)
            session_id = page.sessions[0].id if page.sessions else (
                await self.client.create_session(project_id=self.project)).id
        got = await self.client.latest(session_id, 10)
        self.session_id = got.session.id
        tail = msgspec.structs.replace(got, switches=[
            w for w in got.switches if not got.messages or w.seq >= got.messages[0].seq])
        _say(render.transcript(tail))
        _say("(type /help for commands)")
        self.printer = _Printer()
        await self.events.attach(self.session_id, since_seq=got.session.last_seq)

    async def command(self, line: str) -> bool:
        """Run one input line; False when the user leaves."""
        word, _, rest = line.partition(" ")
        rest = rest.strip()
        c = self.client
        if not line.startswith("/"):
            await self._send(line)
        elif not rest and usage(word, "line"):
            _say(f"{usage(word, 'line')}; /help lists every command")
        elif word in ("/quit", "/exit", "/q"):
            return False
        elif word == "/help":
            _say(HELP)
        elif word == "/switch" and rest:
            await c.switch_model(self.session_id, rest)
        elif word == "/models":
            r = await c.list_models()
            _say(render.models_table(r.models, r.default_model))
        elif word == "/tasks":
            _say(render.tasks_text(await c.list_tasks(self.session_id)))
        elif word == "/cancel":
            await c.cancel(self.session_id)
        elif word == "/context" and rest:
            spec, _, text = rest.partition(" ")
            await self._send(text, context=[parse_context_arg(spec)])
        elif word == "/new":
            s = await c.create_session(project_id=self.project, title=rest or None)
            await self.open(s.id)
        elif word == "/sessions":
            page = await c.list_sessions(project_id=self.project)
            _say("\n".join(render.session_line(s) for s in page.sessions))
        elif word == "/open" and rest:
            await self.open(rest)
        elif word == "/show":
            _say(render.transcript(await c.whole_session(self.session_id)))
        elif word in ("/cost", "/retry", "/copy", "/find"):
            await self._about_exchanges(word, rest)
        elif word in commands("app"):
            _say(f"{word} works in the full-screen chat only; /help lists this one's")
        else:
            _say(f"unknown command {line!r}; /help lists them")
        return True

    async def _about_exchanges(self, word: str, rest: str) -> None:
        """The commands that read the session's messages (all of them: the line chat
        keeps none), as the full-screen chat's do."""
        c = self.client
        messages = (await c.whole_session(self.session_id)).messages
        if word == "/cost":
            catalog = {info.id: info.short_name for info in (await c.list_models()).models}
            emulator = (await c.status()).emulator
            _say(cost_text(cost_by_model(messages), lambda model: catalog.get(model or "", model or "-"), emulator))
        elif word == "/retry":
            prompt = last_prompt(messages)
            if prompt is None:
                _say("/retry: no prompt to send again in this session yet")
            else:
                await self._send(prompt.text, **({"context": context_of(prompt)} if context_of(prompt) else {}))
        elif word == "/copy":
            reply = last_reply(messages)
            if reply is None:
                _say("/copy: no reply to copy yet")
            elif not sys.stdout.isatty():
                _say("/copy: the clipboard is the terminal's (OSC 52), and this output is not a terminal")
            else:
                sys.stdout.write(render.osc52(reply.text))
                _say(f"copied the last reply ({len(reply.text):,} characters) to the clipboard through the "
                     "terminal (OSC 52; some terminals need it allowed)")
        else:
            _say(find_text(messages, rest))

    async def print_events(self) -> None:
        async for event in self.events.events():
            if isinstance(event, Disconnected):
                _say("[daemon connection lost; waiting for it to come back]")
            elif isinstance(event, Resumed):
                _say("[reconnected to a restarted daemon]" if event.restarted else "[reconnected]")
                await self._release_ended_turns()
            elif isinstance(event, Unfollowed):
                _say(f"[cannot follow the session any more: {event.error.message}]")
            elif isinstance(event, m.ClientDropped):
                await self._release_ended_turns()
            else:
                self.printer.show(event)
            if isinstance(event, m.Progress) and event.kind == "end":
                self.turn_done.setdefault(event.turn_id, asyncio.Event()).set()

    async def _release_ended_turns(self) -> None:
        """After events were missed, a turn whose end was among them has ended all the
        same: piped input waiting for it goes on."""
        try:
            running = {turn.turn_id for turn in (await self.client.status()).running_turns}
        except (DaemonUnavailable, TimeoutError):
            return  # gone again: the next reconnect looks again
        for turn_id, done in self.turn_done.items():
            if turn_id not in running:
                done.set()


async def run_chat(client: AsyncClient, session: str | None, project: str) -> int:
    status = await client.status()
    if status.emulator:
        _say(emulator_banner(status.providers))
    chat = Chat(client, project)
    await chat.open(session)
    printer = asyncio.create_task(chat.print_events())
    try:
        while True:
            line = await asyncio.to_thread(sys.stdin.readline)
            if not line:
                break
            line = line.strip()
            if not line:
                continue
            try:
                if not await chat.command(line):
                    break
            except RpcError as exc:
                _say(f"error: {exc.message}")
            except ValueError as exc:
                _say(f"error: {exc}")
    finally:
        printer.cancel()
        await asyncio.gather(printer, return_exceptions=True)
    return 0
