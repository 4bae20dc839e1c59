"""The task tool every model is offered: it writes the session's whole task list.

Anthropic receives it as a tool and Gemini as a function declaration, from the one
JSON Schema below. A call is validated with the same msgspec types a client's
tasks/update uses; a malformed call is answered with an error result that tells the
model what was wrong, so the turn goes on instead of crashing.
"""

from __future__ import annotations


import msgspec

from duologue.protocol import methods as m
from duologue.protocol.entities import ToolResultBlock
from duologue.protocol.errors import RpcError

from .providers.base import ToolCallEvent, ToolSpec
from .sessions import Sessions, tasks_from_inputs

NAME = "update_tasks"

SPEC = ToolSpec(
    name=NAME,
    description=(
        "Write the whole task list for this session, replacing the previous one. Use it to "
        "plan multi-step work and to report progress: mark exactly one task in_progress "
        "while you work on it and mark tasks completed as soon as they are done."
    ),
    parameters={
        "type": "object",
        "properties": {
            "tasks": {
                "type": "array",
                "description": "Every task, in order.",
                "items": {
                    "type": "object",
                    "properties": {
                        "content": {"type": "string", "description": "What to do, imperative."},
                        "status": {"type": "string", "enum": ["pending", "in_progress", "completed"]},
                        "active_form": {"type": "string",
                                        "description": "Present continuous, shown while in progress."},
                    },
                    "required": ["content", "status"],
                },
            }
        },
        "required": ["tasks"],
    },
)


class _Call(msgspec.Struct, forbid_unknown_fields=True):
    tasks: list[m.TaskInput]


def run_tool(sessions: Sessions, session_id: str, call: ToolCallEvent, by: str) -> ToolResultBlock:
    """Execute one tool call; the result (or the error) goes back to the model."""
    if call.name != NAME:
        return _error(call, f"unknown tool {call.name!r}; the only tool is {NAME}")
    try:
        parsed = msgspec.convert(call.input, _Call)
    except msgspec.ValidationError as exc:
        return _error(call, f"invalid {NAME} input: {exc}. Send {{\"tasks\": [{{\"content\": ..., "
                            f"\"status\": \"pending|in_progress|completed\"}}]}}")
    try:
        task_list = sessions.update_tasks(session_id, tasks_from_inputs(parsed.tasks), by)
    except RpcError as exc:
        return _error(call, exc.message)
    done = sum(t.status == "completed" for t in task_list.tasks)
    return ToolResultBlock(call_id=call.id, name=call.name,
                           content=f"saved {len(task_list.tasks)} tasks ({done} completed)")


def _error(call: ToolCallEvent, message: str) -> ToolResultBlock:
    return ToolResultBlock(call_id=call.id, name=call.name, content=message, is_error=True)
