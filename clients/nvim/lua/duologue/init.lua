-- duologue for Neovim: `duologue lsp` through the built-in LSP client.
--
-- Works with Neovim 0.7 (Debian 12) and later: it uses vim.lsp.start_client and
-- vim.lsp.buf_attach_client, which every version since 0.5 has. The language
-- server forwards the daemon's notifications under their protocol names
-- (`message/delta`, `session/model_switched` ...); the handlers below render them
-- into chat buffers by the sequence rules in chat.lua. Turn progress arrives as
-- standard work-done progress (`$/progress`), so it also shows in any LSP progress UI.
-- A language server that dies after it was up is started again, and the chat
-- buffers' sessions are attached again from the last seq each one showed.

local chat = require('duologue.chat')

local M = {}

M.config = {
  cmd = { 'duologue', 'lsp' },
  cmd_env = nil,
  attach_to_buffers = true, -- attach to file buffers so "Ask duologue about this" is offered
  open_chat = true,         -- show the chat buffer when a session starts or is attached
  ask_prompt = true,        -- the code action asks for a question (default: explain)
}

local state = {
  client_id = nil,
  ready = false,
  was_up = false,  -- a language server has been up before: a new one reattaches
  queue = {},
  session = nil,   -- current session id
  model = nil,     -- its current model id
  progress = nil,  -- work-done message of the running turn
  short = {},      -- model id -> short name
}

local function short_name(model)
  if not model then return '?' end
  return state.short[model] or model
end
chat.short_name = short_name

local function notify(text, level)
  vim.notify('duologue: ' .. text, level or vim.log.levels.INFO)
end

-- The project root, like the CLI's: the nearest directory holding .git, else cwd.
local function project_root()
  local cwd = vim.loop.cwd()
  local dir = cwd
  while dir and dir ~= '' do
    if vim.loop.fs_stat(dir .. '/.git') then return dir end
    local parent = vim.fn.fnamemodify(dir, ':h')
    if parent == dir then break end
    dir = parent
  end
  return cwd
end

local function track(method, p)
  if p.session_id ~= state.session then return end
  if method == 'session/created' then
    state.model = p.session.current_model
  elseif method == 'session/model_switched' then
    state.model = p.switch.to_model
  elseif method == 'message/completed' and p.message.model then
    state.model = p.message.model
  end
end

local function on_notification(method)
  return function(_, params, _, _)
    track(method, params or {})
    chat.on_event(method, params)
    vim.cmd('redrawstatus')
  end
end

local function on_progress(err, result, ctx, config)
  vim.lsp.handlers['$/progress'](err, result, ctx, config)
  local value = result and result.value or {}
  if type(result.token) == 'string' and result.token:find('^duologue/') then
    if value.kind == 'end' then state.progress = nil else state.progress = value.message end
    vim.cmd('redrawstatus')
  end
end

-- LSP's own names; every other notification is the daemon's, forwarded.
local function lsp_own(method)
  return method:find('^%$/') or method:find('^window/') or method:find('^textDocument/')
    or method:find('^workspace/') or method:find('^telemetry/')
    or method == 'client/registerCapability' or method == 'client/unregisterCapability'
end

-- Handlers for every notification the plugin knows, and (through the metatable) for
-- those it does not: chat.lua notes where those stand, so a newer daemon's stored
-- events are no gap. LSP's own methods keep Neovim's default handlers.
local function handlers()
  local h = { ['$/progress'] = on_progress }
  for _, method in ipairs(chat.stored) do h[method] = on_notification(method) end
  for _, method in ipairs(chat.unstored) do h[method] = on_notification(method) end
  return setmetatable(h, {
    __index = function(_, method)
      if not lsp_own(method) then return on_notification(method) end
    end,
  })
end

-- Run fn(client) once the language server is initialized (starting it if needed).
local function with_client(fn)
  local client = state.client_id and vim.lsp.get_client_by_id(state.client_id)
  if not client then
    M.start()
    client = vim.lsp.get_client_by_id(state.client_id)
  end
  if state.ready then fn(client) else table.insert(state.queue, fn) end
end

function M.start()
  if state.client_id and vim.lsp.get_client_by_id(state.client_id) then return state.client_id end
  state.ready = false
  state.client_id = vim.lsp.start_client({
    name = 'duologue',
    cmd = M.config.cmd,
    cmd_env = M.config.cmd_env,
    root_dir = project_root(),
    handlers = handlers(),
    on_init = function(client)
      state.ready = true
      client.request('models/list', {}, function(err, result)
        if err or not result then return end
        for _, info in ipairs(result.models) do state.short[info.id] = info.short_name end
      end)
      if state.was_up then chat.reattach_all() end
      state.was_up = true
      local queued = state.queue
      state.queue = {}
      for _, fn in ipairs(queued) do fn(client) end
    end,
    on_exit = function(code, signal)
      local was_ready = state.ready
      state.client_id, state.ready = nil, false
      -- One that died after it was up is started again; one that never came up is not
      -- (it would only fail again), nor one stopped on purpose (exit code 0).
      if was_ready and (code ~= 0 or signal ~= 0) then vim.defer_fn(M.start, 200) end
    end,
  })
  return state.client_id
end

-- chat.lua asks to attach a session again (a gap, or a new language server).
chat.reattach = function(session_id, since_seq)
  with_client(function(client)
    client.request('session/attach', { session_id = session_id, since_seq = since_seq }, function(err, _)
      chat.attached(session_id, err == nil)
      if err then notify('cannot follow session ' .. session_id .. ': ' .. (err.message or '?'),
                         vim.log.levels.WARN) end
    end)
  end)
end

-- A request to the language server; errors are shown (commands' errors are shown
-- by the server itself as window/showMessage).
local function request(method, params, on_result, quiet)
  with_client(function(client)
    client.request(method, params, function(err, result)
      if err then
        if not quiet then notify(err.message or vim.inspect(err), vim.log.levels.ERROR) end
        return
      end
      if on_result then on_result(result) end
    end)
  end)
end

-- An empty Lua table encodes as a JSON array ([]), not an object: send vim.empty_dict().
local function execute(command, argument, on_result)
  if argument == nil or (type(argument) == 'table' and vim.tbl_isempty(argument)) then
    argument = vim.empty_dict()
  end
  request('workspace/executeCommand', { command = command, arguments = { argument } }, on_result, true)
end

local function focus(session)
  state.session = session.id
  state.model = session.current_model
  if M.config.open_chat then chat.show(session.id) end
  vim.cmd('redrawstatus')
end

-- The lines [l1, l2] of the current buffer as a code-context block.
local function code_context(l1, l2)
  local buf = vim.api.nvim_get_current_buf()
  local name = vim.api.nvim_buf_get_name(buf)
  local lines = vim.api.nvim_buf_get_lines(buf, l1 - 1, l2, false)
  local language = vim.api.nvim_buf_get_option(buf, 'filetype')
  return {
    type = 'code_context',
    path = vim.fn.fnamemodify(name, ':.'),
    language = language ~= '' and language or nil,
    range = { start = l1, ['end'] = l2 },
    text = table.concat(lines, '\n') .. '\n',
  }
end

function M.new(title)
  execute('duologue.newSession', { title = title ~= '' and title or nil }, function(result)
    focus(result.session)
  end)
end

function M.ask(text, context)
  if not text or text == '' then
    vim.ui.input({ prompt = 'Ask duologue: ' }, function(input)
      if input and input ~= '' then M.ask(input, context) end
    end)
    return
  end
  execute('duologue.ask', { text = text, session_id = state.session, context = context },
    function(result)
      if result.session_id ~= state.session then
        state.session = result.session_id
        if M.config.open_chat then chat.show(result.session_id) end
      end
    end)
end

function M.switch(model, reason)
  execute('duologue.switchModel', { model = model, session_id = state.session,
    reason = reason ~= '' and reason or nil }, function(result)
    state.model = result.session.current_model
    if not result.switch then notify('already on ' .. short_name(state.model)) end
    vim.cmd('redrawstatus')
  end)
end

function M.attach(session_id)
  if not session_id or session_id == '' then return M.sessions() end
  execute('duologue.attach', { session_id = session_id, since_seq = 0 }, function(result)
    focus(result.session)
  end)
end

function M.sessions()
  execute('duologue.sessions', {}, function(result)
    if #result.sessions == 0 then
      notify('no sessions in this project yet; :Duologue new starts one')
      return
    end
    vim.ui.select(result.sessions, {
      prompt = 'duologue sessions',
      format_item = function(s) return s.title .. '  (' .. short_name(s.current_model) .. ')  ' .. s.id end,
    }, function(choice)
      if choice then M.attach(choice.id) end
    end)
  end)
end

function M.cancel()
  if not state.session then return end
  request('session/cancel', { session_id = state.session }, nil, true)
end

function M.current_session()
  return state.session
end

-- For the statusline: "duologue:sonnet" and, while a turn runs, its progress.
function M.statusline()
  if not state.session then return '' end
  local text = 'duologue:' .. short_name(state.model)
  if state.progress then text = text .. ' ' .. state.progress end
  return text
end

local subcommands = { 'ask', 'switch', 'new', 'sessions', 'attach', 'cancel', 'chat' }

local function command(opts)
  local sub, rest = opts.args:match('^%s*(%S*)%s*(.-)%s*$')
  if sub == 'ask' then
    local context = nil
    if opts.range > 0 then context = { code_context(opts.line1, opts.line2) } end
    M.ask(rest, context)
  elseif sub == 'switch' then
    local model, reason = rest:match('^(%S+)%s*(.-)$')
    if not model then return notify('usage: :Duologue switch MODEL [reason]', vim.log.levels.ERROR) end
    M.switch(model, reason)
  elseif sub == 'new' then
    M.new(rest)
  elseif sub == 'sessions' then
    M.sessions()
  elseif sub == 'attach' then
    M.attach(rest)
  elseif sub == 'cancel' then
    M.cancel()
  elseif sub == 'chat' then
    if state.session then chat.show(state.session) end
  else
    notify('usage: :Duologue ' .. table.concat(subcommands, '|'), vim.log.levels.ERROR)
  end
end

function M.setup(opts)
  M.config = vim.tbl_deep_extend('force', M.config, opts or {})
  vim.api.nvim_create_user_command('Duologue', command, {
    nargs = '+', range = true,
    complete = function(arg_lead, line)
      if line:match('^%S+%s+%S*$') then
        return vim.tbl_filter(function(s) return s:find(arg_lead, 1, true) == 1 end, subcommands)
      end
      return {}
    end,
  })
  -- The code action's command: let the user phrase the question, then ask.
  vim.lsp.commands['duologue.ask'] = function(cmd, _)
    local argument = (cmd.arguments or {})[1] or {}
    local function send(text)
      argument.text = text
      argument.session_id = argument.session_id or state.session
      execute('duologue.ask', argument, function(result)
        state.session = result.session_id
        if M.config.open_chat then chat.show(result.session_id) end
      end)
    end
    if M.config.ask_prompt then
      vim.ui.input({ prompt = 'Ask duologue: ', default = argument.text }, function(input)
        if input and input ~= '' then send(input) end
      end)
    else
      send(argument.text)
    end
  end
  if M.config.attach_to_buffers then
    local group = vim.api.nvim_create_augroup('duologue', { clear = true })
    vim.api.nvim_create_autocmd('BufEnter', {
      group = group,
      callback = function(args)
        if vim.bo[args.buf].buftype ~= '' or vim.api.nvim_buf_get_name(args.buf) == '' then return end
        vim.lsp.buf_attach_client(args.buf, M.start())
      end,
    })
  end
end

return M
