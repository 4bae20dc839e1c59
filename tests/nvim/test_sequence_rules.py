"""The Neovim plugin follows the sequence rules of docs/protocol.md section 4: it
renders each stored event once, reattaches after a gap (once, until answered), skips
what it does not know without taking a newer daemon's stored event for a gap, and
when its language server dies it starts one again and reattaches every chat buffer's
session, so what happened meanwhile is shown exactly once."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path


from duologue.clients.rpc.sync_client import Client
from duologue.protocol import methods as m
from nvim_support import FINISH_LUA, NVIM, PLUGIN, needs_nvim
from support import DaemonProcess

pytestmark = needs_nvim

PRELUDE = FINISH_LUA + r"""
local function wait(what, predicate, ms)
  if not vim.wait(ms or 30000, predicate, 20) then error('timed out waiting for ' .. what) end
end
vim.opt.runtimepath:prepend(os.getenv('DUOLOGUE_PLUGIN'))
"""

RULES = PRELUDE + r"""
local ok, err = pcall(function()
  local chat = require('duologue.chat')
  local asked = {}
  chat.reattach = function(sid, since) table.insert(asked, { sid, since }) end
  local S = 'S1'
  local function renamed(seq, title) chat.on_event('session/renamed', { session_id = S, seq = seq, title = title }) end
  chat.on_event('session/created', { session_id = S, seq = 1,
    session = { title = 'first', current_model = 'm' } })
  renamed(3, 'past a gap')
  renamed(4, 'still past it')
  local after_gap = vim.api.nvim_buf_get_lines(chat.buffer(S), 0, 1, false)[1]
  chat.attached(S, true)
  renamed(2, 'two')
  renamed(3, 'three')
  renamed(3, 'three again')
  chat.on_event('progress', { session_id = S, seq = 9, turn_id = 't', kind = 'report', model = 'm' })
  chat.on_event('session/annotated', { session_id = S, seq = 4, note = 'a newer daemon stores this' })
  renamed(5, 'five')
  chat.on_event('daemon/notice', { text = 'no session at all' })
  chat.on_event('session/renamed', { session_id = S, title = 'no seq' })
  local title = vim.api.nvim_buf_get_lines(chat.buffer(S), 0, 1, false)[1]
  chat.on_event('session/forked', { session_id = S, seq = 5, fork_id = 'S2', after_seq = 3, title = 'fork' })
  renamed(4, 'the other device')
  finish({ asked = asked, after_gap = after_gap, title = title,
           after_fork = vim.api.nvim_buf_get_lines(chat.buffer(S), 0, 1, false)[1],
           fork_line = table.concat(vim.api.nvim_buf_get_lines(chat.buffer(S), 0, -1, false), '\n'),
           stored = chat.stored, unstored = chat.unstored })
end)
if not ok then finish({ error = tostring(err) }) end
"""

RESTART = PRELUDE + r"""
local ok, err = pcall(function()
  local duologue = require('duologue')
  local chat = require('duologue.chat')
  duologue.setup({ cmd = { os.getenv('DUOLOGUE_PYTHON'), '-m', 'duologue.clients.cli', 'lsp' },
                   ask_prompt = false, attach_to_buffers = false })
  vim.cmd('Duologue new kept across a restart')
  wait('a session', function() return duologue.current_session() ~= nil end)
  local sid = duologue.current_session()
  local buf = chat.buffer(sid)
  wait('the chat buffer', function() return vim.api.nvim_buf_get_lines(buf, 0, 1, false)[1] ~= '' end)
  local first = duologue.start()
  local pid = vim.lsp.get_client_by_id(first).rpc.pid
  vim.loop.kill(pid, 'sigkill')
  local f = io.open(os.getenv('DUOLOGUE_TEST_SID'), 'w')
  f:write(sid)
  f:close()
  local function text() return table.concat(vim.api.nvim_buf_get_lines(buf, 0, -1, false), '\n') end
  wait('what was sent while the server was away', function()
    return text():find('You: while the server was away', 1, true) ~= nil and chat.replies(sid) >= 1
  end, 60000)
  vim.cmd('Duologue ask and after it')
  wait('the reply after the restart', function() return chat.replies(sid) >= 2 end, 60000)
  finish({ lines = vim.api.nvim_buf_get_lines(buf, 0, -1, false),
           restarted = duologue.start() ~= first })
end)
if not ok then finish({ error = tostring(err) }) end
"""


def run_nvim(tmp_path: Path, script: str, env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    path = tmp_path / "drive.lua"
    path.write_text(script)
    return subprocess.Popen([NVIM, "--headless", "--clean", "-n", "-c", f"luafile {path}"], cwd=cwd,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def result_of(proc: subprocess.Popen[bytes], out: Path, timeout: float = 120) -> dict:
    _, err = proc.communicate(timeout=timeout)
    assert out.exists(), err.decode(errors="replace")[-2000:]
    result = json.loads(out.read_text())
    assert "error" not in result, result.get("error")
    return result


def test_the_plugin_renders_each_event_once_and_reattaches_after_a_gap_or_a_fork(tmp_path: Path):
    out = tmp_path / "out.json"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "DUOLOGUE_TEST_OUT": str(out),
           "DUOLOGUE_PLUGIN": str(PLUGIN)}
    result = result_of(run_nvim(tmp_path, RULES, env, tmp_path), out, timeout=60)
    # once, although two events came past the gap; then once more from a fork's after_seq
    assert result["asked"] == [["S1", 1], ["S1", 3]]
    assert result["after_fork"] == "# the other device"  # seq 4 again, now the other device's
    assert 'moved to the fork "fork" (S2)' in result["fork_line"]
    assert result["after_gap"] == "# first"  # nothing past the gap was rendered
    assert result["title"] == "# five"  # 2, 3 from the replay; the unknown 4 is no gap
    assert set(result["stored"]) == {name for name, n in m.NOTIFICATIONS.items() if n.stored}
    assert set(result["stored"]) | set(result["unstored"]) == set(m.NOTIFICATIONS)


def test_a_language_server_that_dies_is_started_again_and_misses_nothing(daemon: DaemonProcess,
                                                                         tmp_path: Path):
    project = tmp_path / "project"
    (project / ".git").mkdir(parents=True)
    out, sid_file = tmp_path / "out.json", tmp_path / "sid"
    env = {**daemon.env, "DUOLOGUE_TEST_OUT": str(out), "DUOLOGUE_PLUGIN": str(PLUGIN),
           "DUOLOGUE_PYTHON": sys.executable, "DUOLOGUE_TEST_SID": str(sid_file)}
    proc = run_nvim(tmp_path, RESTART, env, project)
    try:
        deadline = time.monotonic() + 60
        while not sid_file.exists() or not sid_file.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, "the plugin never killed its server"
            time.sleep(0.02)
        with Client(daemon.paths, autostart=False, client_name="terminal", timeout=20) as terminal:
            terminal.send(sid_file.read_text(), "while the server was away")
        result = result_of(proc, out)
    finally:
        if proc.poll() is None:
            proc.kill()
    text = "\n".join(result["lines"])
    assert result["restarted"]
    assert text.count("You: while the server was away") == 1
    assert text.count("You: and after it") == 1
    assert text.count("[emulator ") == 2  # each reply once
