"""The client's sequence rules (docs/protocol.md section 4) as one sans-IO object:
fed what happened, it says deliver, skip, or reattach from a seq. No daemon here."""

from __future__ import annotations

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from duologue.protocol import methods as m
from duologue.protocol.jsonrpc import Incoming
from duologue.protocol.subscriptions import Deliver, Reattach, Resume, Skip, Subscriptions

S, T = "S", "T"


def renamed(seq: int, sid: str = S) -> m.SessionRenamed:
    return m.SessionRenamed(session_id=sid, seq=seq, title=f"t{seq}")


def progress(seq: int, sid: str = S) -> m.Progress:
    return m.Progress(session_id=sid, seq=seq, turn_id="turn", kind="report", model="m")


def unknown(params: dict, method: str = "session/annotated") -> Incoming:
    return Incoming(method, msgspec.Raw(msgspec.json.encode(params)))


def following(*sessions: tuple[str, int]) -> Subscriptions:
    subs = Subscriptions()
    for sid, since in sessions:
        subs.follow(sid, since)
        subs.attached(sid, since)
    return subs


def test_the_next_seq_is_delivered_and_an_old_one_is_a_duplicate():
    subs = following((S, 4))
    assert subs.receive(renamed(5)) == Deliver(renamed(5))
    assert subs.receive(renamed(5)) == Skip("duplicate")
    assert subs.receive(renamed(3)) == Skip("duplicate")
    assert subs.last_seq(S) == 5


def test_a_gap_asks_for_a_reattach_from_the_last_seq_once_until_it_is_answered():
    subs = following((S, 4))
    assert subs.receive(renamed(7)) == Reattach((Resume(S, 4),), "gap")
    assert subs.receive(renamed(8)) == Skip("awaiting_replay")
    subs.attached(S, 8)
    for seq in (5, 6, 7, 8):  # the replay fills the gap
        assert isinstance(subs.receive(renamed(seq)), Deliver)
    assert subs.receive(renamed(10)) == Reattach((Resume(S, 8),), "gap")


def test_progress_is_never_deduplicated_and_its_seq_is_never_a_gap():
    subs = following((S, 4))
    assert subs.receive(progress(4)) == Deliver(progress(4))
    assert subs.receive(progress(4)) == Deliver(progress(4))
    assert subs.receive(progress(9)) == Deliver(progress(9))
    assert subs.last_seq(S) == 4


def test_events_of_a_session_not_followed_are_skipped():
    subs = following((S, 0))
    assert subs.receive(renamed(1, T)) == Skip("not_followed")
    assert subs.receive(progress(1, T)) == Skip("not_followed")
    subs.unfollow(S)
    assert subs.receive(renamed(1)) == Skip("not_followed")


def test_a_deleted_session_is_delivered_once_then_no_longer_followed():
    subs = following((S, 2))
    deleted = m.SessionDeleted(session_id=S, seq=2)
    assert subs.receive(deleted) == Deliver(deleted)
    assert not subs.follows(S)
    assert subs.receive(deleted) == Skip("not_followed")


def test_a_drop_notice_reattaches_the_listed_sessions_this_client_follows():
    subs = following((S, 3), (T, 9))
    notice = m.ClientDropped(session_ids=[T, "other"], reason="fell behind")
    assert subs.receive(notice) == Reattach((Resume(T, 9),), "dropped")
    assert subs.receive(m.ClientDropped(session_ids=["other"], reason="r")) == Skip("not_followed")



def forked(after_seq: int, now: int, sid: str = S) -> m.SessionForked:
    return m.SessionForked(session_id=sid, seq=now, fork_id="F", after_seq=after_seq, title="t (fork)")


def test_a_fork_reattaches_from_its_divergence_and_the_other_devices_events_there_are_delivered():
    subs = following((S, 0))
    for seq in range(1, 8):
        assert subs.receive(renamed(seq)) == Deliver(renamed(seq))
    assert subs.receive(forked(after_seq=5, now=5)) == Reattach((Resume(S, 5),), "forked")
    assert subs.last_seq(S) == 5
    assert subs.receive(renamed(6)) == Deliver(renamed(6))  # the other device's seq 6, not a duplicate
    subs.attached(S, 6)
    assert subs.receive(renamed(6)) == Skip("duplicate")
    assert subs.receive(forked(after_seq=1, now=1, sid=T)) == Skip("not_followed")


def test_a_fork_beyond_what_the_client_saw_reattaches_from_its_own_last_seq():
    subs = following((S, 3))
    assert subs.receive(forked(after_seq=5, now=5)) == Reattach((Resume(S, 3),), "forked")
    assert subs.receive(renamed(4)) == Deliver(renamed(4))

def test_a_reconnect_reattaches_every_session_and_a_new_instance_says_restarted():
    subs = following((S, 3), (T, 9))
    subs.daemon_seen("A")
    assert subs.reconnected("A") == Reattach((Resume(S, 3), Resume(T, 9)), "reconnected")
    assert subs.reconnected("B") == Reattach((Resume(S, 3), Resume(T, 9)), "restarted")
    assert subs.reconnected() == Reattach((Resume(S, 3), Resume(T, 9)), "reconnected")


def test_a_new_instance_on_a_connection_that_never_dropped_reattaches_everything():
    subs = following((S, 3))
    assert subs.daemon_seen("A") is None  # the first one seen
    assert subs.daemon_seen("A") is None
    assert subs.daemon_seen("") is None  # a daemon that does not say
    assert subs.daemon_seen("B") == Reattach((Resume(S, 3),), "restarted")
    assert subs.instance_id == "B"


def test_a_live_only_attach_counts_from_its_answer_or_from_the_first_event():
    subs = Subscriptions()
    subs.follow(S, None)
    assert subs.reconnected() == Reattach((Resume(S, None),), "reconnected")
    subs.attached(S, 12)
    assert subs.receive(renamed(12)) == Skip("duplicate")
    assert isinstance(subs.receive(renamed(13)), Deliver)

    early = Subscriptions()
    early.follow(S, None)
    assert isinstance(early.receive(renamed(20)), Deliver)
    early.attached(S, 19)  # the answer does not move the mark back
    assert early.last_seq(S) == 20


def test_attaching_again_replays_what_the_client_asks_for_even_if_passed_on():
    subs = following((S, 0))
    for seq in (1, 2, 3):
        subs.receive(renamed(seq))
    subs.follow(S, 0)
    assert subs.receive(renamed(1)) == Deliver(renamed(1))


def test_unknown_notifications_are_skipped_whatever_they_hold():
    subs = following((S, 1))
    for params in ({}, {"session_id": S}, {"seq": "x"}, {"session_id": 5, "seq": 2}):
        assert subs.receive(unknown(params)) == Skip("unknown")
    assert subs.receive(Incoming("x/y", msgspec.Raw(b"[1, 2]"))) == Skip("unknown")
    assert subs.receive(object()) == Skip("unknown")
    assert subs.last_seq(S) == 1


def test_an_unreadable_stored_event_of_a_newer_daemon_is_no_gap():
    subs = following((S, 4))
    assert subs.receive(unknown({"session_id": S, "seq": 5})) == Skip("unknown")
    assert subs.receive(renamed(6)) == Deliver(renamed(6))
    # Replayed after a reconnect: the same again, no gap, no loop.
    subs.reconnected()
    subs.attached(S, 6)
    assert subs.receive(unknown({"session_id": S, "seq": 5})) == Skip("unknown")
    assert subs.receive(renamed(6)) == Skip("duplicate")


def test_an_unreadable_notification_does_not_stand_in_for_an_event_that_arrives():
    subs = following((S, 4))
    subs.receive(unknown({"session_id": S, "seq": 5}))  # unstored, like a progress
    assert subs.receive(renamed(5)) == Deliver(renamed(5))
    assert subs.receive(renamed(7)) == Reattach((Resume(S, 5),), "gap")


@given(st.lists(st.sampled_from(["next", "again", "skip", "drop", "reconnect"]), max_size=40))
def test_whatever_arrives_each_stored_event_is_delivered_once_in_order(script):
    """A daemon's stream as a client can see it (repeats, gaps, drops, reconnects); the
    reattaches the object asks for are answered with a replay, as the daemon would."""
    log = [renamed(seq) for seq in range(1, 200)]
    subs = following((S, 0))
    delivered: list[int] = []
    sent = 0  # how far the daemon's stream has gone

    def feed(event: m.SessionRenamed) -> None:
        decision = subs.receive(event)
        if isinstance(decision, Deliver):
            delivered.append(event.seq)
        elif isinstance(decision, Reattach):
            answer(decision)

    def answer(decision: Reattach) -> None:
        for resume in decision.sessions:
            subs.attached(resume.session_id, sent)
            for event in log[(resume.since_seq or 0):sent]:
                feed(event)

    for step in script:
        if step == "next":
            sent += 1
            feed(log[sent - 1])
        elif step == "again" and sent:
            feed(log[sent - 1])
        elif step == "skip":
            sent += 2
            feed(log[sent - 1])
        elif step == "drop":
            sent += 1  # lost with the queue that overflowed
            answer(subs.receive(m.ClientDropped(session_ids=[S], reason="fell behind")))
        elif step == "reconnect":
            sent += 1  # lost with the connection
            answer(subs.reconnected())
        assert delivered == list(range(1, sent + 1))
