"""A daemon that cannot start says why, to whoever started it.

- A config value out of range, an unknown model, a malformed base URL or broken TOML
  is refused at start (exit 2), naming the file, the line and the key.
- A client that starts the daemon itself (the CLI, the chat, an editor through
  ``duologue lsp``) shows that message instead of pointing at a log that does not
  exist; likewise for a ``DUOLOGUE_HOME`` that is a file and a home it cannot write.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from other_user import cli_as_other, needs_root, shared_base

from duologue.clients.lsp.stdio_client import LspClient, LspError

BAD_CONFIGS = {
    "negative timeout": ("[providers.anthropic]\ntimeout_s = -1\n", 2, "providers.anthropic.timeout_s"),
    "negative retries": ("default_model = \"sonnet\"\n\n[providers.gemini]\nmax_retries = -5\n", 4,
                         "providers.gemini.max_retries"),
    "unknown summary model": ("# mine\nsummary_model = \"gpt-17\"\n", 2, "summary_model"),
    "unknown default model": ("default_model = \"nope\"\n", 1, "default_model"),
    "malformed base_url": ("[providers.anthropic]\nbase_url = \"localhost:8080\"\n", 2,
                           "providers.anthropic.base_url"),
    "base_url with a bad port": ("[providers.gemini]\nbase_url = \"http://127.0.0.1:99999\"\n", 2,
                                 "providers.gemini.base_url"),
    "broken toml": ("[providers.anthropic\ntimeout_s = 3\n", 1, "not valid TOML"),
    "wrong type": ("client_queue_bytes = \"big\"\n", 1, "client_queue_bytes"),
}


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "GEMINI_", "GOOGLE_"))}
    return {**env, "DUOLOGUE_HOME": str(home), **extra}


def _config(home: Path, text: str) -> Path:
    path = home / "config" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_a_bad_config_value_is_refused_at_start_naming_file_line_and_key(home: Path, case: str):
    text, line, key = BAD_CONFIGS[case]
    path = _config(home, text)
    done = subprocess.run([sys.executable, "-m", "duologue.daemon", "--emulator"], env=_env(home),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done
    err = done.stderr.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert str(path) in err and key in err, err
    assert f"line {line}" in err, err


def test_a_base_url_from_the_environment_is_checked_too(home: Path):
    done = subprocess.run([sys.executable, "-m", "duologue.daemon"],
                          env=_env(home, ANTHROPIC_BASE_URL="ftp://x"), capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2 and "$ANTHROPIC_BASE_URL" in done.stderr, done


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "duologue.clients.cli", *args], env=env,
                          capture_output=True, text=True, timeout=60)


def test_the_cli_that_starts_the_daemon_shows_why_it_could_not_start(home: Path):
    path = _config(home, "[providers.anthropic]\nmax_retries = -5\n")
    done = _cli(_env(home), "list")
    assert done.returncode == 3, done
    assert "Traceback" not in done.stderr
    assert f"{path} line 2: providers.anthropic.max_retries" in done.stderr, done.stderr
    assert "daemon.log" not in done.stderr, "points at a log that does not exist"


def test_a_duologue_home_that_is_a_file_is_explained(tmp_path: Path):
    home = tmp_path / "home"
    home.write_text("not a directory")
    done = _cli(_env(home), "list")
    assert done.returncode == 3, done
    assert "Traceback" not in done.stderr, done.stderr
    assert f"{home} is a file, not a directory" in done.stderr, done.stderr
    direct = subprocess.run([sys.executable, "-m", "duologue.daemon", "--emulator"], env=_env(home),
                            capture_output=True, text=True, timeout=60)
    assert direct.returncode == 2 and "is a file, not a directory" in direct.stderr, direct


@needs_root
def test_a_home_the_user_cannot_write_is_explained():
    with shared_base() as base:
        home = base / "home"
        home.mkdir()
        home.chmod(0o555)  # the other user may enter it, not write in it
        done = cli_as_other("list", env={"DUOLOGUE_HOME": str(home)})
        assert done.returncode == 3, done
        assert "Traceback" not in done.stderr, done.stderr
        assert f"cannot create {home}/data: Permission denied" in done.stderr, done.stderr


async def test_duologue_lsp_shows_the_editor_why_the_daemon_it_started_could_not_start(home: Path, tmp_path: Path):
    """At initialize it starts the daemon; the config error reaches the editor as a
    window/showMessage error at once, and as the error of a request that waited for
    the daemon, both naming the file, the line and the key."""
    path = _config(home, "# editor test\n[providers.anthropic]\nmax_retries = -5\n")
    where = f"{path} line 3: providers.anthropic.max_retries"
    project = tmp_path / "project"
    project.mkdir()
    client = await LspClient.spawn([sys.executable, "-m", "duologue.clients.cli", "lsp"], env=_env(home),
                                   cwd=project)
    try:
        await client.initialize(project)
        shown = await client.wait_for(lambda msg: msg.get("method") == "window/showMessage", timeout=60)
        assert shown["params"]["type"] == 1, shown  # MessageType.Error
        assert where in shown["params"]["message"], shown
        assert "daemon.log" not in shown["params"]["message"] and "Traceback" not in shown["params"]["message"]
        with pytest.raises(LspError) as caught:
            await client.request("daemon/status", {}, timeout=60)
        assert where in caught.value.message, caught.value.message
        assert caught.value.data == {"reason": "daemon_unavailable"}
        assert await client.shutdown_and_exit() == 0
    finally:
        await client.kill()
