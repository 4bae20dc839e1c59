"""`:Duologue sessions`, `:Duologue attach` (no id) and `:Duologue new` (no title) send
no arguments. An empty Lua table encodes as a JSON array (``[[]]``), which the
server refused ("takes an object"): the plugin sends ``vim.empty_dict()`` and the
server takes an empty array as no arguments."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from duologue.clients.lsp import commands as c

PLUGIN = Path(__file__).resolve().parents[2] / "clients" / "nvim"
NVIM = shutil.which("nvim")

SCRIPT = r"""
local out = os.getenv('DUOLOGUE_TEST_OUT')
local notes = {}
local function finish(result)
  result.notes = notes
  local f = io.open(out, 'w')
  f:write(vim.json.encode(result))
  f:close()
  vim.cmd('qa!')
end
local ok, err = pcall(function()
  vim.opt.runtimepath:prepend(os.getenv('DUOLOGUE_PLUGIN'))
  vim.notify = function(msg, level) table.insert(notes, { msg = msg, level = level }) end
  local duologue = require('duologue')
  duologue.setup({ cmd = { os.getenv('DUOLOGUE_PYTHON'), '-m', 'duologue.clients.cli', 'lsp' },
                   ask_prompt = false })
  local function wait(what, predicate)
    if not vim.wait(30000, predicate, 20) then error('timed out waiting for ' .. what) end
  end
  vim.cmd('Duologue new')
  wait('a session', function() return duologue.current_session() ~= nil end)
  local first = duologue.current_session()
  local offered = nil
  vim.ui.select = function(items, _, on_choice) offered = #items; on_choice(items[1], 1) end
  vim.cmd('Duologue sessions')
  wait('the session list', function() return offered ~= nil end)
  offered = nil
  vim.cmd('Duologue attach')
  wait('the list again', function() return offered ~= nil end)
  finish({ first = first, offered = offered, current = duologue.current_session() })
end)
if not ok then finish({ error = tostring(err) }) end
"""


def test_the_server_takes_an_empty_array_as_no_arguments():
    assert c.decode_args(c.SESSIONS, [[]]).all is False
    assert c.decode_args(c.NEW_SESSION, [[]]).title is None


@pytest.mark.skipif(NVIM is None, reason="nvim is not installed (.ci/run installs Debian's neovim)")
def test_sessions_attach_and_new_without_arguments_work_from_neovim(daemon, tmp_path):
    project = tmp_path / "project"
    (project / ".git").mkdir(parents=True)
    script = tmp_path / "drive.lua"
    script.write_text(SCRIPT)
    out = tmp_path / "out.json"
    env = {**daemon.env, "DUOLOGUE_TEST_OUT": str(out), "DUOLOGUE_PLUGIN": str(PLUGIN),
           "DUOLOGUE_PYTHON": sys.executable}
    proc = subprocess.run([NVIM, "--headless", "--clean", "-n", "-c", f"luafile {script}"],
                          cwd=project, env=env, capture_output=True, timeout=90)
    assert out.exists(), proc.stderr.decode(errors="replace")[-2000:]
    result = json.loads(out.read_text())
    assert "error" not in result, result
    errors = [n["msg"] for n in result["notes"] if "takes" in str(n["msg"]) or "invalid" in str(n["msg"])]
    assert errors == [], errors
    assert result["offered"] >= 1 and result["current"] == result["first"]
