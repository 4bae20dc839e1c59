-- Chat buffers: one scratch buffer per session, built from the session's events.
--
-- The buffer is a rendering of the notifications `duologue lsp` forwards, in seq
-- order: user messages, replies streamed delta by delta, and a marker line at every
-- model switch. Which notifications are rendered follows the sequence rules of
-- docs/protocol.md section 4, the same rules protocol/subscriptions.py is for the
-- Python clients:
--   - a stored event with the next seq is rendered; one with an old seq is a
--     duplicate (a replay after a reattach) and is skipped;
--   - a stored event past a gap is skipped, and the session is attached again from
--     the last seq seen (once, until that attach is answered: its replay fills the gap);
--   - `progress` is never rendered here and its seq never counts;
--   - a notification this plugin does not know is skipped, but a seq it carries past
--     the last one is noted: a newer daemon may store events this plugin cannot read,
--     and a jump exactly over such seqs is no gap;
--   - when the language server is started again, every followed session is attached
--     again from its last seq (`M.reattach_all`).

local M = {}

-- The stored notifications (`stored` in schemas/index.json); tests check this list.
M.stored = {
  'session/created', 'session/renamed', 'session/model_switched', 'message/created',
  'message/delta', 'message/completed', 'message/pinned', 'session/summarized', 'tasks/changed',
}
-- The notifications that are not stored; with `M.stored`, every one this plugin knows.
M.unstored = { 'progress', 'session/deleted', 'session/forked', 'client/dropped' }

local stored = {}
for _, method in ipairs(M.stored) do stored[method] = true end
local known = vim.deepcopy(stored)
for _, method in ipairs(M.unstored) do known[method] = true end

-- Attach a session again from a seq; init.lua sets it to a request to the server,
-- which calls M.attached once it is answered.
M.reattach = function(_, _) end

-- session id -> { buf, last_seq, resuming, unreadable (seq -> true), gone, reply, replies }
local sessions = {}

M.short_name = function(model) return model or '?' end

local function lines_of(text)
  return vim.split(text or '', '\n', true)
end

local function text_of(message)
  local parts = {}
  for _, block in ipairs(message.content or {}) do
    if block.type == 'text' then table.insert(parts, block.text) end
  end
  return table.concat(parts)
end

-- One line for an image, as every duologue client shows it (protocol/images.py label).
local function image_label(block)
  local data = block.data or ''
  local n = math.floor(#data * 3 / 4) - select(2, data:sub(-2):gsub('=', ''))
  local size
  if n < 1024 then size = n .. ' B'
  elseif n < 1024 * 1024 then size = string.format('%.0f KB', n / 1024)
  else size = string.format('%.1f MB', n / (1024 * 1024)) end
  local named = block.name and (block.name .. ', ') or ''
  return '[image ' .. named .. (block.media_type or '?') .. ', ' .. size .. ']'
end

local function buffer_for(session_id)
  local s = sessions[session_id]
  if s and vim.api.nvim_buf_is_valid(s.buf) then return s end
  local buf = vim.api.nvim_create_buf(false, true)
  vim.api.nvim_buf_set_name(buf, 'duologue://' .. session_id)
  vim.api.nvim_buf_set_option(buf, 'buftype', 'nofile')
  vim.api.nvim_buf_set_option(buf, 'bufhidden', 'hide')
  vim.api.nvim_buf_set_option(buf, 'swapfile', false)
  vim.api.nvim_buf_set_option(buf, 'filetype', 'markdown')
  vim.api.nvim_buf_set_option(buf, 'modifiable', false)
  -- From seq 0: a buffer shows its whole session, so a first event past seq 1 (a
  -- live-only attach) is a gap whose replay brings the session's history.
  s = { buf = buf, last_seq = 0, resuming = false, unreadable = {}, gone = false,
        reply = nil, replies = 0, empty = true }
  sessions[session_id] = s
  return s
end

local function edit(s, fn)
  vim.api.nvim_buf_set_option(s.buf, 'modifiable', true)
  fn()
  vim.api.nvim_buf_set_option(s.buf, 'modifiable', false)
end

local function append_lines(s, lines)
  edit(s, function()
    if s.empty then
      vim.api.nvim_buf_set_lines(s.buf, 0, -1, false, lines)
      s.empty = false
    else
      vim.api.nvim_buf_set_lines(s.buf, -1, -1, false, lines)
    end
  end)
end

-- Append streamed text at the end of the buffer (it may hold newlines).
local function append_text(s, text)
  local pieces = lines_of(text)
  edit(s, function()
    local last = vim.api.nvim_buf_line_count(s.buf)
    local tail = vim.api.nvim_buf_get_lines(s.buf, last - 1, last, false)[1] or ''
    pieces[1] = tail .. pieces[1]
    vim.api.nvim_buf_set_lines(s.buf, last - 1, last, false, pieces)
  end)
  for _, win in ipairs(vim.api.nvim_list_wins()) do
    if vim.api.nvim_win_get_buf(win) == s.buf then
      vim.api.nvim_win_set_cursor(win, { vim.api.nvim_buf_line_count(s.buf), 0 })
    end
  end
end

local function close_reply(s, message)
  if message and message.status and message.status ~= 'complete' then
    append_text(s, ' [' .. message.status .. (message.error and (': ' .. message.error) or '') .. ']')
  end
  append_lines(s, { '' })
  s.reply = nil
  s.replies = s.replies + 1
end

local render = {}

render['session/created'] = function(s, p)
  append_lines(s, { '# ' .. p.session.title, '', 'model: ' .. M.short_name(p.session.current_model), '' })
end

render['session/renamed'] = function(s, p)
  edit(s, function() vim.api.nvim_buf_set_lines(s.buf, 0, 1, false, { '# ' .. p.title }) end)
end

render['message/created'] = function(s, p)
  local msg = p.message
  if msg.role == 'user' then
    local lines = lines_of(text_of(msg))
    lines[1] = 'You: ' .. lines[1]
    for _, block in ipairs(msg.content or {}) do
      if block.type == 'code_context' then
        local where = block.path
        if block.range then where = where .. ':' .. block.range.start .. '-' .. block.range['end'] end
        table.insert(lines, '  [context ' .. where .. ']')
      elseif block.type == 'image' then
        table.insert(lines, '  ' .. image_label(block))
      end
    end
    table.insert(lines, '')
    append_lines(s, lines)
  else
    append_lines(s, { M.short_name(msg.model) .. ':', '' })
    s.reply = msg.id
    local partial = text_of(msg)
    if partial ~= '' then append_text(s, partial) end
  end
end

render['message/delta'] = function(s, p)
  if s.reply == p.message_id then append_text(s, p.text) end
end

render['message/completed'] = function(s, p)
  local msg = p.message
  if msg.role ~= 'assistant' then return end
  if s.reply ~= msg.id then -- its start was not seen: show the final record whole
    append_lines(s, { M.short_name(msg.model) .. ':', '' })
    append_text(s, text_of(msg))
  end
  close_reply(s, msg)
end

render['session/model_switched'] = function(s, p)
  local w = p.switch
  local line = '── model switched: ' .. M.short_name(w.from_model) .. ' → ' .. M.short_name(w.to_model)
  if w.reason then line = line .. ' (' .. w.reason .. ')' end
  append_lines(s, { line .. ' ──', '' })
end

render['tasks/changed'] = function(s, p)
  local done, total = 0, 0
  for _, t in ipairs(p.tasks.tasks or {}) do
    total = total + 1
    if t.status == 'completed' then done = done + 1 end
  end
  append_lines(s, { '── tasks: ' .. done .. '/' .. total .. ' done ──', '' })
end

render['session/deleted'] = function(s, _)
  append_lines(s, { '── the session was deleted ──' })
  s.gone = true
end

-- Two devices wrote to the session while apart (docs/sync.md): what this buffer
-- showed after `after_seq` moved to the fork, and the other device's events now
-- hold those seqs, so the buffer says so and attaches again from `after_seq`.
render['session/forked'] = function(s, p)
  if type(p.after_seq) ~= 'number' then return end
  append_lines(s, { '── what this device wrote after seq ' .. p.after_seq .. ' moved to the fork "'
    .. tostring(p.title) .. '" (' .. tostring(p.fork_id) .. '); the other device\'s turns follow ──', '' })
  s.reply = nil
  if p.after_seq < s.last_seq then s.last_seq = p.after_seq end
  s.unreadable = {}
  s.resuming = true
  M.reattach(p.session_id, s.last_seq)
end

-- Whether every seq after the last one seen and before `seq` was noted unreadable.
local function only_unreadable_before(s, seq)
  for missing = s.last_seq + 1, seq - 1 do
    if not s.unreadable[missing] then return false end
  end
  return true
end

-- A stored event: true when it is the next one to render.
local function place(session_id, s, seq)
  if seq <= s.last_seq then return false end
  if only_unreadable_before(s, seq) then
    for noted, _ in pairs(s.unreadable) do
      if noted <= seq then s.unreadable[noted] = nil end
    end
    s.last_seq = seq
    return true
  end
  if not s.resuming then
    s.resuming = true
    M.reattach(session_id, s.last_seq)
  end
  return false
end

-- Handle one forwarded notification by the rules above. Returns the session's state.
function M.on_event(method, p)
  if type(p) ~= 'table' or type(p.session_id) ~= 'string' then return end
  if not known[method] then
    local s = sessions[p.session_id]
    if s and type(p.seq) == 'number' and p.seq > s.last_seq then s.unreadable[p.seq] = true end
    return s
  end
  if not render[method] and not stored[method] then return end -- progress, client/dropped
  local s = buffer_for(p.session_id)
  if stored[method] and (type(p.seq) ~= 'number' or not place(p.session_id, s, p.seq)) then return s end
  if render[method] then render[method](s, p) end
  return s
end

-- The attach that M.reattach asked for was answered (or failed: `ok` false).
function M.attached(session_id, ok)
  local s = sessions[session_id]
  if not s then return end
  s.resuming = false
  if not ok then s.gone = true end
end

-- The language server was started again: its subscriptions died with the old one,
-- so attach every followed session again from its last seq.
function M.reattach_all()
  for session_id, s in pairs(sessions) do
    if not s.gone then
      s.resuming = true
      M.reattach(session_id, s.last_seq)
    end
  end
end

function M.buffer(session_id)
  return buffer_for(session_id).buf
end

function M.replies(session_id)
  local s = sessions[session_id]
  return s and s.replies or 0
end

-- Show a session's chat buffer (in a split unless a window shows it already).
function M.show(session_id)
  local buf = M.buffer(session_id)
  for _, win in ipairs(vim.api.nvim_list_wins()) do
    if vim.api.nvim_win_get_buf(win) == buf then return buf end
  end
  vim.cmd('botright vsplit')
  vim.api.nvim_win_set_buf(0, buf)
  vim.cmd('wincmd p')
  return buf
end

return M
