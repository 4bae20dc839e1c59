"""Store migrations and `duologue db status|backup|rollback`.

The first half opens real LMDB files in tmp_path with test-local migration lists
(``Store(migrations=..., target_version=...)``): order, atomicity of a failing step,
kill -9 during a step, refused gaps, and the backups each step leaves. The second half
runs the real `duologue db` console script (which runs ``python -m duologue.daemon db``)
against a home whose store a real daemon, or a test-local migration, wrote.

Every version is relative to ``V`` (``SCHEMA_VERSION``, what this code writes): the
stores are seeded at V by the real ``MIGRATIONS`` and the test-local steps go to V+1
and V+2, as the steps of a later duologue would, so the file holds whatever V is.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import lmdb
import msgspec
import pytest

from duologue.clients.rpc.sync_client import Client
from duologue.daemon.store.maintenance import read_version
from duologue.daemon.store.migrations import MIGRATIONS, PARTIAL, Migration, MigrationContext, list_backups
from duologue.daemon.store import (
    SCHEMA_VERSION,
    Change,
    Store,
    StoreMigrationError,
    StoreVersionError,
)
from duologue.protocol import methods
from duologue.protocol.entities import Message, Session, TextBlock, ToolCallBlock, ToolResultBlock, Usage
from duologue.protocol.jsonrpc import encode_event
from support import DaemonProcess

SCRIPT = Path(sys.executable).with_name("duologue")
T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
SESSION_DEC = msgspec.msgpack.Decoder(Session)
ENC = msgspec.msgpack.Encoder()
V = SCHEMA_VERSION
"""The version this code writes; the test-local steps produce V+1 and V+2."""


# --- a store with something in it, and steps that change it ---------------------------


def seed(path: Path, titles: tuple[str, ...] = ("first", "second"), prefix: str = "S") -> list[Session]:
    """A store at version V (the real steps ran) with one session per title (ids ``<prefix><i>``),
    two messages each."""
    store = Store(path)
    made = []
    try:
        for i, title in enumerate(titles):
            s = Session(id=f"{prefix}{i}", title=title, created_at=T0, updated_at=T0, model="m",
                        current_model="m", last_seq=2)
            msgs = [Message(id=f"S{i}-m{q}", session_id=s.id, seq=q, role="user",
                            content=[TextBlock(text=f"{title} #{q}")], created_at=T0) for q in (1, 2)]
            store.apply(Change(session=s, previous=None, messages=msgs,
                               events=[(q, b'{"seq":%d}' % q) for q in (1, 2)]))
            made.append(s)
    finally:
        store.close()
    return made


def titles(path: Path) -> dict[str, str]:
    store = Store(path)
    try:
        return {s.id: s.title for s in store.list_sessions()}
    finally:
        store.close()


def named_db(path: Path, name: str) -> dict[bytes, bytes] | None:
    """The records of a named database, read without the Store (None: no such database)."""
    env = lmdb.open(str(path), readonly=True, max_dbs=32, lock=False)
    try:
        try:
            db = env.open_db(name.encode(), create=False)
        except lmdb.NotFoundError:
            return None
        with env.begin(db=db) as txn:
            return dict(txn.cursor())
    finally:
        env.close()


def upper_titles(ctx: MigrationContext) -> None:
    sessions = ctx.db("sessions")
    for key, raw in list(ctx.txn.cursor(db=sessions)):
        s = SESSION_DEC.decode(raw)
        ctx.txn.put(key, ENC.encode(msgspec.structs.replace(s, title=s.title.upper())), db=sessions)


def step(version: int, ran: list[int], *, needs: bytes | None = None) -> Migration:
    """Step to ``version``: records that it ran, writes ``notes[v<version>]``, and (``needs``)
    requires the note an earlier step wrote, so running out of order fails."""
    def apply(ctx: MigrationContext) -> None:
        notes = ctx.db("notes")
        if needs is not None:
            assert ctx.txn.get(needs, db=notes) is not None, f"{needs!r} not written before v{version}"
        ran.append(version)
        ctx.txn.put(f"v{version}".encode(), b"done", db=notes)
        if version == V + 1:
            upper_titles(ctx)

    return Migration(version=version, description=f"to v{version}", apply=apply)


def later(*extra: Migration) -> list[Migration]:
    """The step list of a later duologue: the real steps up to V, then ``extra``."""
    return [*MIGRATIONS, *extra]


# --- upgrading ------------------------------------------------------------------------


def test_upgrade_runs_each_step_once_in_order_with_one_backup_per_step(tmp_path: Path):
    path = tmp_path / "store"
    seed(path)
    ran: list[int] = []
    # the real steps, then V+2 before V+1: listed out of order on purpose
    steps = later(step(V + 2, ran, needs=f"v{V + 1}".encode()), step(V + 1, ran))
    assert read_version(path) == V

    store = Store(path, migrations=steps, target_version=V + 2)
    assert store.schema_version() == V + 2
    assert {s.title for s in store.list_sessions()} == {"FIRST", "SECOND"}
    assert [m.text for m in store.messages("S0")] == ["first #1", "first #2"]
    store.close()
    assert ran == [V + 1, V + 2]

    backups = list_backups(tmp_path / "backups")
    assert [b.version for b in backups] == [V, V + 1]
    assert [b.reason for b in backups] == [f"before migration to v{V + 1}", f"before migration to v{V + 2}"]
    # Each backup is the store as it was before its step: a usable store of that version.
    assert read_version(backups[0].path) == V and named_db(backups[0].path, "notes") is None
    assert read_version(backups[1].path) == V + 1
    assert named_db(backups[1].path, "notes") == {f"v{V + 1}".encode(): b"done"}

    again = Store(path, migrations=steps, target_version=V + 2)  # already there: nothing runs
    again.close()
    assert ran == [V + 1, V + 2]
    assert len(list_backups(tmp_path / "backups")) == 2


def test_the_backup_before_a_step_is_compacted(tmp_path: Path):
    path = tmp_path / "store"
    store = Store(path)
    s = Session(id="BIG", title="big", created_at=T0, updated_at=T0, model="m", current_model="m",
                last_seq=200)
    store.apply(Change(session=s, previous=None, messages=[
        Message(id=f"m{q}", session_id="BIG", seq=q, role="user", content=[TextBlock(text="x" * 4000)],
                created_at=T0) for q in range(1, 201)]))
    store.delete_session(s)  # the pages stay in the file as free pages
    store.close()
    seed(path, ("kept",))

    Store(path, migrations=later(step(V + 1, [])), target_version=V + 1).close()

    (backup,) = list_backups(tmp_path / "backups")
    assert backup.size < (path / "data.mdb").stat().st_size / 4
    assert titles(backup.path) == {"S0": "kept"}  # the copy still holds what the store held


def test_a_step_that_outgrows_the_map_is_retried_whole_in_a_grown_map(tmp_path: Path):
    path = tmp_path / "store"
    Store(path, map_size=1 << 20).close()
    assert read_version(path) == V

    def bulk(ctx: MigrationContext) -> None:
        db = ctx.db("bulk")  # a new database, opened inside the step's transaction
        for i in range(2000):
            ctx.txn.put(b"k%05d" % i, b"x" * 2000, db=db)

    store = Store(path, map_size=1 << 20, migrations=later(Migration(V + 1, "bulk", bulk)),
                  target_version=V + 1)
    assert store.schema_version() == V + 1
    assert store.info()["map_size"] > 1 << 20
    store.close()
    assert len(named_db(path, "bulk")) == 2000


# --- the real steps -------------------------------------------------------------------


def test_a_version_1_store_is_upgraded_by_the_real_steps_and_its_messages_read_back_unchanged(
        tmp_path: Path):
    path = tmp_path / "store"
    s = Session(id="OLD", title="from v1", created_at=T0, updated_at=T0, model="m", current_model="m",
                last_seq=3)
    msgs = [  # only what a version 1 duologue wrote: no thinking, signatures, refusals or costs
        Message(id="OLD-m1", session_id="OLD", seq=1, role="user", content=[TextBlock(text="list tasks")],
                created_at=T0),
        Message(id="OLD-m2", session_id="OLD", seq=2, role="assistant", created_at=T0, model="m",
                turn_id="t1", usage=Usage(input_tokens=12, output_tokens=7), stop_reason="tool_use",
                content=[TextBlock(text="on it"),
                         ToolCallBlock(id="c1", name="tasks", input={"op": "list"})]),
        Message(id="OLD-m3", session_id="OLD", seq=3, role="user", created_at=T0, turn_id="t1",
                content=[ToolResultBlock(call_id="c1", name="tasks", content="none")]),
    ]
    v1 = Store(path, migrations=[], target_version=1)
    v1.apply(Change(session=s, previous=None, messages=msgs,
                    events=[(q, b'{"seq":%d}' % q) for q in (1, 2, 3)]))
    v1.close()
    assert read_version(path) == 1
    raw = named_db(path, "messages")
    assert raw is not None and len(raw) == 3
    for record in raw.values():
        for v2_key in (b"thinking", b"signature", b"redacted", b"refusal", b"cost_usd"):
            assert v2_key not in record

    store = Store(path)  # the real code: the real MIGRATIONS, up to SCHEMA_VERSION
    try:
        assert store.schema_version() == V
        assert store.get_session("OLD") == s
        assert store.messages("OLD") == msgs
        assert [m.text for m in store.messages("OLD")] == ["list tasks", "on it", ""]
    finally:
        store.close()
    assert read_version(path) == V

    backups = list_backups(tmp_path / "backups")
    assert len(backups) == V - 1  # one per step, the first the step to version 2
    assert (backups[0].version, backups[0].reason) == (1, "before migration to v2")
    assert read_version(backups[0].path) == 1
    assert named_db(backups[0].path, "messages") == raw  # the v1 store as it was

    Store(path).close()  # already there: nothing runs again
    assert len(list_backups(tmp_path / "backups")) == V - 1


# --- a step that fails ----------------------------------------------------------------


def test_a_failing_step_is_undone_whole_and_the_error_names_version_and_backup(tmp_path: Path):
    path = tmp_path / "store"
    seed(path)

    def half_then_fail(ctx: MigrationContext) -> None:
        upper_titles(ctx)
        ctx.txn.put(b"half", b"written", db=ctx.db("notes"))
        ctx.txn.put(b"half", b"written", db=ctx.db("meta"))
        raise RuntimeError("disk on fire at record 2")

    with pytest.raises(StoreMigrationError) as info:
        Store(path, migrations=later(Migration(V + 1, "uppercase titles", half_then_fail)),
              target_version=V + 1)

    (backup,) = list_backups(tmp_path / "backups")
    text = str(info.value)
    assert f"schema version {V + 1}" in text and "uppercase titles" in text
    assert "disk on fire at record 2" in text
    assert f"still at version {V}" in text and str(backup.path) in text
    assert isinstance(info.value.__cause__, RuntimeError)

    assert titles(path) == {"S0": "first", "S1": "second"}  # opens as v{V}, data intact
    assert read_version(path) == V
    assert named_db(path, "notes") is None
    assert b"half" not in named_db(path, "meta")

    fixed = Store(path, migrations=later(step(V + 1, [])), target_version=V + 1)  # a later, fixed duologue
    assert fixed.schema_version() == V + 1
    assert {s.id: s.title for s in fixed.list_sessions()} == {"S0": "FIRST", "S1": "SECOND"}
    fixed.close()


SLOW_MIGRATION = textwrap.dedent("""
    import sys, time
    from pathlib import Path

    from duologue.daemon.store.migrations import MIGRATIONS, Migration
    from duologue.daemon.store import SCHEMA_VERSION, Store

    def slow(ctx):
        for i in range(100):
            ctx.txn.put(b"rec%03d" % i, b"new", db=ctx.db("notes"))
        print("written", flush=True)
        time.sleep(60)

    Store(Path(sys.argv[1]), migrations=[*MIGRATIONS, Migration(SCHEMA_VERSION + 1, "slow", slow)],
          target_version=SCHEMA_VERSION + 1)
    print("finished", flush=True)
""")


def test_kill_9_during_a_step_leaves_the_old_store_usable_at_the_old_version(tmp_path: Path):
    path = tmp_path / "store"
    seed(path)
    proc = subprocess.Popen([sys.executable, "-c", SLOW_MIGRATION, str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line == "written", proc.stderr.read() if proc.stderr else ""
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    assert read_version(path) == V
    assert named_db(path, "notes") is None
    assert titles(path) == {"S0": "first", "S1": "second"}
    (backup,) = list_backups(tmp_path / "backups")  # taken before the step began
    assert backup.version == V

    # The dead writer's lock is released: the next duologue writes and migrates.
    seed(path, ("third",), prefix="AFTER")
    after = Store(path, migrations=later(step(V + 1, [])), target_version=V + 1)
    assert after.schema_version() == V + 1
    after.close()


# --- refusals -------------------------------------------------------------------------


def test_a_missing_step_is_refused_and_the_file_left_unchanged(tmp_path: Path):
    path = tmp_path / "store"
    seed(path)
    assert read_version(path) == V
    before = (path / "data.mdb").read_bytes()
    ran: list[int] = []

    with pytest.raises(StoreVersionError) as info:  # the real steps, then a gap at V+1
        Store(path, migrations=later(step(V + 2, ran)), target_version=V + 2)

    text = str(info.value)
    assert f"no migration step to schema version {V + 1}" in text
    assert f"version {V} store to {V + 2}" in text and "left unchanged" in text
    assert ran == []
    assert (path / "data.mdb").read_bytes() == before
    assert list_backups(tmp_path / "backups") == []


def test_an_interrupted_backup_is_not_listed(tmp_path: Path):
    path = tmp_path / "store"
    seed(path)
    Store(path, migrations=later(step(V + 1, [])), target_version=V + 1).close()
    (complete,) = list_backups(tmp_path / "backups")
    partial = tmp_path / "backups" / (f"20990101T000000.000000Z-v{V + 1}" + PARTIAL)
    partial.mkdir()
    (partial / "data.mdb").write_bytes((complete.path / "data.mdb").read_bytes()[:4096])

    assert [b.name for b in list_backups(tmp_path / "backups")] == [complete.name]


# --- `duologue db` --------------------------------------------------------------------


def db(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), "db", *args], env=env, capture_output=True, text=True, timeout=60)


def db_ok(env: dict[str, str], *args: str) -> Any:
    r = db(env, *args, "--json")
    assert r.returncode == 0, (args, r.returncode, r.stdout, r.stderr)
    return json.loads(r.stdout)


def db_fails(env: dict[str, str], *args: str) -> str:
    """Expect exit 1 and exactly one line on stderr; return it."""
    r = db(env, *args)
    assert r.returncode == 1, (args, r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("duologue: "), r.stderr
    return lines[0]


@pytest.fixture
def made(home: Path) -> DaemonProcess:
    """A home whose store a real daemon wrote (one session "kept"); the daemon is stopped."""
    d = DaemonProcess(home).start()
    try:
        with Client(d.paths, autostart=False, timeout=20.0) as c:
            c.create_session(title="kept")
    finally:
        d.stop()
    return d


def store_path(d: DaemonProcess) -> Path:
    return Path(d.paths.store_dir)


def backups_dir(d: DaemonProcess) -> Path:
    return Path(d.paths.data_dir) / "backups"


def test_db_status_shows_version_path_and_backups(made: DaemonProcess):
    r = db(made.env, "backup")
    assert r.returncode == 0, r.stderr
    (backup,) = list_backups(backups_dir(made))
    assert str(backup.path) in r.stdout

    text = db(made.env, "status").stdout
    assert f"store: {store_path(made)}" in text
    assert f"schema version: {V} (up to date)" in text
    assert "sessions: 1" in text and "daemon: not running" in text
    assert f"backups in {backups_dir(made)}:" in text
    assert f"{backup.name}  v{V}" in text

    s = db_ok(made.env, "status")
    assert s["path"] == str(store_path(made)) and s["exists"] is True
    assert s["version"] == s["code_version"] == V
    assert s["sessions"] == 1 and s["daemon_pid"] is None
    assert [(b["name"], b["version"], b["reason"]) for b in s["backups"]] == [
        (backup.name, V, "made by `duologue db backup`")]


def test_db_neither_lists_nor_restores_an_interrupted_backup(made: DaemonProcess):
    made_backup = db_ok(made.env, "backup")["backup"]
    (partial := backups_dir(made) / (f"20990101T000000.000000Z-v{V}" + PARTIAL)).mkdir()
    (partial / "data.mdb").write_bytes(b"\0" * 4096)  # newest by name, and garbage

    assert [b["name"] for b in db_ok(made.env, "status")["backups"]] == [made_backup]
    assert "20990101" not in db(made.env, "status").stdout
    assert db_ok(made.env, "rollback")["restored"] == made_backup
    assert list(titles(store_path(made)).values()) == ["kept"]


def test_rollback_restores_the_store_from_before_a_migration(made: DaemonProcess):
    path = store_path(made)
    assert read_version(path) == V
    (before,) = titles(path).values()
    migrated = Store(path, migrations=later(Migration(V + 1, "uppercase titles", upper_titles)),
                     target_version=V + 1)
    migrated.close()
    assert titles_at(path, V + 1) == ["KEPT"]
    assert db_ok(made.env, "status")["version"] == V + 1
    assert "newer than this duologue" in db(made.env, "status").stdout

    r = db_ok(made.env, "rollback")

    (pre_migration, replaced) = list_backups(backups_dir(made))
    assert r == {"restored": pre_migration.name, "version": V, "previous_store_saved_as": replaced.name}
    assert pre_migration.reason == f"before migration to v{V + 1}"
    assert replaced.version == V + 1 and replaced.reason == f"before rollback to {pre_migration.name}"
    assert titles_at(replaced.path, V + 1) == ["KEPT"]  # the replaced store is kept as it was
    assert read_version(path) == V
    assert list(titles(path).values()) == [before] == ["kept"]
    assert not (path / "data.mdb.restore").exists()

    made.start()  # the daemon of this version opens the restored store
    try:
        with Client(made.paths, autostart=False, timeout=20.0) as c:
            assert [s.title for s in c.list_sessions().sessions] == ["kept"]
    finally:
        made.stop()


def titles_at(path: Path, version: int) -> list[str]:
    """Session titles of a store of a newer version than this code (read without the Store)."""
    assert read_version(path) == version
    return [SESSION_DEC.decode(v).title for v in named_db(path, "sessions").values()]


def test_rollback_to_a_backup_newer_than_this_duologue_is_refused(made: DaemonProcess):
    assert read_version(store_path(made)) == V
    Store(store_path(made), migrations=later(Migration(V + 1, "uppercase titles", upper_titles)),
          target_version=V + 1).close()
    db_ok(made.env, "backup")
    newer = list_backups(backups_dir(made))[-1]
    assert newer.version == V + 1

    line = db_fails(made.env, "rollback", newer.name)
    assert f"backup {newer.name} has schema version {V + 1}" in line
    assert "roll back with the duologue that made it" in line
    assert read_version(store_path(made)) == V + 1 and len(list_backups(backups_dir(made))) == 2


def test_rollback_after_a_backup_drops_what_was_written_since(made: DaemonProcess):
    db_ok(made.env, "backup")
    made.start()
    try:
        with Client(made.paths, autostart=False, timeout=20.0) as c:
            c.create_session(title="written after the backup")
    finally:
        made.stop()
    assert sorted(titles(store_path(made)).values()) == ["kept", "written after the backup"]

    r = db(made.env, "rollback")

    assert r.returncode == 0, r.stderr
    first, replaced = list_backups(backups_dir(made))
    assert f"restored backup {first.name} (schema version {V})" in r.stdout
    assert f"the store it replaced is backup {replaced.name}" in r.stdout
    assert list(titles(store_path(made)).values()) == ["kept"]
    assert sorted(titles(replaced.path).values()) == ["kept", "written after the backup"]


def test_rollback_refuses_while_a_daemon_runs_and_changes_nothing(made: DaemonProcess):
    db_ok(made.env, "backup")
    made.start()
    try:
        with Client(made.paths, autostart=False, timeout=20.0) as c:
            c.create_session(title="written after the backup")
            backups = list_backups(backups_dir(made))

            line = db_fails(made.env, "rollback")

            assert f"already running (pid {made.pid})" in line and "duologue daemon stop" in line
            assert list_backups(backups_dir(made)) == backups
            assert not (store_path(made) / "data.mdb.restore").exists()
            assert sorted(s.title for s in c.list_sessions().sessions) == ["kept", "written after the backup"]
            assert db_ok(made.env, "status")["daemon_pid"] == made.pid
    finally:
        made.stop()
    assert sorted(titles(store_path(made)).values()) == ["kept", "written after the backup"]


def test_rollback_names_the_backups_when_the_name_matches_none(made: DaemonProcess):
    db_ok(made.env, "backup")
    (backup,) = list_backups(backups_dir(made))
    line = db_fails(made.env, "rollback", "nope")
    assert "no backup matches 'nope'" in line and backup.name in line


def test_rollback_without_backups_says_there_are_none(made: DaemonProcess):
    line = db_fails(made.env, "rollback")
    assert "there are no backups" in line and str(backups_dir(made)) in line


def test_a_version_2_store_with_a_reply_cut_mid_stream_upgrades_and_recovers_its_text_once(home: Path):
    """Version 2 rewrote a streaming reply's record at each checkpoint, with the text
    its deltas also hold; version 3 reads the deltas alone, so the text is not doubled,
    and the frames written by version 2 replay unchanged."""
    d = DaemonProcess(home)
    path = Path(d.paths.store_dir)
    prompt = Message(id="V2-p", session_id="V2", seq=2, role="user", content=[TextBlock(text="hi")],
                     created_at=T0, turn_id="t1")
    opening = Message(id="V2-r", session_id="V2", seq=3, role="assistant", content=[], created_at=T0,
                      model="claude-sonnet-5-5", status="streaming", turn_id="t1")
    checkpoint = msgspec.structs.replace(opening, content=[TextBlock(text="Hello")])
    s = Session(id="V2", title="cut mid-stream", created_at=T0, updated_at=T0, model="sonnet",
                current_model="claude-sonnet-5-5", last_seq=5, message_count=2)
    events = [methods.SessionCreated(session_id="V2", seq=1, session=s),
              methods.MessageCreated(session_id="V2", seq=2, message=prompt),
              methods.MessageCreated(session_id="V2", seq=3, message=opening),
              methods.MessageDelta(session_id="V2", seq=4, message_id="V2-r", text="Hel"),
              methods.MessageDelta(session_id="V2", seq=5, message_id="V2-r", text="lo")]
    frames = [(e.seq, encode_event(e)) for e in events]
    v2 = Store(path, migrations=MIGRATIONS[:1], target_version=2)
    v2.apply(Change(session=s, previous=None, messages=[prompt, checkpoint], events=frames))
    v2.close()

    store = Store(path)
    try:
        assert store.schema_version() == V
        assert [msg.text for msg in store.open_turns()] == ["Hello"]
        assert store.events("V2") == [f for _, f in frames]
    finally:
        store.close()
    assert [b.reason for b in list_backups(path.parent / "backups")] == [
        f"before migration to v{v}" for v in range(3, V + 1)]

    d.start()
    try:
        with Client(d.paths, autostart=False, timeout=20.0) as c:
            reply = c.get_session("V2").messages[-1]
        assert (reply.status, reply.text) == ("interrupted", "Hello")
    finally:
        d.stop()
