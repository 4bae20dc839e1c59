"""What a replicated change is on the wire: one JetStream message per store change.

A message holds everything the change wrote about its session (the session record,
its events as the store keeps them, the message, switch, task and summary records),
msgpack-encoded, so the follower writes the very bytes the writer wrote: message
ids, seqs and stored event forms replicate verbatim, and reads on every machine
rebuild the same frames (store/streams.py). It names the device that made it and
the seq it follows, so a follower can tell a next change from one it holds or one
that diverged.

Subjects and ids (JetStream's own mechanisms, docs/sync.md):
  subject      duologue.s.<session id>              one per session, in stream DUOLOGUE
  Nats-Msg-Id  <session id>:<last seq>               a republish is deduplicated
               <session id>:deleted                  a tombstone (the session was deleted)
  Nats-Expected-Last-Subject-Sequence  the stream sequence of the subject's last
               message as this writer saw it: a stale writer is refused.
"""

from __future__ import annotations

import re

import msgspec

from duologue.protocol.entities import ContextSummary, Message, ModelSwitch, Session, TaskList

from ..store import Change

STREAM = "DUOLOGUE"
PREFIX = "duologue.s."
SUBJECTS = PREFIX + ">"
_TOKEN = re.compile(r"[A-Za-z0-9_-]+")


class Replica(msgspec.Struct, kw_only=True, frozen=True):
    """One store change as it travels. ``after`` is the session's last seq before it
    (0: the change created the session). ``deleted``: a tombstone, the session was
    deleted by ``device`` (``session`` as it was then, no events)."""

    device: str
    after: int
    session: Session
    events: list[tuple[int, bytes]] = []
    messages: list[Message] = []
    switches: list[ModelSwitch] = []
    tasks: TaskList | None = None
    summaries: list[ContextSummary] = []
    deleted: bool = False

    def change(self, previous: Session | None) -> Change:
        """The store change that writes this over ``previous`` (the local record)."""
        return Change(session=self.session, previous=previous, events=list(self.events),
                      messages=list(self.messages), switches=list(self.switches), tasks=self.tasks,
                      summaries=list(self.summaries))


class _Named(msgspec.Struct):
    id: str


class _Head(msgspec.Struct):
    session: _Named


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Replica)
_head = msgspec.msgpack.Decoder(_Head)


def encoder(device: str):
    """The store's outbox encoder for this device (``Store.outbox``). Import
    bookkeeping stays local: it says what this machine's files gave."""
    def encode(change: Change) -> bytes:
        after = change.previous.last_seq if change.previous is not None else 0
        return _encoder.encode(Replica(
            device=device, after=after, session=change.session, events=change.events,
            messages=change.messages, switches=change.switches, tasks=change.tasks,
            summaries=change.summaries))
    return encode


def tombstone(device: str, session: Session) -> bytes:
    """The outbox entry of a deletion (``Store.outbox_deleted``)."""
    return _encoder.encode(Replica(device=device, after=session.last_seq, session=session, deleted=True))


def decode(data: bytes) -> Replica:
    return _decoder.decode(data)


def session_of_entry(data: bytes) -> str:
    """The session an encoded change is of, without decoding the rest (a status
    asked every few seconds reads the whole outbox)."""
    return _head.decode(data).session.id


def encode(replica: Replica) -> bytes:
    return _encoder.encode(replica)


def merged(replicas: list[Replica]) -> Replica:
    """Consecutive changes of one session (each ``after`` the last seq of the one
    before) as one: what a follower writing them in order would hold, in one
    message. A message record written twice (a reply streamed, then completed)
    is carried once, as last written."""
    if len(replicas) == 1:
        return replicas[0]
    messages = {msg.id: msg for r in replicas for msg in r.messages}
    tasks = [r.tasks for r in replicas if r.tasks is not None]
    return Replica(
        device=replicas[0].device, after=replicas[0].after, session=replicas[-1].session,
        events=[e for r in replicas for e in r.events], messages=sorted(messages.values(), key=lambda m: m.seq),
        switches=[w for r in replicas for w in r.switches], tasks=tasks[-1] if tasks else None,
        summaries=[x for r in replicas for x in r.summaries])


def replicable(session_id: str) -> bool:
    """Whether a session id can be a subject token (every id duologue makes can)."""
    return bool(_TOKEN.fullmatch(session_id))


def subject(session_id: str) -> str:
    return PREFIX + session_id


def session_of(subject_name: str) -> str:
    return subject_name.removeprefix(PREFIX)


def msg_id(replica: Replica, outbox_key: int) -> str:
    """``<session>:<last seq>``; a change without events (none is made today) gets
    its outbox key too, so it cannot be taken for the change before it."""
    last = replica.session.last_seq
    if replica.deleted:
        return f"{replica.session.id}:deleted"
    return f"{replica.session.id}:{last}" if replica.events else f"{replica.session.id}:{last}.{outbox_key}"
