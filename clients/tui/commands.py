"""The prompt's slash commands, for what a key does not cover (or a person prefers
to type): ``/switch MODEL``, ``/new [TITLE]``, ``/context FILE[:A-B] TEXT`` … They
are listed in :mod:`duologue.clients.chat_commands`, with the line chat's."""

from __future__ import annotations

from typing import Any, Protocol

from duologue.protocol.entities import CodeContextBlock

from ..chat_commands import commands, help_lines
from ..chat_commands import usage as shared_usage
from ..code_context import ContextArgError, parse_context_arg


class Chat(Protocol):
    """What a command acts on (``app.ChatApp``), named here so that this module
    need not import the app that imports it."""

    emulator: bool
    key_hint: str
    """What to set to leave the emulator, as the daemon names its providers' keys."""
    transcript: Any

    def exit(self) -> None: ...
    def switch(self, model: str) -> None: ...
    def action_new_session(self, title: str | None = None) -> None: ...
    def action_pick_session(self) -> None: ...
    def action_toggle_tasks(self) -> None: ...
    def action_cancel(self) -> None: ...
    def error_line(self, text: str) -> None: ...
    def send(self, text: str, context: list[CodeContextBlock] | None = None) -> None: ...
    def find(self, text: str) -> None: ...

COMMANDS = commands("app")
"""Each command and its arguments as usage shows them: what Tab completes."""

HELP = ("keys: enter sends · ctrl+j (or shift+enter) newline · ↑↓ history · tab completes /commands "
        "and @files (@path:10-40 attaches lines) · ctrl+g expands a paste or a folded message · "
        "pgup/pgdn ctrl+home/end scroll (home/end too, in an empty prompt) · ctrl+f find · "
        "ctrl+↑↓ model switches · F4 copies the last code block (or click one) · "
        "ctrl+n new session · ctrl+o sessions · F2/ctrl+s model (then 1-9 or ←→ enter) · "
        "esc/ctrl+c cancel the reply · ctrl+t tasks · ctrl+q quit.\ncommands:\n" + "\n".join(help_lines("app")))


def usage(word: str) -> str | None:
    return shared_usage(word, "app")


def emulator_help(key_hint: str) -> str:
    return ("The daemon answers from its offline provider emulator because no API key is "
            f"configured. {key_hint} and restart the daemon (`duologue daemon stop`) for real replies.")


def run_command(app: Chat, line: str) -> None:
    word, _, rest = line.partition(" ")
    rest = rest.strip()
    if not rest and usage(word):
        app.error_line(f"{usage(word)}; /help lists every command")
    elif word in ("/quit", "/q", "/exit"):
        app.exit()
    elif word == "/switch" and rest:
        app.switch(rest)
    elif word == "/new":
        app.action_new_session(rest or None)
    elif word in ("/sessions", "/open"):
        app.action_pick_session()
    elif word == "/tasks":
        app.action_toggle_tasks()
    elif word == "/cancel":
        app.action_cancel()
    elif word == "/find":
        app.find(rest)
    elif word == "/context" and rest:
        spec, _, text = rest.partition(" ")
        try:
            block = parse_context_arg(spec)
        except ContextArgError as exc:
            app.error_line(str(exc))
            return
        app.send(text or f"(see {spec})", context=[block])
    elif word == "/help":
        app.transcript.notice(HELP + ("\n\n" + emulator_help(app.key_hint) if app.emulator else ""))
    else:
        app.error_line(f"unknown command {word!r}; /help lists them")
