"""Error codes of the duologue protocol, each documented once.

The five JSON-RPC 2.0 codes keep their standard meaning. Application codes live in
the range the specification reserves for servers (-32000 to -32099). Every error a
daemon returns is an :class:`RpcError`; its ``message`` says what was wrong and
what to do, and never carries a secret or a stack trace.
"""

from __future__ import annotations

import enum
from typing import Any


class ErrorCode(enum.IntEnum):
    """Every code a client may see, with the meaning it is promised to have."""

    PARSE_ERROR = -32700
    """The frame was not valid UTF-8 JSON."""
    INVALID_REQUEST = -32600
    """The JSON was not a JSON-RPC 2.0 request object (or a batch of them)."""
    METHOD_NOT_FOUND = -32601
    """No method of that name is in the method table."""
    INVALID_PARAMS = -32602
    """The params did not match the method's params type; ``data.path`` says where."""
    INTERNAL_ERROR = -32603
    """The daemon failed while handling a valid request; the daemon log has details."""

    UNKNOWN_SESSION = -32001
    """No session has that id (it never existed or was deleted)."""
    UNKNOWN_MODEL = -32002
    """The model id or short name is not in the catalog (see models/list)."""
    MODEL_UNAVAILABLE = -32003
    """The model exists but its provider is not configured or is cooling down."""
    PROVIDER_ERROR = -32004
    """The provider refused or failed the request; ``data.kind`` classifies it."""
    NOTHING_TO_CANCEL = -32005
    """session/cancel found no running or queued turn in that session."""
    SHUTTING_DOWN = -32006
    """The daemon is stopping and accepts no new work."""
    PROTOCOL_MISMATCH = -32007
    """The client speaks a protocol major version the daemon does not."""
    UNKNOWN_MESSAGE = -32008
    """No message with that id exists in the session."""
    INVALID_TASKS = -32009
    """A task list broke a rule beyond its types (e.g. duplicate ids)."""
    QUEUE_FULL = -32010
    """Too many turns are queued in that session; retry after one completes."""
    UNKNOWN_BATCH = -32011
    """No import batch has that id (see import/list)."""
    IMPORT_CONFLICT = -32012
    """A session of the import batch changed after the import; undo would remove more
    than the batch created. ``data.session_ids`` lists them."""
    STORE_UNWRITABLE = -32013
    """The daemon could not write its store; nothing of the request was written.
    ``data.disk_full`` is true when the disk holding the store is full: free space
    there and send again."""
    SESSION_HELD = -32014
    """Another device holds the session's writer lease and did not take the send
    handed to it (it did not answer in time, or died after it was handed over):
    the send may have run there; look at the session before sending again."""


class RpcError(Exception):
    """A JSON-RPC error with a code from :class:`ErrorCode`.

    Raised by handlers and by the client library alike, so both ends see the same
    object. ``data`` is optional structured detail (a JSON-compatible dict).
    """

    def __init__(self, code: int, message: str, data: dict[str, Any] | None = None):
        super().__init__(message)
        self.code = int(code)
        self.message = message
        self.data = data

    def __repr__(self) -> str:
        return f"RpcError({self.code}, {self.message!r})"

    @property
    def code_name(self) -> str:
        """The symbolic name of the code, or the number when it is not ours."""
        try:
            return ErrorCode(self.code).name.lower()
        except ValueError:
            return str(self.code)


def unknown_session(session_id: str) -> RpcError:
    return RpcError(
        ErrorCode.UNKNOWN_SESSION,
        f"no session with id {session_id!r}; `duologue list` shows the sessions",
        {"session_id": session_id},
    )


def unknown_model(model: str, known: list[str]) -> RpcError:
    return RpcError(
        ErrorCode.UNKNOWN_MODEL,
        f"unknown model {model!r}; known models: {', '.join(known)} (or 'auto')",
        {"model": model},
    )
