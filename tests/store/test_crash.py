"""kill -9 during writes: every write whose commit returned is in the store afterwards.

First the store alone (a child process appends in a loop and prints each seq once its
commit has returned), then the whole daemon (a client creates and renames sessions
while the daemon is killed). The kill lands at a random acknowledged count, so the
commit in flight at that moment differs from run to run.
"""

from __future__ import annotations

import asyncio
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from duologue.clients.rpc.client import AsyncClient, DaemonUnavailable
from duologue.daemon.store import Store
from duologue.protocol.errors import RpcError

WRITER = textwrap.dedent("""
    import sys
    from datetime import datetime, timezone

    import msgspec

    from duologue.daemon.store import Change, Store
    from duologue.protocol.entities import Message, Session, TextBlock

    store = Store(__import__("pathlib").Path(sys.argv[1]))
    now = datetime.now(timezone.utc)
    s = Session(id="CRASH", title="t", created_at=now, updated_at=now, model="m", current_model="m")
    store.apply(Change(session=s, previous=None))
    print("ready", flush=True)
    seq = 0
    while True:
        seq += 1
        msg = Message(id=f"m{seq}", session_id="CRASH", seq=seq, role="user",
                      content=[TextBlock(text="x" * (seq % 997))], created_at=now)
        new = msgspec.structs.replace(s, last_seq=seq)
        store.apply(Change(session=new, previous=s, messages=[msg],
                           events=[(seq, b'{"seq":%d}' % seq)]))
        s = new
        print(seq, flush=True)
""")


def _kill_writer_after(path: Path, acks: int) -> list[int]:
    """Start the writer, SIGKILL it once ``acks`` seqs are acknowledged; return every
    seq it acknowledged (including those still in the pipe when it died)."""
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read() if proc.stderr else ""
        acked: list[int] = []
        while len(acked) < acks:
            line = proc.stdout.readline()
            assert line, f"writer died early: {proc.stderr.read() if proc.stderr else ''}"
            acked.append(int(line))
        proc.send_signal(signal.SIGKILL)
        # Read through the same buffered pipe as readline: communicate() would read the
        # raw fd and miss lines readline had already buffered.
        rest = proc.stdout.read()
        acked += [int(x) for x in rest.split()]
        assert proc.wait(timeout=10) == -signal.SIGKILL
        return acked
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_kill9_during_store_writes_keeps_every_acknowledged_write(tmp_path: Path):
    rng = random.Random()
    path = tmp_path / "store"
    for round_ in range(3):
        acked = _kill_writer_after(path / str(round_), rng.randint(20, 200))
        store = Store(path / str(round_))
        try:
            session = store.get_session("CRASH")
            assert session is not None
            stored = [m.seq for m in store.messages("CRASH")]
            # Every acknowledged seq is there, and nothing beyond the one commit in flight.
            assert stored[: len(acked)] == acked
            assert len(stored) - len(acked) in (0, 1)
            assert session.last_seq == len(stored)
            assert len(store.events("CRASH")) == len(stored)
        finally:
            store.close()


async def test_kill9_of_the_daemon_keeps_every_acknowledged_session_and_rename(daemon):
    """Two writers race the kill. Titles count up, so a rename acknowledged as N means the
    stored title is N or a later rename that committed but whose answer was lost."""
    created: dict[str, int] = {}
    kill_after = random.randint(15, 60)
    acks = 0
    enough = asyncio.Event()

    async def writer(client: AsyncClient, tag: str) -> None:
        nonlocal acks
        try:
            while True:
                s = await client.create_session(title=f"{tag} 0")
                created[s.id] = 0
                acks += 1
                for n in range(1, 4):
                    await client.rename_session(s.id, f"{tag} {n}")
                    created[s.id] = n
                    acks += 1
                if acks >= kill_after:
                    enough.set()
        except (DaemonUnavailable, RpcError, asyncio.TimeoutError):
            return

    async with daemon.client("w1") as c1, daemon.client("w2") as c2:
        tasks = [asyncio.create_task(writer(c1, "one")), asyncio.create_task(writer(c2, "two"))]
        await asyncio.wait_for(enough.wait(), 20)
        daemon.kill9()
        await asyncio.wait_for(asyncio.gather(*tasks), 20)

    assert len(created) >= kill_after // 4
    daemon.start()
    async with daemon.client("check") as c:
        for sid, n in created.items():
            got = await c.get_session(sid)
            tag, stored = got.session.title.rsplit(" ", 1)
            assert int(stored) >= n, (sid, got.session.title, n)
            assert got.session.last_seq == 1 + int(stored)
        listed = await c.list_sessions(limit=10_000)
        assert set(created) <= {s.id for s in listed.sessions}
