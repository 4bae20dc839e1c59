"""Where a home's files live, without platformdirs when ``$DUOLOGUE_HOME`` says."""

from __future__ import annotations

import os
import subprocess
import sys

from duologue.protocol.paths import PlatformDirs, resolve_paths

PLATFORM = PlatformDirs(data="/d", state="/s", config="/c", runtime="/r", temp="/tmp")


def test_a_home_holds_everything_under_it():
    paths = resolve_paths("/home/ada/dlg", PLATFORM, 1000)
    assert paths.endpoint == "ipc:///home/ada/dlg/run/daemon.sock"
    assert str(paths.store_dir) == "/home/ada/dlg/data/store"


def test_a_socket_path_too_long_for_ipc_moves_to_a_short_private_name():
    paths = resolve_paths("/" + "x" * 120, PLATFORM, 1000)
    assert str(paths.runtime_dir).startswith("/tmp/duologue-1000-")


def test_with_a_home_set_platformdirs_is_never_imported(tmp_path):
    probe = "import sys; from duologue.protocol.paths import locate; locate(); print('platformdirs' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                         env={**os.environ, "DUOLOGUE_HOME": str(tmp_path)})
    assert out.stdout.strip() == "False"
