"""Closing what a crash (or a stop with turns queued) left open, before any client
is served: every turn ends in an assistant message, so no client waits forever.

A reply still streaming is marked ``interrupted`` with the text of every delta
committed (the store folds it from them, store/streams.py), which is every delta a
client can have received. A prompt nothing answered gets an empty interrupted reply
saying to send it again, in the name of the model that was to answer (every reply
has a speaker); so do tool results a stop left between two rounds of a turn. The turns to close come from the store's open-turn index,
not from a scan of every message.
"""

from __future__ import annotations

import msgspec

from duologue.protocol import methods as m
from duologue.protocol.entities import Message, Session, ToolResultBlock

from ..ids import new_id
from ..sessions import Sessions


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


def _interrupted(sessions: Sessions, session: Session, reply: Message) -> None:
    final = msgspec.structs.replace(reply, status="interrupted")
    draft = sessions.draft(session)
    draft.messages.append(final)
    draft.emit(m.MessageCompleted, message=final)
    sessions.commit(draft)


def _unanswered(sessions: Sessions, session: Session, prompt: Message) -> None:
    between_rounds = bool(prompt.content) and all(isinstance(b, ToolResultBlock) for b in prompt.content)
    why = ("the daemon stopped between two tool rounds of this turn" if between_rounds
           else "the daemon stopped before this message was answered")
    draft = sessions.draft(session)
    msg = draft.add_message(lambda seq: Message(
        id=new_id(), session_id=session.id, seq=seq, role="assistant", content=[],
        created_at=draft.now, model=session.current_model, status="interrupted", turn_id=prompt.turn_id,
        error=f"{why}; send it again"))
    draft.emit(m.MessageCompleted, message=msg)
    sessions.commit(draft)
