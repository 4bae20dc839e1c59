"""The slash commands of both chats, in one table: the full-screen chat
(``clients/tui``) and the line chat (``chat --plain``, or piped input) list, complete
and check their arguments from it, so the two cannot drift apart. Each chat runs
the commands itself; a command only one of them can do is marked so (``/edit`` needs
an input to put the prompt back in; ``/show`` and ``/models`` print, which the line
chat does).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Chat = Literal["app", "line"]


@dataclass(frozen=True)
class Command:
    name: str
    args: str
    """As usage shows them (``[...]`` optional): what a command given too little says."""
    does: str
    chats: tuple[Chat, ...] = ("app", "line")
    line_args: str | None = None
    """The line chat's arguments, where they differ (it has no picker to open)."""

    def usage(self, chat: Chat) -> str:
        return self.line_args if chat == "line" and self.line_args is not None else self.args


TABLE = (
    Command("/switch", "MODEL", "switch the session's model (id, short name or auto)"),
    Command("/new", "[TITLE]", "start a new session in this project"),
    Command("/context", "FILE[:A-B] [TEXT]", "send TEXT with a file (or lines A-B) attached"),
    Command("/find", "TEXT", "find TEXT in the transcript (case ignored)"),
    Command("/sessions", "", "this project's sessions"),
    Command("/open", "", "open another session", line_args="ID"),
    Command("/tasks", "", "the session's task list"),
    Command("/cancel", "", "stop the running reply (its text is kept)"),
    Command("/cost", "", "what each model has cost in this session"),
    Command("/retry", "", "send the last prompt again, as a new turn"),
    Command("/edit", "", "put the last prompt back in the input, to change and send", chats=("app",)),
    Command("/copy", "", "copy the last reply to the clipboard (OSC 52)"),
    Command("/models", "", "the model catalog", chats=("line",)),
    Command("/show", "", "the whole transcript", chats=("line",)),
    Command("/help", "", "this list"),
    Command("/quit", "", "leave (the daemon and the session stay)"),
    Command("/exit", "", "leave", chats=()),
)
"""Every command, in the order help lists them (``/exit`` works in both, unlisted)."""


def commands(chat: Chat) -> dict[str, str]:
    """A chat's commands and their usage (what Tab completes, in the app)."""
    return {c.name: c.usage(chat) for c in TABLE if chat in c.chats or c.name == "/exit"}


def usage(word: str, chat: Chat) -> str | None:
    """The usage line of a command that needs arguments, None for one that needs none."""
    args = commands(chat).get(word, "")
    return f"usage: {word} {args}" if args and not args.startswith("[") else None


def help_lines(chat: Chat) -> list[str]:
    """One line per command the chat lists: name, arguments, what it does."""
    listed = [c for c in TABLE if chat in c.chats]
    width = max(len(f"{c.name} {c.usage(chat)}".rstrip()) for c in listed)
    return [f"{c.name} {c.usage(chat)}".rstrip().ljust(width) + f"  {c.does}" for c in listed]
