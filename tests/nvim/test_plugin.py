"""The Neovim plugin, headless, against a daemon on the emulator: the chat buffer
shows the streamed replies and marks the model switch; the statusline names the
model; the "Ask duologue about this" code action sends the selection."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from nvim_support import FINISH_LUA, NVIM, PLUGIN, needs_nvim

pytestmark = needs_nvim

SCRIPT = FINISH_LUA + r"""
local ok, err = pcall(function()
  vim.opt.runtimepath:prepend(os.getenv('DUOLOGUE_PLUGIN'))
  local duologue = require('duologue')
  local chat = require('duologue.chat')
  duologue.setup({ cmd = { os.getenv('DUOLOGUE_PYTHON'), '-m', 'duologue.clients.cli', 'lsp' },
                   ask_prompt = false })
  local function wait(what, predicate)
    if not vim.wait(30000, predicate, 20) then error('timed out waiting for ' .. what) end
  end
  local statuses = {}
  local function sample_status()
    local s = duologue.statusline()
    if statuses[#statuses] ~= s then table.insert(statuses, s) end
  end
  -- Sampled at each redraw the plugin asks for, so every state it shows is seen
  -- however briefly it lasts (a timer's samples miss a short one on a loaded machine).
  local redraw = vim.cmd
  vim.cmd = setmetatable({}, {
    __index = redraw,
    __call = function(_, c, ...)
      local done = redraw(c, ...)
      if c == 'redrawstatus' then sample_status() end
      return done
    end,
  })

  vim.cmd('Duologue new borrow checker')
  wait('a session', function() return duologue.current_session() ~= nil end)
  local sid = duologue.current_session()
  vim.cmd('Duologue ask why does this not compile?')
  wait('the first reply', function() return chat.replies(sid) >= 1 end)
  vim.cmd('Duologue switch flash a long read')
  wait('the switch', function() return duologue.statusline():find('flash') ~= nil end)

  -- The code action on a selection of the source file.
  vim.cmd('edit ' .. os.getenv('DUOLOGUE_SOURCE'))
  wait('the client on the source buffer', function()
    return #vim.lsp.buf_get_clients(0) > 0
  end)
  vim.ui.select = function(items, _, on_choice) on_choice(items[1], 1) end
  vim.api.nvim_buf_set_mark(0, '<', 1, 0, {})
  vim.api.nvim_buf_set_mark(0, '>', 2, 0, {})
  vim.lsp.buf.range_code_action(nil, { 1, 0 }, { 2, 14 })
  wait('the second reply', function() return chat.replies(sid) >= 2 end)
  wait('the end of the progress', function() return duologue.statusline() == 'duologue:flash' end)
  sample_status()
  vim.cmd = redraw
  finish({ lines = vim.api.nvim_buf_get_lines(chat.buffer(sid), 0, -1, false),
           statuses = statuses, session = sid })
end)
if not ok then finish({ error = tostring(err) }) end
"""


def test_neovim_plugin_streams_replies_into_the_chat_buffer_and_marks_the_switch(daemon, tmp_path):
    project = tmp_path / "project"
    (project / ".git").mkdir(parents=True)
    source = project / "lib.rs"
    source.write_text("fn main() {\n    borrow();\n}\n")
    script = tmp_path / "drive.lua"
    script.write_text(SCRIPT)
    out = tmp_path / "out.json"
    env = {**daemon.env, "DUOLOGUE_TEST_OUT": str(out), "DUOLOGUE_PLUGIN": str(PLUGIN),
           "DUOLOGUE_PYTHON": sys.executable, "DUOLOGUE_SOURCE": str(source)}
    proc = subprocess.run([NVIM, "--headless", "--clean", "-n", "-c", f"luafile {script}"],
                          cwd=project, env=env, capture_output=True, timeout=90)
    assert out.exists(), proc.stderr.decode(errors="replace")[-2000:]
    result = json.loads(out.read_text())
    assert "error" not in result, result.get("error")
    text = "\n".join(result["lines"])

    assert result["lines"][0] == "# borrow checker"
    assert "You: why does this not compile?" in text
    assert "sonnet:\n[emulator claude-sonnet-5-5] This is the provider emulator answering as claude-sonnet-5-5." in text
    assert "── model switched: sonnet → flash (a long read) ──" in text
    assert "You: Explain this code.\n  [context lib.rs:1-2]" in text
    assert "flash:\n[emulator gemini-3.8-flash]" in text
    assert "I received 2 earlier turns" in text  # the whole history went along
    assert text.index("sonnet:") < text.index("model switched") < text.index("flash:\n")

    statuses = result["statuses"]
    assert "duologue:sonnet" in statuses and statuses[-1] == "duologue:flash"
    assert any(re.fullmatch(r"duologue:(sonnet|flash) \d+ tokens.*", s) for s in statuses), statuses
