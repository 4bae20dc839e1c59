"""The Neovim plugin shows a user's image as the one line every duologue client shows
(``protocol/images.py`` label), under the prompt's text."""

from __future__ import annotations

from pathlib import Path

from image_support import PNG_B64
from nvim.test_sequence_rules import PRELUDE, result_of, run_nvim
from nvim_support import PLUGIN, needs_nvim

from duologue.protocol.entities import ImageBlock
from duologue.protocol.images import label

pytestmark = needs_nvim

SHOW = PRELUDE + r"""
local ok, err = pcall(function()
  local chat = require('duologue.chat')
  local S = 'S1'
  chat.on_event('session/created', { session_id = S, seq = 1, session = { title = 'pics', current_model = 'm' } })
  chat.on_event('message/created', { session_id = S, seq = 2, message = { id = 'u1', role = 'user', content = {
    { type = 'image', media_type = 'image/png', data = os.getenv('DUOLOGUE_TEST_PNG'), name = 'shot.png' },
    { type = 'text', text = 'what is this?' } } } })
  finish({ text = table.concat(vim.api.nvim_buf_get_lines(chat.buffer(S), 0, -1, false), '\n') })
end)
if not ok then finish({ error = tostring(err) }) end
"""


def test_a_users_image_is_one_label_line_under_the_prompt(tmp_path: Path):
    out = tmp_path / "out.json"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "DUOLOGUE_TEST_OUT": str(out),
           "DUOLOGUE_PLUGIN": str(PLUGIN), "DUOLOGUE_TEST_PNG": PNG_B64}
    result = result_of(run_nvim(tmp_path, SHOW, env, tmp_path), out, timeout=60)
    shot = ImageBlock(media_type="image/png", data=PNG_B64, name="shot.png")
    assert f"You: what is this?\n  {label(shot)}" in result["text"]
    assert PNG_B64 not in result["text"]
