"""A streaming reply's text, read back from its stored ``message/delta`` events.

While a reply streams, its message record is the one written when it opened (empty,
``streaming``) and its text lives only in its delta events: a checkpoint appends a
delta rather than rewriting the message, so a reply costs disk linear in its length.
Anything that reads a streaming message from the store (``session/get``, recovery
after a crash) gets it with its content folded from those deltas, in seq order: a
run of text deltas is one text block, a run of thinking deltas one (unsigned)
thinking block, as the writer built them.

A store written by schema version 2 checkpointed the whole content into the record
as well, in the transaction of its deltas; the deltas alone rebuild that text, so
the record's content is not added to them.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from duologue.protocol.entities import ContentBlock, Message, TextBlock, ThinkingBlock
from duologue.protocol.methods import MessageDelta

DELTA_METHOD = b'"method":"message/delta"'
"""How a stored delta frame says what it is (``encode_event`` writes it so), looked
for before a frame is decoded: most frames after a reply's opening are its deltas,
but a session may hold others (a pin, a rename) in between."""


class _Frame(msgspec.Struct):
    method: str
    params: msgspec.Raw


_frame = msgspec.json.Decoder(_Frame)
_delta = msgspec.json.Decoder(MessageDelta)


def streamed(message: Message, frames: Iterable[bytes]) -> Message:
    """``message`` (a streaming record) with the content its deltas among ``frames``
    (the session's frames after its opening, in seq order) carry."""
    runs: list[tuple[bool, list[str]]] = []
    for frame in frames:
        if DELTA_METHOD not in frame:
            continue
        delta = _delta.decode(_frame.decode(frame).params)
        if delta.message_id != message.id:
            continue
        thinking = bool(delta.thinking)
        text = delta.thinking or delta.text
        if not text:
            continue
        if runs and runs[-1][0] == thinking:
            runs[-1][1].append(text)
        else:
            runs.append((thinking, [text]))
    content: list[ContentBlock] = [
        ThinkingBlock(text="".join(parts)) if thinking else TextBlock(text="".join(parts))
        for thinking, parts in runs]
    return msgspec.structs.replace(message, content=content)
