"""Two daemons on one JetStream keep one session: each one's turns reach the other
with the same seqs and records, and clients attached there see them live."""

from __future__ import annotations

from support import DaemonProcess
from sync_support import converged, history, quiet, wait_for

from duologue.protocol import methods as m


async def _answered(client, sid: str, prompts: int) -> bool:
    got = await history(client, sid)
    if got is None:
        return False
    replies = [msg for msg in got[1] if msg["role"] == "assistant" and msg.get("status", "complete") != "streaming"]
    return len(replies) >= prompts


async def test_two_daemons_converge_after_each_others_turns(laptop: DaemonProcess, desktop: DaemonProcess):
    async with laptop.client("laptop") as a, desktop.client("desktop") as b:
        sid = (await a.create_session(title="everywhere")).id
        await a.send(sid, "first, from the laptop")
        await wait_for(lambda: _answered(a, sid, 1), what="the laptop's reply")
        await wait_for(lambda: converged(a, b, sid), what="the desktop holds the laptop's turn")

        await b.send(sid, "second, from the desktop")
        await wait_for(lambda: _answered(b, sid, 2), what="the desktop's reply")
        await wait_for(lambda: converged(a, b, sid), what="the laptop holds the desktop's turn")
        session, messages = await history(a, sid)
        assert [msg["role"] for msg in messages] == ["user", "assistant", "user", "assistant"]
        assert [msg["seq"] for msg in messages] == sorted(msg["seq"] for msg in messages)
    assert quiet(laptop) and quiet(desktop)


async def test_a_client_on_the_other_machine_sees_a_remote_turn_live_in_order_once(
        laptop: DaemonProcess, desktop: DaemonProcess):
    async with laptop.client("laptop") as a, desktop.client("desktop") as b:
        sid = (await a.create_session(title="watched")).id
        await wait_for(lambda: history(b, sid), what="the session reaches the desktop")
        attached = await b.attach(sid, since_seq=None)
        await a.send(sid, "hello from the laptop")
        await wait_for(lambda: _answered(a, sid, 1), what="the laptop's reply")
        final = (await history(a, sid))[0].last_seq
        seen: list[int] = []
        completed = None
        while not seen or seen[-1] < final:
            event = await b.next_event(timeout=30)
            if hasattr(event, "seq") and getattr(event, "session_id", None) == sid and not isinstance(event, m.Progress):
                seen.append(event.seq)
                if isinstance(event, m.MessageCompleted):
                    completed = event.message
        assert seen == list(range(attached.last_seq + 1, final + 1))
        assert completed is not None and completed.role == "assistant"
