"""The README's Python example runs as printed, against a real daemon."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from support import DaemonProcess

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", README.read_text(encoding="utf-8"), re.MULTILINE | re.DOTALL)


def test_the_readmes_script_example_streams_a_reply_and_sees_its_turn_end(daemon: DaemonProcess):
    (example,) = python_blocks()
    r = subprocess.run([sys.executable, "-c", example], env=daemon.env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert "provider emulator answering" in r.stdout
    assert re.search(r"\n\[[a-z0-9.-]+: complete\]\n$", r.stdout), r.stdout
