"""Security: who can reach the daemon, and where an API key can never be found.

- The runtime directory is 0700 and the socket 0600; another user cannot connect
  (tested as ``nobody`` when the tests run as root, skipped with a reason otherwise),
  and the same child does get through once the permissions are opened, which shows
  the permissions, not the test, are what refuse it.
- After a run with known fake keys (turns on both providers, provider failures, an
  invalid key, bad requests), no key appears in the store files, the log, the
  daemon's output, or any notification, response or error a client received.
- Nothing listens on TCP unless the config asks for it; when it does, only CURVE
  clients whose public key is in the allow-list get an answer.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import tempfile
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq
import zmq.auth
from reliability_support import (
    FAKE_ANTHROPIC_KEY,
    FAKE_GEMINI_KEY,
    EmulatorAddress,
    Raw,
    configured_daemon,
    emulator_process,
)

from duologue.clients.rpc.client import AsyncClient
from duologue.clients.rpc.connection import CurveKeys
from duologue.daemon.emulator import Emulator, Failure, Reply
from duologue.protocol import methods as m
from duologue.protocol.errors import RpcError

NOBODY = 65534
CHILD = textwrap.dedent("""
    import json, os, socket, sys
    sys.path.insert(0, sys.argv[2])
    import zmq
    path = sys.argv[1]
    out = {"uid": os.getuid()}
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        out["connect"] = "connected"
    except OSError as exc:
        out["connect"] = type(exc).__name__
    finally:
        s.close()
    ctx = zmq.Context()
    d = ctx.socket(zmq.DEALER)
    d.setsockopt(zmq.LINGER, 0)
    d.connect("ipc://" + path)
    d.send(b'{"jsonrpc":"2.0","id":1,"method":"daemon/status"}')
    out["zmq"] = "answered" if d.poll(2000) else "no answer"
    d.close()
    ctx.term()
    print(json.dumps(out))
""")


def _as_nobody(socket_path: str) -> dict:
    python = shutil.which("python3", path="/usr/bin:/bin") or "/usr/bin/python3"
    site = str(Path(zmq.__file__).resolve().parent.parent)

    def drop() -> None:
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)

    done = subprocess.run([python, "-c", CHILD, socket_path, site], preexec_fn=drop,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture
def open_home() -> Iterator[Path]:
    """A home whose parents others may traverse, so only duologue's own permissions
    stand between another user and the socket."""
    base = Path(tempfile.mkdtemp(prefix="duologue-sec-"))
    base.chmod(0o755)
    home = base / "home"
    home.mkdir(mode=0o755)
    try:
        yield home
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_socket_directory_is_0700_and_the_socket_0600(home: Path):
    from support import DaemonProcess

    d = DaemonProcess(home).start()
    try:
        run_dir = Path(d.paths.runtime_dir)
        assert stat.S_IMODE(run_dir.stat().st_mode) == 0o700
        assert run_dir.stat().st_uid == os.getuid()
        assert stat.S_IMODE(Path(d.paths.socket_path).stat().st_mode) == 0o600
        assert stat.S_IMODE(Path(d.paths.log_file).stat().st_mode) == 0o600
    finally:
        d.stop()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a child as another uid (nobody)")
def test_another_user_cannot_connect_to_the_socket(open_home: Path, figures):
    from support import DaemonProcess

    d = DaemonProcess(open_home).start()
    try:
        for sub in ("data", "state", "config"):
            (open_home / sub).chmod(0o755)
        sock = str(d.paths.socket_path)
        refused = _as_nobody(sock)
        assert refused["uid"] == NOBODY
        assert refused["connect"] == "PermissionError", refused
        assert refused["zmq"] == "no answer", refused
        run_dir = Path(d.paths.runtime_dir)
        run_dir.chmod(0o755)  # the directory alone opened: the 0600 socket still refuses
        assert _as_nobody(sock)["connect"] == "PermissionError"
        Path(sock).chmod(0o666)  # the control: with both opened, the same child gets through
        control = _as_nobody(sock)
        assert control == {"uid": NOBODY, "connect": "connected", "zmq": "answered"}, control
        run_dir.chmod(0o700)
        Path(sock).chmod(0o600)
        figures["other_uid"] = {"refused": refused, "control_with_permissions_opened": control}
    finally:
        d.stop()


def _tcp_listeners(pid: int) -> list[str]:
    """Local addresses of the LISTEN TCP sockets owned by ``pid``."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for table in ("tcp", "tcp6"):
        path = Path(f"/proc/{pid}/net/{table}")
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            cols = line.split()
            if cols[3] == "0A" and cols[9] in inodes:  # 0A: LISTEN
                found.append(cols[1])
    return found


async def test_no_key_appears_in_the_store_the_log_or_anything_a_client_receives(home: Path, figures):
    """Known fake keys, which the emulator is told to accept; the daemon's anthropic key
    is another, which it refuses, so the auth path, whose error is the likeliest place
    for a key to leak, runs too."""
    bad_anthropic = "invalid-" + FAKE_ANTHROPIC_KEY
    emu = Emulator(api_keys={"anthropic": FAKE_ANTHROPIC_KEY, "gemini": FAKE_GEMINI_KEY}).start()
    d = configured_daemon(home, emu, anthropic_key=bad_anthropic)
    frames: list[bytes] = []
    errors: list[str] = []
    ctx = zmq.Context()
    try:
        d.start()
        watcher = Raw(ctx, d.paths.endpoint)
        async with d.client("keys") as c:
            s1 = await c.create_session(model="sonnet")
            s2 = await c.create_session(model="flash")
            for sid in (s1.id, s2.id):
                reply = watcher.call("session/attach", {"session_id": sid, "since_seq": 0})
                frames.append(json.dumps(reply).encode())
                await c.attach(sid, since_seq=0)
            emu.script("gemini", Reply(text="fine"), Failure(status=429), Failure(cut_after=3),
                       Failure(status=500, in_stream_after=2), Failure(malformed_after=2))
            for sid, text in ((s1.id, "auth fails"), (s2.id, "ok"), (s2.id, "429"), (s2.id, "cut"),
                              (s2.id, "in-stream"), (s2.id, "malformed")):
                sent = await c.send(sid, text)
                async for event in c.events():
                    if isinstance(event, m.Progress) and event.turn_id == sent.turn_id and event.kind == "end":
                        break
            for call in (lambda: c.switch_model(s1.id, "no-such-model"), lambda: c.send("nope", "x"),
                         lambda: c.attach(s1.id, since_seq=10_000)):
                try:
                    await call()
                except RpcError as exc:
                    errors.append(f"{exc.code} {exc.message} {exc.data}")
            for method in ("daemon/status", "metrics/get", "models/list", "session/list"):
                frames.append(json.dumps(watcher.call(method, {})).encode())
            frames.append(json.dumps(watcher.call("session/get", {"session_id": s1.id})).encode())
        watcher.sock.setsockopt(zmq.RCVTIMEO, 500)
        while True:
            try:
                frames.append(watcher.recv_frame())
            except zmq.Again:
                break
        frames += watcher.aside
        watcher.close()
    finally:
        d.stop()
        ctx.term()
        emu.stop()
    assert d.proc is not None and d.proc.stdout is not None
    output = d.proc.stdout.read()
    store_files = list(Path(d.paths.store_dir).glob("*"))
    scanned = {
        **{f"store/{p.name}": p.read_bytes() for p in store_files},
        "log": Path(d.paths.log_file).read_bytes(),
        "daemon stdout": output,
        "frames": b"\n".join(frames),
        "errors": "\n".join(errors).encode(),
    }
    assert len(frames) > 30 and len(errors) == 3
    assert b"auth" in scanned["store/data.mdb"] and b"rate_limited" in scanned["store/data.mdb"]
    needles = [k.encode() for k in (bad_anthropic, FAKE_ANTHROPIC_KEY, FAKE_GEMINI_KEY)]
    needles += [b"reliability-FAKE"]  # any fragment that only the keys contain
    for name, data in scanned.items():
        for needle in needles:
            assert needle not in data, f"a key fragment {needle[:12]!r}… is in {name}"
    figures["key_scan"] = {"files_and_streams_scanned": sorted(scanned), "bytes_scanned": sum(map(len, scanned.values())),
                           "frames": len(frames), "errors": len(errors), "key_found": 0}


@pytest.fixture(scope="module")
def child_emulator() -> Iterator[EmulatorAddress]:
    with emulator_process() as address:
        yield address


def test_nothing_listens_on_tcp_unless_configured(home: Path, child_emulator: EmulatorAddress):
    d = configured_daemon(home, child_emulator).start()
    try:
        assert _tcp_listeners(d.pid) == []
    finally:
        d.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _silent(ctx: zmq.Context, endpoint: str, curve: tuple[bytes, bytes, bytes] | None) -> bool:
    dealer = ctx.socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    if curve:
        dealer.curve_serverkey, dealer.curve_publickey, dealer.curve_secretkey = curve
    dealer.connect(endpoint)
    dealer.send(b'{"jsonrpc":"2.0","id":1,"method":"daemon/status"}')
    answered = dealer.poll(1500)
    dealer.close()
    return not answered


async def test_tcp_only_when_asked_and_then_only_with_an_allowed_curve_key(home: Path, child_emulator: EmulatorAddress,
                                                                           tmp_path: Path, figures):
    port = _free_port()
    certs = tmp_path / "certs"
    certs.mkdir()
    allowed_pub, allowed_sec = zmq.auth.create_certificates(str(certs), "allowed")
    _, stranger_sec = zmq.auth.create_certificates(str(certs), "stranger")
    authorized = home / "config" / "authorized_clients"
    authorized.mkdir(parents=True)
    shutil.copy(allowed_pub, authorized / "allowed.key")
    d = configured_daemon(home, child_emulator, config=f'[tcp]\nlisten = "127.0.0.1:{port}"\n').start()
    ctx = zmq.Context()
    try:
        listeners = _tcp_listeners(d.pid)
        assert len(listeners) == 1 and listeners[0].endswith(f":{port:04X}"), listeners
        keys = home / "config" / "keys"
        assert stat.S_IMODE((keys / "server.key_secret").stat().st_mode) == 0o600
        server_pub, _ = zmq.auth.load_certificate(str(keys / "server.key"))
        endpoint = f"tcp://127.0.0.1:{port}"

        assert _silent(ctx, endpoint, None), "a client without CURVE got an answer"
        s_pub, s_sec = zmq.auth.load_certificate(stranger_sec)
        assert _silent(ctx, endpoint, (server_pub, s_pub, s_sec)), "a key outside the allow-list got an answer"
        a_pub, a_sec = zmq.auth.load_certificate(allowed_sec)
        assert not _silent(ctx, endpoint, (server_pub, a_pub, a_sec))

        client = AsyncClient(d.paths, endpoint=endpoint, curve=CurveKeys(server_pub, a_pub, a_sec),
                             client_name="over-tcp", timeout=20.0)
        async with client as c:
            s = await c.create_session(model="haiku")
            await c.attach(s.id, since_seq=0)
            sent = await c.send(s.id, "hello over CURVE")
            got = []
            async for event in c.events():
                got.append(event)
                if isinstance(event, m.Progress) and event.turn_id == sent.turn_id and event.kind == "end":
                    break
            assert any(isinstance(e, m.MessageDelta) for e in got)
            status = await c.status()
            assert status.socket.startswith("ipc://")  # the local socket is still the default
        # the ipc socket still serves local clients, with no CURVE
        async with d.client("local") as local:
            assert (await local.get_session(s.id)).session.message_count == 2
        figures["tcp_curve"] = {"default_tcp_listeners": 0, "no_curve": "no answer",
                                "key_not_allowed": "no answer", "allowed_key": "served (turn streamed)"}
    finally:
        ctx.term()
        d.stop()


def test_tcp_listen_must_be_host_and_port(home: Path, child_emulator: EmulatorAddress):
    d = configured_daemon(home, child_emulator, config='[tcp]\nlisten = "7777"\n')
    done = subprocess.run([sys.executable, "-m", "duologue.daemon"], env=d.env, capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 2 and "tcp.listen" in done.stderr, done
