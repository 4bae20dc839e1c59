"""The blocking client against a real daemon process over the real ipc socket:
typed results, errors, events in order, a daemon that dies or stalls, autostart."""

from __future__ import annotations

import inspect
import os
import resource
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import zmq

from duologue.clients.rpc.client import AsyncClient, ConnectionLost, Disconnected
from duologue.clients.rpc.connection import open_dealer
from duologue.clients.rpc.launcher import DaemonUnavailable, read_pid
from duologue.clients.rpc.sync_client import Client
from duologue.protocol import methods as m
from duologue.protocol.entities import Session
from duologue.protocol.errors import ErrorCode, RpcError
from duologue.protocol.jsonrpc import encode_request
from support import DaemonProcess, wait_until

EVENT_TIMEOUT = 30.0  # a wait, not a limit: a loaded CI machine with coverage on is slow
UNKNOWN_SID = "01ARZ3NDEKTSV4RRFFQ69G5FAV"


def client(d: DaemonProcess, name: str = "sync-test", timeout: float = 20.0) -> Client:
    return Client(d.paths, autostart=False, client_name=name, timeout=timeout)


@contextmanager
def stalled(d: DaemonProcess) -> Iterator[None]:
    """The daemon process is stopped (SIGSTOP): connected, but it answers nothing."""
    os.kill(d.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(d.pid, signal.SIGCONT)


def events_until_completed(c: Client) -> list[m.Event]:
    """Every stored-event notification up to the first message/completed."""
    out: list[m.Event] = []
    while not out or not isinstance(out[-1], m.MessageCompleted):
        event = c.next_event(EVENT_TIMEOUT)
        if isinstance(event, m.Event):
            out.append(event)
    return out


def test_results_are_typed(daemon: DaemonProcess):
    with client(daemon) as c:
        assert c.hello_result is not None and c.hello_result.protocol_version == m.PROTOCOL_VERSION
        status = c.status()
        assert isinstance(status, m.StatusResult) and status.sessions == 0
        s = c.create_session(title="typed", project_id="/typed")
        assert isinstance(s, Session) and s.title == "typed"
        listed = c.list_sessions(project_id="/typed")
        assert isinstance(listed, m.ListResult) and [x.id for x in listed.sessions] == [s.id]
        assert isinstance(c.get_session(s.id), m.GetResult)
        assert isinstance(c.call("daemon/status"), m.StatusResult)
        assert c.list_imports() == []
        assert c.delete_session(s.id) is None


def test_errors_are_rpc_errors_with_their_code(daemon: DaemonProcess):
    with client(daemon) as c:
        with pytest.raises(RpcError) as info:
            c.get_session(UNKNOWN_SID)
        assert info.value.code == ErrorCode.UNKNOWN_SESSION
        with pytest.raises(RpcError) as info:
            c.call("no/such_method")
        assert info.value.code == ErrorCode.METHOD_NOT_FOUND
        with pytest.raises(RpcError) as info:
            c.call("session/get", {"session_id": 7})
        assert info.value.code == ErrorCode.INVALID_PARAMS
        assert c.status().sessions == 0  # the client is still usable


def test_events_that_arrive_during_a_call_are_kept_for_next_event(daemon: DaemonProcess):
    with client(daemon, "watcher") as w, client(daemon, "writer") as c:
        s = c.create_session(title="before")
        w.attach(s.id)
        c.rename_session(s.id, "after")
        # The daemon publishes before it answers, so the rename's notification reaches
        # the watcher ahead of the answer to its next call: it is queued by that call.
        w.status()
        renamed = w.next_event(0)
        assert isinstance(renamed, m.SessionRenamed)
        assert (renamed.title, renamed.seq) == ("after", s.last_seq + 1)
        with pytest.raises(TimeoutError):
            w.next_event(0.05)


def test_a_turns_events_arrive_in_seq_order_while_calls_go_on(daemon: DaemonProcess):
    with client(daemon) as c:
        s = c.create_session(title="turn")
        c.attach(s.id)
        c.send(s.id, "tell me something")
        for _ in range(20):  # calls while the reply streams: its events queue up meanwhile
            c.status()
        events = events_until_completed(c)
        seqs = [e.seq for e in events]
        assert seqs == list(range(s.last_seq + 1, s.last_seq + 1 + len(seqs)))
        assert isinstance(events[0], m.MessageCreated)
        assert c.get_session(s.id).session.last_seq >= seqs[-1]


def test_a_call_raises_connection_lost_when_the_daemon_dies(daemon: DaemonProcess):
    with client(daemon) as c:
        c.status()
        os.kill(daemon.pid, signal.SIGSTOP)  # the request is taken but never answered
        killer = threading.Timer(0.3, daemon.kill9)
        killer.start()
        started = time.monotonic()
        try:
            with pytest.raises(ConnectionLost):
                c.status()
        finally:
            killer.join()
        assert time.monotonic() - started < 5.0  # not the 20 s timeout
        assert isinstance(c.next_event(EVENT_TIMEOUT), Disconnected)


def test_a_drop_while_idle_is_an_event_and_calls_work_after_a_restart(daemon: DaemonProcess):
    with client(daemon) as c:
        s = c.create_session(title="survives")
        daemon.kill9()
        assert isinstance(c.next_event(EVENT_TIMEOUT), Disconnected)
        daemon.start()
        # The DEALER reconnects by itself; the old drop does not fail the new call.
        assert c.get_session(s.id).session.title == "survives"


def test_a_call_without_an_answer_times_out_naming_the_method(daemon: DaemonProcess):
    with client(daemon, timeout=0.3) as c:
        with stalled(daemon):
            started = time.monotonic()
            with pytest.raises(TimeoutError, match="daemon/status"):
                c.status()
            assert time.monotonic() - started < 5.0
        # The late answer to the timed-out call is ignored; the next call gets its own.
        assert isinstance(c.list_models(), m.ModelsResult)


def test_a_call_waiting_on_a_slow_daemon_costs_almost_no_cpu(daemon: DaemonProcess):
    """While its answer is half a second away, a call sleeps in the kernel rather than
    polling for it. CPU time counts work done, not speed: a loaded machine makes the
    wait longer, never busier, while a polling client would burn a core's share of it."""
    with client(daemon) as c:
        c.status()
        os.kill(daemon.pid, signal.SIGSTOP)
        resume = threading.Timer(0.5, os.kill, (daemon.pid, signal.SIGCONT))
        cpu_before = time.process_time()
        resume.start()
        try:
            assert isinstance(c.status(), m.StatusResult)
        finally:
            resume.join()
            os.kill(daemon.pid, signal.SIGCONT)
        assert time.process_time() - cpu_before < 0.1


@pytest.mark.skipif(not hasattr(resource, "RUSAGE_THREAD"), reason="per-thread rusage is Linux's")
def voluntary_switches() -> int:
    return resource.getrusage(resource.RUSAGE_THREAD).ru_nvcsw


def test_calls_to_a_quick_daemon_sleep_as_often_as_a_plain_blocking_pyzmq_client(daemon: DaemonProcess):
    """Even an answer that comes in tens of microseconds is waited for asleep: the
    calling thread gives up the CPU (a voluntary context switch) as often as a plain
    pyzmq DEALER that sends the same request and blocks in ``recv``, where a client
    that first polled for a while (as this one did, for 100 µs) finds most quick
    answers without sleeping and takes the core from the daemon meanwhile.

    How often a quick answer beats the caller to its ``recv`` depends on the machine,
    so the floor runs beside ours on the same thread, in alternating blocks, and the
    counts are compared, never a time. Ours does a little more between its send and
    its wait (a loaded machine gave 102 against the floor's 135), so two thirds of the
    floor's count pass; a client polling for longer than a round trip falls below."""
    blocks, per_block = 10, 20
    ours = floor = 0
    with client(daemon) as c:
        raw = open_dealer(zmq.Context.instance(), c.endpoint, c.curve)
        try:
            raw.send(encode_request(1, "daemon/hello", {"protocol_version": m.PROTOCOL_VERSION}))
            raw.recv()
            status = encode_request(2, "daemon/status", {})
            for _ in range(per_block):
                c.status()
                raw.send(status)
                raw.recv()
            for _ in range(blocks):
                before = voluntary_switches()
                for _ in range(per_block):
                    c.status()
                ours += voluntary_switches() - before
                before = voluntary_switches()
                for _ in range(per_block):
                    raw.send(status)
                    raw.recv()
                floor += voluntary_switches() - before
        finally:
            raw.close()
    calls = blocks * per_block
    assert ours >= floor * 2 // 3, (
        f"the calling thread slept on {ours} of {calls} calls, a plain blocking pyzmq client on {floor}")


def test_a_daemon_that_does_not_say_hello_is_unavailable(daemon: DaemonProcess):
    with stalled(daemon):
        with pytest.raises(DaemonUnavailable, match="does not answer"):
            client(daemon, timeout=0.3)


def test_without_autostart_a_missing_daemon_is_unavailable(home: Path):
    with pytest.raises(DaemonUnavailable, match="no duologue daemon is running"):
        Client(DaemonProcess(home).paths, autostart=False)


def test_autostart_starts_a_daemon_when_none_runs(home: Path, monkeypatch: pytest.MonkeyPatch):
    # The spawned daemon inherits the environment: it must find this home, not the user's.
    monkeypatch.setenv("DUOLOGUE_HOME", str(home))
    for key in ("ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY"):
        monkeypatch.delenv(key, raising=False)
    paths = DaemonProcess(home).paths
    assert not Path(paths.socket_path).exists()
    try:
        with Client(paths, autostart=True, client_name="auto", timeout=20.0, emulator=True) as c:
            assert c.started_daemon
            status = c.status()
            assert status.emulator and status.home == str(home)
            c.shutdown()
    finally:
        wait_until(lambda: read_pid(paths) is None, timeout=15)
    try:
        os.waitpid(status.pid, 0)  # reap it if it is our zombie
    except ChildProcessError:
        pass
    with pytest.raises(ProcessLookupError):
        os.kill(status.pid, 0)


def test_every_typed_method_of_the_async_client_is_offered_blocking():
    typed = {name for name, fn in inspect.getmembers(AsyncClient, inspect.iscoroutinefunction)
             if not name.startswith("_") and name not in {"connect", "close", "send_raw", "next_event", "wait_event"}}
    missing = sorted(name for name in typed if not callable(getattr(Client, name, None)))
    assert typed and not missing, f"sync_client.Client lacks {missing}"
