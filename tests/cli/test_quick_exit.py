"""The console script skips the interpreter's teardown, and nothing an exit owes is lost
(clients/cli.py, exit_quickly): output flushed, atexit functions run, threads waited for."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

BUFFERED = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
"""The child's stdout keeps what it prints in its buffer until the exit flushes it."""


def _run(body: str) -> subprocess.CompletedProcess[str]:
    script = "from duologue.clients.cli import exit_quickly\n" + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          env=BUFFERED)


def test_buffered_output_and_atexit_functions_survive_the_quick_exit():
    r = _run("""
        import atexit, sys
        atexit.register(lambda: print("atexit ran", file=sys.stderr))
        print("x" * 1000, end="")  # less than a buffer: still in it at the exit
        exit_quickly(3)
    """)
    assert r.returncode == 3
    assert r.stdout == "x" * 1000
    assert r.stderr == "atexit ran\n"


def test_a_running_thread_is_waited_for_as_in_an_ordinary_exit():
    r = _run("""
        import threading, time
        def late():
            time.sleep(0.3)
            print("thread finished", flush=True)
        threading.Thread(target=late).start()
        exit_quickly(0)
    """)
    assert r.returncode == 0
    assert r.stdout == "thread finished\n"


def test_a_reader_that_went_away_ends_the_command_quietly_with_an_error_code():
    # The output waits in the buffer until the reader has closed the pipe (the poll
    # reports POLLERR then), so the flush at exit is what meets the broken pipe.
    script = ("import select\nfrom duologue.clients.cli import exit_quickly\n"
              "print('a line that waits in the buffer')\n"
              "p = select.poll(); p.register(1, select.POLLERR); p.poll()\n"
              "exit_quickly(0)")
    writer = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env=BUFFERED)
    assert writer.stdout is not None and writer.stderr is not None
    writer.stdout.close()  # as `duologue list | head -0` would
    assert writer.wait(timeout=60) == 1
    assert writer.stderr.read() == b""
