"""Running the `duologue` console script as a child process and reading what it prints."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

SCRIPT = Path(sys.executable).with_name("duologue")


class Output:
    """A CLI child process and the lines it has printed so far (read by a thread)."""

    def __init__(self, env: dict[str, str], *args: str, stdin: bool = False):
        self.proc = subprocess.Popen([str(SCRIPT), *args], env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, stdin=subprocess.PIPE if stdin else None,
                                     text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, predicate: Callable[[str], bool], what: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = next((line for line in self.lines if predicate(line)), None)
            if found is not None:
                return found
            if self.proc.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.02)
        shown = [line[:200] for line in self.lines[-20:]]
        raise AssertionError(f"no line with {what} within {timeout}s (exit code {self.proc.poll()}); "
                             f"printed {shown}; stderr {self.stderr()[-2000:]}")

    def stderr(self) -> str:
        if self.proc.poll() is None:
            return ""
        assert self.proc.stderr is not None
        return self.proc.stderr.read()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
        self.proc.wait(10)
