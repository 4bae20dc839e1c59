"""The editor commands' arguments, and code-context blocks cut from a document. Pure.

Every command takes one JSON object as its single argument (LSP's ``arguments``
array holds it), decoded strictly so a typo is an error, not an ignored option. For
typing convenience a command whose argument has one obvious field also takes a bare
string: ``duologue.ask ["why?"]``, ``duologue.switchModel ["flash"]``,
``duologue.attach ["01KA..."]``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import msgspec

from duologue.protocol.entities import CodeContextBlock, LineRange
from duologue.protocol.errors import ErrorCode, RpcError
from duologue.protocol.jsonrpc import invalid_params

from ..rpc.project import project_of

NEW_SESSION = "duologue.newSession"
ASK = "duologue.ask"
SWITCH_MODEL = "duologue.switchModel"
ATTACH = "duologue.attach"
SESSIONS = "duologue.sessions"

ASK_ABOUT_TITLE = "Ask duologue about this"
DEFAULT_QUESTION = "Explain this code."


class _Args(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    pass


class NewSessionArgs(_Args):
    title: str | None = None
    model: str | None = None
    project_id: str | None = None
    """Defaults to the workspace root."""
    system_prompt: str | None = None


class AskArgs(_Args):
    text: Annotated[str, msgspec.Meta(min_length=1)]
    session_id: str | None = None
    """Defaults to this editor's current session; a new one when there is none."""
    model: str | None = None
    context: list[CodeContextBlock] = []
    new_session: bool = False


class SwitchModelArgs(_Args):
    model: Annotated[str, msgspec.Meta(min_length=1)]
    session_id: str | None = None
    reason: str | None = None


class AttachArgs(_Args):
    session_id: Annotated[str, msgspec.Meta(min_length=1)]
    since_seq: Annotated[int, msgspec.Meta(ge=0)] | None = 0
    """Replay from here (default: the whole session); null for live events only."""


class SessionsArgs(_Args):
    project_id: str | None = None
    """Defaults to the workspace root."""
    all: bool = False
    """Every project's sessions."""
    limit: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 50


COMMANDS: dict[str, tuple[type[_Args], str | None]] = {
    NEW_SESSION: (NewSessionArgs, None),
    ASK: (AskArgs, "text"),
    SWITCH_MODEL: (SwitchModelArgs, "model"),
    ATTACH: (AttachArgs, "session_id"),
    SESSIONS: (SessionsArgs, None),
}
"""Command -> (argument type, the field a bare string fills)."""

_decoders = {name: msgspec.json.Decoder(t) for name, (t, _) in COMMANDS.items()}


def decode_args(command: str, arguments: list[Any]) -> Any:
    """The command's typed argument, or RpcError(INVALID_PARAMS) saying what is wrong."""
    args_type, bare_field = COMMANDS[command]
    if len(arguments) > 1:
        raise RpcError(ErrorCode.INVALID_PARAMS,
                       f"{command} takes one argument (an object), got {len(arguments)}")
    value: Any = arguments[0] if arguments else {}
    if value == [] or value is None:  # an empty Lua table is encoded as []: no arguments
        value = {}
    if isinstance(value, str) and bare_field is not None:
        value = {bare_field: value}
    if not isinstance(value, dict):
        form = f"an object or a string ({bare_field})" if bare_field else "an object"
        raise RpcError(ErrorCode.INVALID_PARAMS, f"{command} takes {form}")
    raw, decode = msgspec.json.encode(value), _decoders[command].decode
    try:
        return decode(raw)
    except msgspec.ValidationError as exc:
        raise invalid_params(f"invalid arguments for {command}", exc, raw, decode) from None


def project_of_root(root: str | None, cwd: str) -> str:
    """The project id of a workspace, as the CLI names it: the git root above the
    workspace root (the editor's cwd if none), else that directory."""
    return project_of(root or cwd)


def title_from(text: str) -> str:
    return " ".join(text.split())[:60] or "New session"


_SUFFIX_LANGUAGE = {
    "py": "python", "rs": "rust", "js": "javascript", "ts": "typescript", "rb": "ruby",
    "sh": "bash", "md": "markdown", "h": "c", "hpp": "cpp", "cc": "cpp", "yml": "yaml",
}


def language_of(path: str, language_id: str | None) -> str | None:
    """The editor's language id when it sent one, else a guess from the suffix."""
    if language_id:
        return language_id
    suffix = Path(path).suffix.lstrip(".").lower()
    return _SUFFIX_LANGUAGE.get(suffix, suffix or None)


def code_context(path: str, lines: list[str], start_line: int, end_line: int, end_character: int,
                 language: str | None) -> CodeContextBlock:
    """The whole lines an LSP selection touches, as a code-context block.

    LSP positions are 0-based and the end is exclusive: a selection that ends at
    character 0 of a line does not include that line. The block's range is 1-based
    and inclusive, like every line range in the protocol.
    """
    last = end_line - 1 if end_character == 0 and end_line > start_line else end_line
    last = min(last, len(lines) - 1)
    first = min(start_line, last) if last >= 0 else 0
    text = "".join(lines[first:last + 1])
    return CodeContextBlock(path=path, text=text, language=language,
                            range=LineRange(start=first + 1, end=max(first, last) + 1))


def display_path(file_path: str, root: str | None) -> str:
    """A path relative to the workspace root when the file is inside it."""
    path = Path(file_path)
    if root:
        try:
            return str(path.resolve().relative_to(Path(root).resolve()))
        except ValueError:
            pass
    return str(path)
