"""A partition's divergent writes, moved into a fork session.

Two devices that wrote to one session while apart each appended seqs after the last
one they shared (``after``). JetStream took the events of the one that reached it
first; the other's appends are refused. On that other device this module moves its
own events after ``after`` into a new session, titled as a fork and linked to the
original (metadata ``forked_from``, ``forked_at_seq``), renumbered from 2 (seq 1 is
the fork's ``session/created``), its messages under new ids; it cuts the original
back to ``after``, so the stream's events follow at the same seqs as on every
machine, and drops the refused changes from the outbox (the fork is published as a
session of its own). Nothing is lost and no seqs interleave. Attached clients get a
``session/forked`` notification. Summaries are not carried over: a fork computes
its own when it needs one.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import msgspec

from duologue.protocol import methods as m
from duologue.protocol.entities import Message, Session
from duologue.protocol.jsonrpc import encode_event

from ..ids import new_id
from ..sessions import Sessions
from ..store import Change, Store
from . import wire

log = logging.getLogger(__name__)

_message = msgspec.json.Decoder(Message)


def fork_divergent(sessions: Sessions, sid: str, after: int) -> Session | None:
    """Move the session's events after ``after`` into a fork; returns the fork (None
    when there is nothing of this device's after ``after``)."""
    store = sessions.store
    current = store.get_session(sid)
    pending = unpublished(store, sid)
    if current is None or current.last_seq <= after or not pending:
        return None  # nothing of this device's to move (a divergence already forked)
    now = sessions.clock()
    fork_id = new_id(int(now.timestamp() * 1000))
    shift = 1 - after  # seq after+1 becomes 2

    moved_messages = store.messages(sid, after)
    ids = {msg.id: new_id() for msg in moved_messages}

    def moved(raw: dict[str, Any]) -> dict[str, Any]:
        out = {**raw, "session_id": fork_id, "seq": raw["seq"] + shift}
        for key in ("id", "message_id"):
            if key in out and out[key] in ids:
                out[key] = ids[out[key]]
        return out

    frames = []
    for _, frame in store.event_page(sid, after, None):
        doc = json.loads(frame)
        params = moved(doc["params"])
        if "message" in params:
            params["message"] = moved(params["message"])
        if "switch" in params:
            params["switch"] = {**params["switch"], "seq": params["switch"]["seq"] + shift}
        frames.append((params["seq"], json.dumps({**doc, "params": params}, separators=(",", ":")).encode()))
    messages = [_message.decode(json.dumps(moved(msgspec.to_builtins(msg)))) for msg in moved_messages]
    switches = [msgspec.structs.replace(w, seq=w.seq + shift) for w in store.switches(sid) if w.seq > after]
    title = f"{current.title} (fork)"
    fork = Session(
        id=fork_id, title=title, created_at=now, updated_at=now, model=current.model,
        current_model=current.current_model, project_id=current.project_id,
        system_prompt=current.system_prompt,
        metadata={**current.metadata, "forked_from": sid, "forked_at_seq": str(after)},
        last_seq=current.last_seq + shift, message_count=len(messages))
    created = encode_event(m.SessionCreated(session_id=fork_id, seq=1, session=fork))
    kept = [msg for msg in store.messages(sid, 0) if msg.seq <= after]
    before = msgspec.structs.replace(current, last_seq=after, message_count=len(kept), updated_at=now)
    # the copy first: a kill before the cut leaves both, and the fork is made again
    store.apply(Change(session=fork, previous=None, events=[(1, created), *frames], messages=messages,
                       switches=switches, tasks=store.tasks(sid)))
    store.sync.published(pending)
    store.truncate_session(before, current)
    sessions.hub.publish(sid, [encode_event(m.SessionForked(session_id=sid, seq=after, fork_id=fork_id,
                                                            after_seq=after, title=title))])
    log.warning("session %s diverged after seq %d: this device's %d event(s) moved to fork %s",
                sid, after, len(frames), fork_id)
    return fork


def unpublished(store: Store, sid: str) -> list[int]:
    """The outbox keys of the session's changes JetStream does not hold: the
    divergent ones, which a fork carries."""
    keys, after = [], 0
    while batch := store.sync.pending(after):
        for key, data in batch:
            after = key
            if wire.session_of_entry(data) == sid:
                keys.append(key)
    return keys
