"""A reply's text kept once: folded from its deltas while it streams, and not
repeated by its stored ``message/completed``.

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

A ``message/completed`` frame carries the final message whole (clients replace what
the deltas built with it), and that message is also the record written in the same
transaction. So the stored event is only a reference to that record: a mark, how
many seqs back the record is, and whether the message was pinned then; a read
encodes the record again. After a message completed only a pin changes its record
(``pinned``), so the record with the pin it had then is what the event said. (A
store of schema version 3 kept the frame without the message's content, behind a
leading NUL; a read puts the record's content back into it.)

A ``message/delta`` frame is mostly envelope (about 100 bytes of JSON around a
chunk of a few words), so the store keeps only its text, behind a mark saying text
or thinking and how many seqs back its reply's record is; a read rebuilds the frame
from them and the record's id. The text is kept as JSON writes it inside the frame's
string (escaped, without the quotes), so a read copies it into the frame as it is:
decoding and encoding it again was two thirds of a replay's cost per delta. (A store
of schema version 4 kept the text raw; a read of such a delta encodes it.)

Either way a read (:class:`Frames`) returns the frame that was published, byte for
byte (``encode_event`` is deterministic), and a reply's text is on disk twice: in
its deltas and in its final record.

Deltas are most of a long session's events, so a replay's cost is mostly theirs. A
delta's frame is therefore templated rather than built as a ``MessageDelta`` and
encoded: the bytes before its text depend only on its reply (encoded once per reply
and read transaction), the bytes after it only on the session and the seq, and the
text was stored as msgspec writes it inside the Struct's JSON string. The
template follows the field order ``encode_event`` writes (``message_id``, ``text``,
``thinking`` when not empty, ``session_id``, ``seq``); tests/store compares the two.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable

import msgspec

from duologue.protocol.entities import ContentBlock, Message, TextBlock, ThinkingBlock
from duologue.protocol.jsonrpc import encode_event
from duologue.protocol.methods import MessageCompleted, MessageDelta

from .keys import U64

DELTA_METHOD = b'"method":"message/delta"'
"""How a delta frame written whole (by schema version 2) says what it is."""
COMPLETION, RAW_TEXT, RAW_THINKING, COMPLETED, TEXT, THINKING = b"\0", b"\1", b"\2", b"\3", b"\4", b"\5"
"""Marks of the stored forms: a completion whose content is its record's (version
3), a delta's text and thinking kept raw (version 4), a completion that is its
record, a delta's text and thinking kept escaped. A frame written whole starts with
``{``."""
_DELTAS = frozenset(b"\1\2\4\5")
"""The marks of a delta, as the ints a stored value's first byte reads as."""
_BACK = struct.Struct(">I")
_PINNED = b"\1"


class _Frame(msgspec.Struct):
    method: str
    params: msgspec.Raw


class _MessageId(msgspec.Struct):
    """A message record read for its id alone."""

    id: str


_frame = msgspec.json.Decoder(_Frame)
_json = msgspec.json.Encoder()
_string = msgspec.json.Decoder(str)
_message = msgspec.msgpack.Decoder(Message)
_message_id = msgspec.msgpack.Decoder(_MessageId)
_DELTA_HEAD = b'{"jsonrpc":"2.0","method":"message/delta","params":{"message_id":'
_delta = msgspec.json.Decoder(MessageDelta)
_completed = msgspec.json.Decoder(MessageCompleted)


def stored_completion(event: MessageCompleted) -> bytes:
    """What the store keeps of a ``message/completed`` committed with its record."""
    return COMPLETED + _BACK.pack(event.seq - event.message.seq) + (_PINNED if event.message.pinned else b"\0")


def stored_delta(event: MessageDelta, reply_seq: int) -> bytes:
    """What the store keeps of a delta of the reply whose record is at ``reply_seq``."""
    mark, text = (THINKING, event.thinking) if event.thinking else (TEXT, event.text)
    return mark + _BACK.pack(event.seq - reply_seq) + _json.encode(text)[1:-1]


def _delta_of(seq: int, stored: bytes) -> tuple[int, bool, str]:
    """A stored delta's reply seq, whether it is thinking, and its text."""
    mark = stored[:1]
    text = _string.decode(b'"' + stored[5:] + b'"') if mark in (TEXT, THINKING) else stored[5:].decode()
    return seq - _BACK.unpack_from(stored, 1)[0], mark in (THINKING, RAW_THINKING), text


class Frames:
    """The frames of one session's stored events, as published, for one read
    transaction: ``record(seq)`` reads the message record at that seq in it (its
    msgpack bytes, None when absent)."""

    def __init__(self, sid: str, record: Callable[[int], bytes | None]):
        self._sid = sid
        self._record = record
        self._records: dict[int, Message | None] = {}  # a page's completions each read one
        self._tail = b'","session_id":' + _json.encode(sid) + b',"seq":'
        self._heads: dict[int, tuple[bytes, ...]] = {}
        """Per reply seq: what precedes a delta's escaped text in its frame, indexed
        by the delta's mark (text or thinking, either form)."""

    def frame(self, seq: int, stored: bytes) -> bytes:
        mark = stored[0]
        if mark in _DELTAS:
            heads = self._delta_heads(seq - _BACK.unpack_from(stored, 1)[0])
            text = stored[5:] if mark in (4, 5) else _json.encode(stored[5:].decode())[1:-1]
            return b"".join((heads[mark], text, self._tail, b"%d}}" % seq))
        mark = stored[:1]
        if mark == COMPLETED:
            reply = self._message(seq - _BACK.unpack_from(stored, 1)[0])
            if reply is None:
                return stored
            pinned = stored[5:6] == _PINNED
            message = reply if reply.pinned == pinned else msgspec.structs.replace(reply, pinned=pinned)
            return encode_event(MessageCompleted(session_id=self._sid, seq=seq, message=message))
        if mark == COMPLETION:
            event = _completed.decode(_frame.decode(stored[1:]).params)
            reply = self._message(event.message.seq)
            return encode_event(msgspec.structs.replace(event, message=msgspec.structs.replace(
                event.message, content=reply.content if reply else [])))
        return stored

    def page(self, items: Iterable[tuple[bytes, bytes]], end: bytes, at: int) -> tuple[list[bytes], int]:
        """The frames of ``items`` (the events database's keys and values from a
        cursor, in order, each key's seq at offset ``at``) up to the first key at or
        past ``end``, and the last seq read (0 when none). :meth:`frame`'s work, with
        a delta's case inlined: a replay is mostly deltas, and a call per event was a
        good part of its cost."""
        frames: list[bytes] = []
        append, join, back, key_seq = frames.append, b"".join, _BACK.unpack_from, U64.unpack_from
        heads_of, tail, seq = self._heads, self._tail, 0
        for key, stored in items:
            if key >= end:
                break
            seq = key_seq(key, at)[0]
            mark = stored[0]
            if mark == 4 or mark == 5:  # TEXT, THINKING: the escaped text goes in as it is
                reply_seq = seq - back(stored, 1)[0]
                heads = heads_of.get(reply_seq) or self._delta_heads(reply_seq)
                append(join((heads[mark], stored[5:], tail, b"%d}}" % seq)))
            else:
                append(self.frame(seq, stored))
        return frames, seq

    def _message(self, seq: int) -> Message | None:
        if seq not in self._records:
            raw = self._record(seq)
            self._records[seq] = None if raw is None else _message.decode(raw)
        return self._records[seq]

    def _delta_heads(self, reply_seq: int) -> tuple[bytes, ...]:
        heads = self._heads.get(reply_seq)
        if heads is None:
            raw = self._record(reply_seq)  # only its id: most of a reply's record is its content
            text = _DELTA_HEAD + _json.encode("" if raw is None else _message_id.decode(raw).id) + b',"text":"'
            thinking = text + b'","thinking":"'
            heads = self._heads[reply_seq] = (b"", text, thinking, b"", text, thinking)
        return heads


def streamed(message: Message, events: Iterable[tuple[int, bytes]]) -> Message:
    """``message`` (a streaming record) with the content its deltas among ``events``
    (the session's stored events after its opening, with their seqs, in order) carry."""
    runs: list[tuple[bool, list[str]]] = []
    for seq, stored in events:
        if stored[0] in _DELTAS:
            reply_seq, thinking, text = _delta_of(seq, stored)
            if reply_seq != message.seq:
                continue
        elif DELTA_METHOD in stored:
            delta = _delta.decode(_frame.decode(stored).params)
            if delta.message_id != message.id:
                continue
            thinking, text = bool(delta.thinking), delta.thinking or delta.text
        else:
            continue
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
