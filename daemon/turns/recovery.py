"""Closing what a crash (or a stop with turns queued) left open, before any client
is served: every turn ends in an assistant message, so no client waits forever.

A reply still streaming is marked ``interrupted`` with the text of every delta
committed (the store folds it from them, store/streams.py), which is every delta a
client can have received. A prompt nothing answered gets an empty interrupted reply
saying to send it again, in the name of the model that was to answer (every reply
has a speaker); so do tool results a stop left between two rounds of a turn. The turns to close come from the store's open-turn index,
not from a scan of every message.

The same closes serve replication (daemon/sync/lease.py): a turn another device
left open when it died is closed by the device that takes the session's lease
once the dead one's expired, found at the end of the session (a replicated turn is
not in this store's index: it was never this daemon's to recover at start).
"""

from __future__ import annotations

import msgspec

from duologue.protocol import methods as m
from duologue.protocol.entities import Message, Session, ToolResultBlock

from ..ids import new_id
from ..sessions import Sessions
from ..store import opens_turn

TAIL = 64
"""Messages read back from a session's end to find the turns a dead writer left open."""


def recover_open_turns(sessions: Sessions) -> int:
    """Close every open turn; returns how many."""
    count = 0
    for msg in sessions.store.open_turns():
        session = sessions.store.get_session(msg.session_id)
        if session is None:
            continue
        if msg.role == "assistant":
            _interrupted(sessions, session, msg)
        else:
            _unanswered(sessions, session, msg)
        count += 1
    return count


def close_open_tail(sessions: Sessions, session_id: str) -> int:
    """Close the turns left open at the end of one session (its writer vanished);
    returns how many. Walks back from the last message until a turn that ended."""
    session = sessions.store.get_session(session_id)
    if session is None:
        return 0
    tail, _ = sessions.store.message_page(session_id, 0, session.last_seq + 1, TAIL, 1 << 30)
    seen: set[str] = set()
    found: list[Message] = []
    for msg in reversed(tail):
        if msg.turn_id is None or msg.turn_id in seen:
            continue
        seen.add(msg.turn_id)
        if not opens_turn(msg):
            break
        found.append(msg)
    for msg in reversed(found):
        current = sessions.require(session_id)
        if msg.role == "assistant":
            _interrupted(sessions, current, msg)
        else:
            _unanswered(sessions, current, msg)
    return len(found)


def _interrupted(sessions: Sessions, session: Session, reply: Message) -> None:
    """A reply opened before its model's first text (the writer opens it while the
    request is sent) says why it is empty, as an unanswered prompt's does."""
    error = reply.error
    if not reply.content and error is None:
        error = _why_unanswered(_prompt_of(sessions, reply))
    final = msgspec.structs.replace(reply, status="interrupted", error=error)
    draft = sessions.draft(session)
    draft.messages.append(final)
    draft.emit(m.MessageCompleted, message=final)
    sessions.commit(draft)


def _prompt_of(sessions: Sessions, reply: Message) -> Message | None:
    """The message the reply answers: the last one of its turn before it."""
    before, _ = sessions.store.message_page(reply.session_id, 0, reply.seq, TAIL, 1 << 30)
    return next((msg for msg in reversed(before) if msg.turn_id == reply.turn_id), None)


def _why_unanswered(prompt: Message | None) -> str:
    between_rounds = (prompt is not None and bool(prompt.content)
                      and all(isinstance(b, ToolResultBlock) for b in prompt.content))
    why = ("the daemon stopped between two tool rounds of this turn" if between_rounds
           else "the daemon stopped before this message was answered")
    return f"{why}; send it again"


def _unanswered(sessions: Sessions, session: Session, prompt: Message) -> None:
    draft = sessions.draft(session)
    msg = draft.add_message(lambda seq: Message(
        id=new_id(), session_id=session.id, seq=seq, role="assistant", content=[],
        created_at=draft.now, model=session.current_model, status="interrupted", turn_id=prompt.turn_id,
        error=_why_unanswered(prompt)))
    draft.emit(m.MessageCompleted, message=msg)
    sessions.commit(draft)
