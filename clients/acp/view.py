"""One session as an ACP client has it open: the daemon's events as its updates, and
the answer of the client's running prompt.

:class:`View` holds what the relay needs to remember between events (the session as
last seen, the cost so far, the turns begun and ended, the client's own prompt ids) and
turns each event into ACP updates with :mod:`.updates`. Its methods do no I/O: the
agent writes what they return and makes the calls they ask for.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import msgspec
from acp import RequestError
from acp import schema as a

from duologue.protocol import methods as m
from duologue.protocol.entities import Message, ModelInfo, Session, ToolCallBlock
from duologue.protocol.errors import ErrorCode

from . import updates as u


@dataclass
class Pending:
    """A ``session/prompt`` of this client waiting for its turn to end."""

    done: asyncio.Future[a.PromptResponse]
    turn_id: str | None = None
    cancel_requested: bool = False


@dataclass
class Ended:
    outcome: str
    reply: Message | None
    error: str | None = None


@dataclass
class View:
    session: Session
    cwd: str | None
    models: list[ModelInfo]
    cost_usd: float = 0.0
    thinking: str = u.THINKING_DEFAULT
    delivered_seq: int = 0
    prompt: Pending | None = None
    sending: asyncio.Future[None] | None = None
    """Done when this client's ``session/send`` in flight has returned: until then a user
    message arriving may be its echo, which only the id the send returns can tell."""
    own_messages: set[str] = field(default_factory=set)
    """Ids of the user messages this client sent whose echo has not come back yet: the
    echo is not shown (the ACP client shows its prompt itself)."""
    begun: set[str] = field(default_factory=set)
    ended: dict[str, Ended] = field(default_factory=dict)
    replies: dict[str, Message] = field(default_factory=dict)
    """The last reply of each turn seen, by turn id."""
    caught_up: asyncio.Condition = field(default_factory=asyncio.Condition)

    def options(self) -> list[Any]:
        return u.config_options(self.session, self.models, self.thinking)

    def cancel_due(self, event: Any) -> bool:
        """Whether this event began the turn of a prompt the client cancelled while it
        was still queued (its cancel is sent now)."""
        pending = self.prompt
        return isinstance(event, m.Progress) and event.kind == "begin" and pending is not None \
            and pending.turn_id == event.turn_id and pending.cancel_requested

    def fail(self, code: int, message: str, data: Any = None) -> None:
        """Answer the waiting prompt, if any, with this error."""
        if self.prompt is not None and not self.prompt.done.done():
            self.prompt.done.set_exception(RequestError(code, message, data))

    def finish(self, turn_id: str) -> None:
        """Answer this client's prompt if ``turn_id`` is its turn and it has ended."""
        pending, ended = self.prompt, self.ended.get(turn_id)
        if pending is None or pending.turn_id != turn_id or ended is None or pending.done.done():
            return
        if ended.outcome in ("failed", "interrupted"):
            why = ended.error or (ended.reply.error if ended.reply else None) or "no reason given"
            self.fail(ErrorCode.INTERNAL_ERROR, f"the turn {ended.outcome}: {why}",
                      {"turn_id": turn_id, "outcome": ended.outcome})
        else:
            pending.done.set_result(a.PromptResponse(stop_reason=u.stop_reason(ended.reply, ended.outcome)))

    # --- events to updates --------------------------------------------------------------

    def updates(self, event: Any) -> list[Any]:
        """The ACP updates of one daemon event, in the order to send them."""
        if isinstance(event, m.MessageCreated):
            msg = event.message
            if msg.role == "user":
                if u.is_tool_results(msg):
                    return u.tool_results(msg)
                if msg.id in self.own_messages:
                    self.own_messages.discard(msg.id)
                    return []
                return u.user_message(msg, self.cwd)
            return [] if msg.status == "streaming" else u.agent_content(msg)
        if isinstance(event, m.MessageDelta):
            return u.agent_delta(event)
        if isinstance(event, m.MessageCompleted):
            return self._completed(event.message)
        if isinstance(event, m.TasksChanged):
            return [u.plan(event.tasks)]
        if isinstance(event, m.ModelSwitched):
            if event.switch.choice is None:
                return []
            self.session = msgspec.structs.replace(self.session, model=event.switch.choice,
                                                   current_model=event.switch.to_model)
            return [a.ConfigOptionUpdate(session_update="config_option_update", config_options=self.options())]
        if isinstance(event, m.SessionRenamed):
            self.session = msgspec.structs.replace(self.session, title=event.title)
            return [a.SessionInfoUpdate(session_update="session_info_update", title=event.title)]
        if isinstance(event, m.Progress):
            self._progress(event)
        return []

    def _completed(self, msg: Message) -> list[Any]:
        if msg.role != "assistant":
            return []
        out = u.reply_completed(msg)
        self.cost_usd += msg.cost_usd or 0.0
        model = next((info for info in self.models if info.id == msg.model), None)
        usage = u.usage(msg, model, self.cost_usd)
        if usage is not None:
            out.append(usage)
        if msg.turn_id is not None:
            self.replies[msg.turn_id] = msg
            tool_round = msg.status == "complete" and any(isinstance(b, ToolCallBlock) for b in msg.content)
            if msg.status != "failed" and not tool_round:
                self.ended[msg.turn_id] = Ended(msg.status, msg)
                self.finish(msg.turn_id)
        return out

    def _progress(self, event: m.Progress) -> None:
        if event.kind == "begin":
            self.begun.add(event.turn_id)
        elif event.kind == "end":
            if event.turn_id not in self.ended:
                self.ended[event.turn_id] = Ended(event.outcome or "complete", self.replies.get(event.turn_id),
                                                  event.error)
            self.finish(event.turn_id)
