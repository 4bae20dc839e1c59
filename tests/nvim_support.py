"""What the headless Neovim tests share: the plugin's folder, the editor, and the Lua
that writes a test's result where the Python side reads it, then quits."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

PLUGIN = Path(__file__).resolve().parent.parent / "clients" / "nvim"
NVIM = shutil.which("nvim")
needs_nvim = pytest.mark.skipif(NVIM is None, reason="nvim is not installed (.ci/run installs Debian's neovim)")

FINISH_LUA = r"""
local out = os.getenv('DUOLOGUE_TEST_OUT')
local function finish(result)
  local f = io.open(out, 'w')
  f:write(vim.json.encode(result))
  f:close()
  vim.cmd('qa!')
end
"""
"""Defines ``finish(result)``: the result as JSON in ``$DUOLOGUE_TEST_OUT``, then quit."""
