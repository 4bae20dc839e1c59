"""``duologue lsp``: the daemon's protocol for editors, over stdio as a language server.

- the link to the daemon (forwarded calls, the sessions this editor attached, and
  reconnection after a daemon restart) is the client library's ``rpc/bridge.py``,
  shared with the ACP agent.
- :mod:`.commands` is pure: command arguments, defaults, code-context blocks.
- :mod:`.workdone` maps the daemon's turn progress to LSP work-done progress.
- :mod:`.server` is the one module that meets pygls.
- :mod:`.stdio_client` drives a language server over a child's stdio (tests, bench).
"""
