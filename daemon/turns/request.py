"""Which stored messages a round sends: the conversation as the next model sees it."""

from __future__ import annotations

from duologue.protocol.entities import Message


def history_for(messages: list[Message], prompt: Message) -> list[Message]:
    """What the model sees for the turn of ``prompt``: every earlier turn and this
    turn's messages so far, in turn order.

    Turns are ordered by their prompt's seq, not by raw seq: a prompt queued while
    an earlier turn was streaming has a smaller seq than that earlier reply, yet the
    reply belongs before it, and later prompts still waiting in the queue must not
    be shown at all.
    """
    return _select(messages, prompt.seq, prompt.turn_id)


def settled_history(messages: list[Message]) -> list[Message]:
    """What any later turn sees of ``messages``, a stretch of whole turns that ended
    (no message of theirs comes after it, none is running): ``history_for`` of a
    longer history starts with exactly this when the stretch starts it."""
    return _select(messages, None, None)


def _select(messages: list[Message], upto_seq: int | None, running_turn: str | None) -> list[Message]:
    prompt_seq: dict[str, int] = {}
    for msg in messages:  # in seq order: a turn's first message is its prompt
        if msg.turn_id:
            prompt_seq.setdefault(msg.turn_id, msg.seq)

    def turn_key(msg: Message) -> int:
        return prompt_seq.get(msg.turn_id, msg.seq) if msg.turn_id else msg.seq

    last_reply: dict[str, int] = {}  # each turn's newest assistant seq, read once (this runs every round)
    for msg in messages:
        if msg.role == "assistant" and msg.turn_id:
            last_reply[msg.turn_id] = msg.seq
    selected = [msg for msg in messages
                if (upto_seq is None or turn_key(msg) <= upto_seq) and not _superseded(msg, last_reply, running_turn)]
    return sorted(selected, key=lambda msg: (turn_key(msg), msg.seq))


def _superseded(msg: Message, last_reply: dict[str, int], running_turn: str | None) -> bool:
    """An attempt that is not part of the conversation the next model continues.

    In the running turn, every attempt that did not complete (a failover starts the
    answer afresh; sending the partial text would be prefill, which Claude refuses).
    In earlier turns, a failed attempt that a later attempt of the turn replaced.
    The attempts stay in the transcript, marked; only the request leaves them out.
    """
    if msg.role != "assistant" or msg.status in ("complete", "streaming", "refused") or not msg.turn_id:
        return False
    if msg.turn_id == running_turn:
        return True
    return msg.status == "failed" and last_reply.get(msg.turn_id, msg.seq) > msg.seq
