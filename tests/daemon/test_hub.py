"""The hub, without a daemon: both indexes agree through attach, detach, drop and delete."""

from __future__ import annotations

from dataclasses import dataclass, field

from duologue.daemon.hub import Hub


class Recorder:
    """A channel that hands each subscriber what it was broadcast."""

    def broadcast(self, subs: list[Sub], frames: list[bytes]) -> None:
        for sub in subs:
            sub.got.extend(frames)


RECORDER = Recorder()


@dataclass
class Sub:
    key: bytes
    got: list[bytes] = field(default_factory=list)
    channel: Recorder = RECORDER


def test_publish_reaches_the_subscribers_of_that_session_only():
    hub, a, b = Hub(), Sub(b"a"), Sub(b"b")
    hub.attach("s1", a)
    hub.attach("s2", b)
    hub.publish("s1", [b"e1", b"e2"])
    assert a.got == [b"e1", b"e2"] and b.got == []


def test_a_subscriber_knows_its_sessions_through_detach_and_drop():
    hub, a, b = Hub(), Sub(b"a"), Sub(b"b")
    for sid in ("s1", "s2", "s3"):
        hub.attach(sid, a)
    hub.attach("s2", b)
    assert hub.detach("s1", a) and not hub.detach("s1", a)
    assert hub.sessions_of(a) == ["s2", "s3"]
    assert hub.detach_everywhere(a) == ["s2", "s3"]
    assert hub.sessions_of(a) == []
    hub.publish("s2", [b"e"])
    assert a.got == [] and b.got == [b"e"]


def test_a_deleted_session_leaves_no_trace_in_its_subscribers():
    hub, a = Hub(), Sub(b"a")
    hub.attach("s1", a)
    hub.attach("s2", a)
    hub.forget_session("s1")
    assert hub.sessions_of(a) == ["s2"]
    hub.publish("s1", [b"e"])
    assert a.got == []
