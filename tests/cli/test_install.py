"""`make install` gives a `duologue` command that works from any directory: a link to
the venv's console script in BIN_DIR, with a warning when BIN_DIR is not on PATH;
`make uninstall` removes the link. Run through make itself, in the checkout."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CHECKOUT = Path(__file__).resolve().parents[2]
VENV = Path(sys.executable).parent.parent


def make(*args: str, path: str) -> subprocess.CompletedProcess[str]:
    # -o: the venv is set up already (these tests run in it); never rebuild it here
    return subprocess.run(["make", "-s", "-o", f"{VENV}/.installed", f"VENV={VENV}", *args], cwd=CHECKOUT,
                          env={**os.environ, "PATH": path}, capture_output=True, text=True, timeout=60)


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_install_links_a_command_that_works_from_any_directory(tmp_path: Path):
    bin_dir = tmp_path / "bin"
    r = make("install", f"BIN_DIR={bin_dir}", path=os.environ["PATH"])
    assert r.returncode == 0, r.stderr
    link = bin_dir / "duologue"
    assert link.is_symlink() and link.resolve() == (VENV / "bin" / "duologue").resolve()
    assert f"warning: {bin_dir} is not on your PATH" in r.stdout
    assert f'export PATH="{bin_dir}:$PATH"' in r.stdout

    elsewhere = tmp_path / "some" / "project"
    elsewhere.mkdir(parents=True)
    env = {**os.environ, "DUOLOGUE_HOME": str(tmp_path / "home")}
    shown = subprocess.run([str(link), "paths", "--json"], cwd=elsewhere, env=env, capture_output=True,
                           text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["data"] == str(tmp_path / "home" / "data")

    on_path = make("install", f"BIN_DIR={bin_dir}", path=f"{bin_dir}:{os.environ['PATH']}")
    assert on_path.returncode == 0 and "warning" not in on_path.stdout

    gone = make("uninstall", f"BIN_DIR={bin_dir}", path=os.environ["PATH"])
    assert gone.returncode == 0 and not link.exists() and not link.is_symlink()
    assert f"removed {link}" in gone.stdout
